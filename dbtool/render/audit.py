"""What `dbtool audit-indexes` prints.
"""

from __future__ import annotations

from .console import emit_json, fit_table, line, out, wrapped


def audit_data(results: list) -> list[dict]:
    def finding(f, reason: str | None = None) -> dict:
        data = {"level": f.level, "kind": f.kind, "schema": f.schema, "table": f.table, "index": f.index,
                "subject": f.subject, "size_bytes": f.size, "evidence": f.evidence, "fix": f.fix}
        if reason is not None:
            data["reason"] = reason
        return data

    return [
        {
            "service": r.service,
            "database": r.where,
            "stats_reset": r.report.stats_reset.isoformat() if r.report.stats_reset else None,
            "usage_checked": r.report.usage_checked,
            "notice": r.report.notice,
            "tables": r.report.tables,
            "indexes": r.report.indexes,
            "statements": r.report.statements,
            "findings": [finding(f) for f in r.report.findings],
            "silenced": [finding(f, reason) for f, reason in r.report.silenced],
        }
        for r in results
    ]


def audit(results: list, as_json: bool) -> None:
    """One table per database: level, kind, table, index, size, evidence and the SQL that fixes it."""
    from rich.text import Text

    from ..inspect.audit import pretty_size

    if as_json:
        emit_json(audit_data(results))
        return
    # Names and SQL go in as Text: a bracket in them is not rich markup.
    styles = {"error": "red", "warning": "yellow", "info": "cyan"}
    for r in results:
        report = r.report
        reset = f"{report.stats_reset:%Y-%m-%d %H:%M:%S %Z}".strip() if report.stats_reset else "never reset"
        wrapped(f"{r.service}: {r.where}", indent="", hanging="  ")
        line(f"  {report.tables} tables, {report.indexes} indexes; statistics since: {reset}")
        if report.notice:
            out.print(Text.assemble("  ", ("notice:", "yellow"), f" {report.notice}"))
        if report.findings:
            # Evidence and fix go under the table, unwrapped, so the SQL can be copied as it is.
            rows = [(str(n), Text(f.level, styles[f.level]), f.kind,
                     f.table if f.schema == "public" else f"{f.schema}.{f.table}", f.index or f.subject,
                     pretty_size(f.size)) for n, f in enumerate(report.findings, 1)]
            fit_table([("#", "right"), ("level", "left"), ("kind", "left"), ("table", "left"), ("index", "left"),
                       ("size", "right")], rows, shrink=(("index", 24), ("table", 16), ("index", 12)))
            for n, f in enumerate(report.findings, 1):
                wrapped(f"  {n}. {f.evidence}", indent="", hanging="     ")
                for sql_line in f.fix.splitlines():
                    out.print(Text(f"     {sql_line}", "green"))
        for f, reason in report.silenced:
            line(f"  silenced {f.kind} {f.subject}: {reason}")
        counts = ", ".join(f"{sum(1 for f in report.findings if f.level == level)} {level}"
                           for level in ("error", "warning", "info"))
        line(f"  {len(report.findings)} finding(s): {counts}; {len(report.silenced)} silenced")

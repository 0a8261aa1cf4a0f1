"""What `dbtool explain` prints, and its Markdown report.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

from ..inspect.plans import plan_lines
from .console import emit_json, fit_table, line, wrapped
from .outfile import write_atomically


def explain_data(results: list) -> list[dict]:
    return [
        {
            "service": s.service,
            "database": s.where,
            "analysed": s.analysed,
            "queries": [
                {
                    "name": r.query.name,
                    "file": str(r.query.path),
                    "description": r.query.description,
                    "sql": r.query.text,
                    "params": {k: str(v) for k, v in r.values.items()},
                    "execution_ms": round(r.execution_ms, 3),
                    "planning_ms": round(r.planning_ms, 3),
                    "shape": r.shape,
                    "summary": r.summary,
                    "uses_index": r.uses_index,
                    "rows": {"estimated": r.estimated_rows, "actual": r.actual_rows},
                    "buffers": {"shared_hit": r.shared_hit, "shared_read": r.shared_read, "temp": r.temp_blocks},
                    "warnings": r.warnings,
                    "budget": {"max_ms": r.query.budget.max_ms, "no_seq_scan": r.query.budget.no_seq_scan,
                               "no_seq_scan_rows": r.query.budget.seq_scan_rows},
                    "broken": r.broken,
                    "budget_notes": r.notes,
                    "baseline_ms": r.baseline_ms,
                    "regressions": r.regressions,
                    "error": r.error,
                    "plan": r.plan,
                }
                for r in s.reports
            ],
        }
        for s in results
    ]


def explain(results: list, as_json: bool, output: Path | None = None, verbose: bool = False) -> None:
    """The table (or JSON) on stdout and, with `output`, the report (HTML for a .html name, else
    Markdown) written whole or not at all."""
    if output is not None:
        write_atomically(output, explain_file(results, output))
    if as_json:
        emit_json(explain_data(results))
        return
    for s in results:
        if s.analysed:
            wrapped(f"{s.service}: analysed {', '.join(s.analysed)} first (never analysed; plans need statistics)",
                    indent="", hanging="  ")
        rows = [(r.query.name, f"{r.execution_ms:.2f}" if not r.error else Text("timeout", "red"),
                 ", ".join(r.summary) or "-", f"{r.estimated_rows:,.0f}/{r.actual_rows:,.0f}",
                 f"{r.shared_hit:,}/{r.shared_read:,}", _verdict(r)) for r in s.reports]
        fit_table([("query", "left"), ("ms", "right"), ("plan", "left"), ("est/act", "right"),
                   ("hit/read", "right"), ("check", "left")], rows,
                  shrink=(("plan", 24), ("query", 16), ("plan", 12)), title=f"{s.service}: {s.where}")
        for r in s.reports:
            for kind, texts in (("warning", r.warnings), ("budget", r.broken), ("regression", r.regressions)):
                for text in texts:
                    wrapped(f"{kind} {r.query.name}: {text}")
            if verbose:
                for text in r.notes:
                    wrapped(f"fine {r.query.name}: {text}")
            if verbose and r.plan:
                line(f"  {r.query.name}:")
                for text in plan_lines(r.plan):
                    line(f"    {text}")
        small: dict[tuple[str, float], int] = {}
        for r in s.reports:
            for table, (rows, threshold) in r.small_scans.items():
                small[(table, rows)] = threshold
        if small:
            tables = ", ".join(f"{t} ({n:,.0f} rows)" for t, n in sorted(small))
            wrapped(f"fine: sequential scans on small tables, {tables}: no_seq_scan judges tables of"
                    f" {min(small.values()):,} rows or more (--large-rows, or no_seq_scan>=N)")
    reports = [r for s in results for r in s.reports]
    compared = [r for r in reports if r.baseline_ms is not None]
    against = f", {sum(1 for r in compared if r.regressions)} regressed against the baseline" if compared else ""
    wrapped(f"explained {len(reports)} key quer{'y' if len(reports) == 1 else 'ies'} in {len(results)} service"
            f"{'s' if len(results) != 1 else ''}: {sum(len(r.warnings) for r in reports)} warning(s),"
            f" {sum(1 for r in reports if r.broken)} over budget{against}", indent="", hanging="  ")


def _verdict(r) -> Text:
    if r.broken:
        return Text("broken", "red")
    if r.regressions:
        return Text("regressed", "red")
    return Text("ok", "green") if (r.query.budget.describe() or r.baseline_ms is not None) else Text("-")


def explain_file(results: list, output: Path) -> str:
    if output.suffix.lower() in (".html", ".htm"):
        from ..report.page import explain_page

        return explain_page(explain_data(results))
    return explain_markdown(results)


def explain_markdown(results: list, title: str = "dbtool explain") -> str:
    """The report for --output: a summary table, then each query with its SQL, values and plan."""
    from datetime import datetime, timezone

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "<br>")

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"# {title}", "", f"{now}. EXPLAIN (ANALYZE, BUFFERS) of each key query, in a read-only"
          " transaction rolled back afterwards.", "",
          "| service | query | time (ms) | plan | rows est / actual | buffers hit / read | warnings | budget |",
          "|---|---|---:|---|---:|---:|---|---|"]
    for s in results:
        for r in s.reports:
            budget = r.query.budget.describe() or "-"
            verdict = f"broken: {'; '.join(r.broken)}" if r.broken else (f"ok ({budget})" if budget != "-" else "-")
            md.append(f"| {s.service} | {r.query.name} | {r.execution_ms:.2f} | {cell(', '.join(r.shape)) or '-'} |"
                      f" {r.estimated_rows:,.0f} / {r.actual_rows:,.0f} | {r.shared_hit:,} / {r.shared_read:,} |"
                      f" {len(r.warnings)} | {cell(verdict)} |")
    for s in results:
        md += ["", f"## {s.service}", "", f"Database: {s.where}"]
        for r in s.reports:
            md += ["", f"### {r.query.name}", "", r.query.description, "", f"File: `{r.query.path}`", ""]
            if r.values:
                md += ["Parameters: " + ", ".join(f"`{k}` = `{v}`" for k, v in r.values.items()), ""]
            md += ["```sql", r.query.text, "```", ""]
            if r.error:
                md += [f"**Not finished:** {r.error}", ""]
            else:
                md += [f"Execution {r.execution_ms:.3f} ms, planning {r.planning_ms:.3f} ms; buffers shared hit"
                       f" {r.shared_hit:,}, read {r.shared_read:,}, temp {r.temp_blocks:,}.", "",
                       "```", *plan_lines(r.plan), "```", ""]
            md += [f"- warning: {w}" for w in r.warnings] + [f"- **budget broken:** {b}" for b in r.broken]
    return "\n".join(md).rstrip() + "\n"

"""What schema dump, schema check and verify print.
"""

from __future__ import annotations

from rich.markup import escape

from ..schemafile.commands import CheckResult, DumpResult
from ..schemafile.verify import Check, VerifyEvents, VerifyReport
from .console import emit_json, line, out


def schema_dump(results: list[DumpResult], as_json: bool) -> None:
    if as_json:
        emit_json([{"service": r.service, "file": str(r.path), "source": r.source, "changed": r.changed}
                   for r in results])
        return
    for r in results:
        what = "wrote" if r.changed else "unchanged"
        line(f"{r.service}: {what} {r.path} (from {r.source})")


def _difference(service: str, objects: list[str], diff: str) -> None:
    """The differing objects by name, then the unified diff, dimmed."""
    for finding in objects:
        out.print(f"    {service}: {finding}", style="red", markup=False)
    for text in diff.rstrip("\n").splitlines():
        out.print(f"    {text}", style="dim", markup=False)


def schema_check_data(results: list[CheckResult]) -> list[dict]:
    def diff(d) -> dict:
        return {"objects": d.findings(), "diff": d.diff} if d else {"objects": [], "diff": ""}

    return [
        {
            "service": r.service,
            "schema_file": {"path": str(r.path), "state": r.file, **diff(r.file_diff)},
            "live": {"database": r.database, "state": r.live, "compared_version": r.compared_version,
                     **diff(r.live_diff)},
            "notes": r.notes,
            "clean": r.clean,
        }
        for r in results
    ]


_MARKS = {"ok": "[green]ok[/green]    ", "FAILED": "[red]FAILED[/red]", "DRIFT": "[red]DRIFT[/red] ",
          "--": "[yellow]--[/yellow]    "}


def _mark(mark: str, text: str, note: str = "") -> None:
    """'  ok      <text>  <note>': the mark styled, the text as is (paths and messages may hold brackets)."""
    dim = f"  [dim]{escape(note)}[/dim]" if note else ""
    out.print(f"  {_MARKS[mark]}  {escape(text)}{dim}", highlight=False)


def schema_check(results: list[CheckResult], as_json: bool) -> None:
    if as_json:
        emit_json(schema_check_data(results))
        return
    for r in results:
        out.print(f"[bold]{escape(r.service)}[/bold]: rebuilt from its migrations on a scratch database")
        fix = f"run 'dbtool schema dump {r.service}' and commit it"
        if r.file == "ok":
            _mark("ok", f"{r.path} matches the migrations")
        elif r.file == "missing":
            _mark("FAILED", f"{r.path} does not exist; {fix}")
        else:
            _mark("FAILED", f"{r.path} is stale or was edited by hand; {fix}")
            _difference(r.service, r.file_diff.findings(), r.file_diff.diff)
        if r.live == "ok":
            _mark("ok", f"the live database {r.database} matches the migrations")
        elif r.live == "drift":
            count = len(r.live_diff.findings())
            _mark("DRIFT", f"the live database {r.database} was changed outside its migrations"
                           f" ({count} finding{'s' if count != 1 else ''}):")
            _difference(r.service, r.live_diff.findings(), r.live_diff.diff)
        else:
            _mark("--", f"the live database {r.database}: not compared")
        for note in r.notes:
            out.print(f"  note: {note}", markup=False)
    bad = [r.service for r in results if not r.clean]
    line(f"checked {len(results)} service(s): " + (f"findings in {', '.join(bad)}" if bad else "no findings"))


def verify_progress(quiet: bool = False) -> VerifyEvents:
    """A line per check as verify goes: ok, or FAILED with the reason and the objects that differ."""
    if quiet:
        return VerifyEvents()

    def target(service: str, where: str) -> None:
        out.print(f"[bold]{escape(service)}[/bold]: scratch database {escape(where)}", highlight=False)

    def check(c: Check) -> None:
        if c.ok:
            _mark("ok", c.name, c.detail)
            return
        _mark("FAILED", f"{c.name}: {c.detail}")
        _difference(c.service, c.objects, c.diff)

    return VerifyEvents(target=target, check=check)


def verify_data(report: VerifyReport) -> dict:
    return {
        "ok": report.ok,
        "services": report.services,
        "scratch": report.scratch,
        "checks": [{"service": c.service, "check": c.name, "ok": c.ok, "detail": c.detail,
                    "objects": c.objects, "diff": c.diff} for c in report.checks],
    }


def verify_summary(report: VerifyReport, as_json: bool) -> None:
    if as_json:
        emit_json(verify_data(report))
        return
    failed = report.failed
    verdict = f"{len(failed)} FAILED ({', '.join(sorted({c.service for c in failed}))})" if failed else "all hold"
    line(f"verified {len(report.services)} service(s), {len(report.checks)} checks: {verdict};"
         f" scratch databases dropped")


def baselined(result) -> None:  # noqa: ANN001 - schemafile.baseline.BaselineResult
    line(f"{result.service}: wrote {result.up} ({result.objects} objects) and {result.down.name};"
         f" recorded as applied in {result.where}")
    for change in result.triggers:
        line(f"  the next migrate's trigger sync would add: {change.describe()}")
    if result.triggers:
        line("  (to keep updated_at as the application sets it, add [triggers] sync = false or skip = [...]"
             " to the service's dbtool.toml first)")

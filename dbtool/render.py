"""Everything a person or a script reads: rich tables and lines for people, JSON for scripts."""

from __future__ import annotations

import json as jsonlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .api import Events, ServiceResult
from .lint import LintReport
from .schema import CheckResult, DumpResult
from .seed import SeedEvents, SeedReport, TableLoad
from .triggers import TriggerSync
from .verify import Check, VerifyEvents, VerifyReport

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: str) -> None:
    err.print(f"error: {message}", markup=False)


def line(text: str) -> None:
    out.print(text, markup=False)


def emit_json(data: object) -> None:
    # print() rather than rich: nothing but the JSON document may reach stdout.
    print(jsonlib.dumps(data, indent=2, default=str))


def progress(verb: str, quiet: bool = False) -> Events:
    """Live lines while a command works; none at all when stdout must hold only JSON."""
    if quiet:
        return Events()

    def target(service: str, where: str) -> None:
        out.print(f"[bold]{service}[/bold]: {where}")

    def migration(service: str, m, seconds: float) -> None:
        out.print(f"  [green]{verb}[/green] {m.id}  [dim]{seconds * 1000:.0f} ms[/dim]")

    return Events(target=target, migration=migration, triggers=trigger_changes)


def trigger_changes(service: str, sync: TriggerSync) -> None:
    prefix = "would have " if sync.dry_run else ""
    for change in sync.changes:
        out.print(f"  [cyan]{prefix}{change.describe()}[/cyan]")


def summary_data(results: list[ServiceResult], dry_run: bool) -> list[dict]:
    return [
        {
            "service": r.service,
            "database": r.where,
            "dry_run": dry_run,
            "migrations": [{"id": m.id, "ms": round(r.seconds[m.id] * 1000, 1)} for m in r.done],
            "sql": [{"id": m.id, "statements": [st.sql for st in sts]} for m, sts in r.sql],
            "triggers": [c.describe() for c in r.triggers.changes] if r.triggers else [],
        }
        for r in results
    ]


def summary(results: list[ServiceResult], verb: str, dry_run: bool, as_json: bool = False) -> None:
    if as_json:
        emit_json(summary_data(results, dry_run))
        return
    if dry_run:
        for r in results:
            if not r.sql:
                line(f"-- {r.service}: nothing to run")
            for m, statements in r.sql:
                path = m.up if verb == "applied" else m.down
                line(f"-- {r.service}: {path}")
                for st in statements:
                    line(st.sql.rstrip().rstrip(";") + ";")
        return
    for r in results:
        if not r.done:
            out.print(f"  {r.service}: nothing to do, up to date" if verb == "applied"
                      else f"  {r.service}: nothing to roll back")
    total = sum(len(r.done) for r in results)
    out.print(f"{verb} {total} migration{'s' if total != 1 else ''} in {len(results)} service"
              f"{'s' if len(results) != 1 else ''}")


def status_data(results: list[ServiceResult]) -> list[dict]:
    data = []
    for r in results:
        state = r.state
        assert state is not None
        data.append({
            "service": r.service,
            "database": r.where,
            "database_exists": state.database_exists,
            "migrations": [
                {
                    "version": m.version,
                    "id": m.id,
                    "state": state.state_of(m),
                    "applied_at": state.applied[m.id].applied_at if m.id in state.applied else None,
                }
                for m in state.migrations
            ],
            "pending": [m.id for m in state.pending],
            "edited": [str(path) for _, path in state.edited],
            "missing": state.missing,
            "invalid_indexes": state.invalid_indexes,
        })
    return data


def status(results: list[ServiceResult], as_json: bool) -> None:
    data = status_data(results)
    if as_json:
        emit_json(data)
        return
    for service in data:
        table = Table(title=f"{service['service']}: {service['database']}", title_justify="left")
        for col in ("version", "migration", "state", "applied at (UTC)"):
            table.add_column(col)
        styles = {"applied": "green", "pending": "yellow", "edited": "red", "unknown": "magenta"}
        for m in service["migrations"]:
            at = m["applied_at"]
            table.add_row(f"{m['version']:03d}", m["id"], f"[{styles[m['state']]}]{m['state']}[/]",
                          at.strftime("%Y-%m-%d %H:%M:%S") if at else "")
        for mid in service["missing"]:
            table.add_row("", mid, "[red]missing file[/]", "")
        out.print(table)
        notes = []
        if not service["database_exists"]:
            notes.append("database does not exist yet; migrate creates it")
        notes.append(f"{len(service['migrations']) - len(service['pending'])} applied, "
                     f"{len(service['pending'])} pending")
        for index in service["invalid_indexes"]:
            notes.append(f"invalid index {index}: a concurrent build failed or was killed; 'dbtool migrate' builds"
                         f" it again if a pending migration names it, else DROP INDEX CONCURRENTLY {index}")
        for note in notes:
            out.print(f"  {note}", markup=False)


def server_status(data_dir: Path, conninfo: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({"data_dir": str(data_dir), "running": conninfo is not None, "conninfo": conninfo})
    elif conninfo:
        line(f"embedded server running: {conninfo} (data in {data_dir})")
    else:
        line(f"embedded server not running (data in {data_dir}); 'dbtool server start' starts it")


def trigger_progress() -> Events:
    """The triggers command: each service's changes, or that it is up to date, as it goes."""

    def report(service: str, sync: TriggerSync) -> None:
        trigger_changes(service, sync)
        tables = ", ".join(sync.tables) or "no table"
        if not sync.changes:
            out.print(f"  up to date: updated_at kept current on {tables}", markup=False)

    return Events(target=progress("").target, triggers=report)


def triggers(results: list[ServiceResult], as_json: bool) -> None:
    if as_json:
        emit_json([
            {
                "service": r.service,
                "database": r.where,
                "dry_run": r.triggers.dry_run,
                "tables": r.triggers.tables,
                "changes": [{"action": c.action, "kind": c.kind, "name": c.name, "table": c.table,
                             "sql": list(c.statements)} for c in r.triggers.changes],
            }
            for r in results if r.triggers is not None
        ])
        return
    total = sum(len(r.triggers.changes) for r in results if r.triggers is not None)
    verb = "would make" if any(r.triggers and r.triggers.dry_run for r in results) else "made"
    line(f"{verb} {total} trigger change{'s' if total != 1 else ''} in {len(results)} service"
         f"{'s' if len(results) != 1 else ''}")


def references_data(reports: list) -> list[dict]:
    return [
        {
            "service": r.reference.service,
            "column": f"{r.reference.table}.{r.reference.column}",
            "points_at": f"{r.reference.target_service}.{r.reference.target_table}.{r.reference.target_column}",
            "rows": r.rows,
            "dangling": {"rows": r.dangling.rows, "examples": r.dangling.examples},
            "stale_copies": {col: {"rows": m.rows, "examples": m.examples} for col, m in r.stale.items()},
        }
        for r in reports
    ]


def references(reports: list, as_json: bool) -> None:
    if as_json:
        emit_json(references_data(reports))
        return
    table = Table(title="soft references", title_justify="left")
    for col in ("service", "column", "points at", "rows", "dangling", "stale copies"):
        table.add_column(col)
    for r in reports:
        ref = r.reference
        stale = sum(m.rows for m in r.stale.values())
        table.add_row(ref.service, f"{ref.table}.{ref.column}",
                      f"{ref.target_service} {ref.target_table}.{ref.target_column}", str(r.rows),
                      f"[red]{r.dangling.rows}[/]" if r.dangling.rows else "0",
                      f"[red]{stale}[/]" if stale else ("0" if r.stale else "-"))
    out.print(table)
    for r in reports:
        ref = r.reference
        if r.dangling.rows:
            line(f"  {ref.service} {ref.table}.{ref.column}: {r.dangling.rows} row(s) point at no "
                 f"{ref.target_service} {ref.target_table}.{ref.target_column}, e.g. {', '.join(r.dangling.examples)}")
        for col, m in r.stale.items():
            if m.rows:
                line(f"  {ref.service} {ref.table}.{col}: {m.rows} row(s) differ from the row they point at,"
                     f" e.g. {ref.column} {', '.join(m.examples)}")
    bad = sum(1 for r in reports if not r.clean)
    line(f"{len(reports)} soft reference(s) checked, {bad} with findings" if reports
         else "no soft references declared (schemas/<service>/references.toml)")


@contextmanager
def seed_progress(as_json: bool) -> Iterator[SeedEvents]:
    """A progress bar per table being loaded; a line per seed file. Nothing at all for --json."""
    if as_json:
        yield SeedEvents()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=out)
    tasks: dict[int, object] = {}

    def target(service: str, where: str) -> None:
        progress.console.print(f"[bold]{service}[/bold]: {where}")

    def start(load: TableLoad, total: int | None) -> None:
        if not tasks:
            progress.start()  # only once there is a bar to show: seed files print plain lines
        label = load.table if load.group == load.table else f"{load.table} ({load.group})"
        tasks[id(load)] = progress.add_task(f"{load.service} {label}", total=total, note="")

    def advance(load: TableLoad, rows: int) -> None:
        progress.update(tasks[id(load)], advance=rows)  # type: ignore[arg-type]

    def done(load: TableLoad) -> None:
        task = tasks.get(id(load))
        if task is None:  # a seed file
            what = f"{load.rows} new row(s) in {load.table}" if load.rows else "nothing new, already seeded"
            progress.console.print(f"  {load.group}: {what}", markup=False)
            return
        note = f"{load.rows_per_second:,.0f} rows/s" if load.rows else "nothing new"
        if load.present:
            note += f", {load.present:,} already there"
        progress.update(task, total=load.rows, completed=load.rows, note=note)  # type: ignore[arg-type]

    try:
        yield SeedEvents(target=target, start=start, advance=advance, done=done)
    finally:
        if tasks:
            progress.stop()


def seed_data(report: SeedReport) -> dict:
    return {
        "scale": report.scale,
        "services": report.services,
        "rows": report.rows,
        "seconds": round(report.seconds, 3),
        "rows_per_second": round(report.rows_per_second, 1),
        "tables": [
            {"service": x.service, "table": x.table, "source": x.group, "rows": x.rows, "already_there": x.present,
             "seconds": round(x.seconds, 3), "rows_per_second": round(x.rows_per_second, 1)}
            for x in report.loads
        ],
    }


def seed_summary(report: SeedReport, as_json: bool) -> None:
    if as_json:
        emit_json(seed_data(report))
        return
    what = f"scale {report.scale}" if report.scale else "seed files"
    line(f"seeded {report.rows:,} rows ({what}) into {len(report.services)} service(s) in {report.seconds:.2f} s:"
         f" {report.rows_per_second:,.0f} rows/s")


# ---------------------------------------------------------------- audit-indexes


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

    from .audit import pretty_size

    if as_json:
        emit_json(audit_data(results))
        return
    # Names and SQL go in as Text: a bracket in them is not rich markup.
    styles = {"error": "red", "warning": "yellow", "info": "cyan"}
    for r in results:
        report = r.report
        reset = f"{report.stats_reset:%Y-%m-%d %H:%M:%S %Z}".strip() if report.stats_reset else "never reset"
        out.print(Text.assemble((r.service, "bold"), f": {r.where}"))
        line(f"  {report.tables} tables, {report.indexes} indexes; statistics since: {reset}")
        if report.notice:
            out.print(Text.assemble("  ", ("notice:", "yellow"), f" {report.notice}"))
        if report.findings:
            # Evidence and fix go under the table, unwrapped, so the SQL can be copied as it is.
            table = Table(title_justify="left")
            for col in ("#", "level", "kind", "table", "index", "size"):
                table.add_column(col, justify="right" if col in ("#", "size") else "left", overflow="fold")
            for n, f in enumerate(report.findings, 1):
                where = f.table if f.schema == "public" else f"{f.schema}.{f.table}"
                table.add_row(str(n), Text(f.level, styles[f.level]), f.kind, Text(where),
                              Text(f.index or f.subject), pretty_size(f.size))
            out.print(table)
            for n, f in enumerate(report.findings, 1):
                line(f"  {n}. {f.evidence}")
                for sql_line in f.fix.splitlines():
                    out.print(Text(f"     {sql_line}", "green"))
        for f, reason in report.silenced:
            line(f"  silenced {f.kind} {f.subject}: {reason}")
        counts = ", ".join(f"{sum(1 for f in report.findings if f.level == level)} {level}"
                           for level in ("error", "warning", "info"))
        line(f"  {len(report.findings)} finding(s): {counts}; {len(report.silenced)} silenced")


# ---------------------------------------------------------------- dbtool lint


def lint(report: LintReport, fmt: str = "text") -> None:
    """Findings one a line: `path:line:col: level rule message (fix: ...)`, as JSON, or as GitHub annotations."""
    if fmt == "json":
        emit_json([f.as_dict() for f in report.findings])
        return
    if fmt == "github":
        for f in report.findings:
            props = ",".join(f"{k}={_gh_escape(str(v), True)}" for k, v in
                             (("file", f.path), ("line", f.line), ("col", f.column), ("title", f.rule)))
            print(f"::{f.level} {props}::{_gh_escape(f'{f.message} (fix: {f.fix})', False)}")
        return
    colours = {"error": "red", "warning": "yellow"}
    for f in report.findings:
        out.print(f"{f.path}:{f.line}:{f.column}: [{colours[f.level]}]{f.level}[/] [bold]{f.rule}[/] "
                  f"{_escape(f.message)} [dim](fix: {_escape(f.fix)})[/]")
    silenced = f", {len(report.silenced)} silenced by ignore comments" if report.silenced else ""
    out.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in {report.files} file(s){silenced}",
              markup=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _gh_escape(text: str, property_value: bool) -> str:
    # GitHub's workflow-command encoding: these characters would end the value or the command.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


# ---------------------------------------------------------------- schema dump | check, verify


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


# ---------------------------------------------------------------- explain


def explain_data(results: list) -> list[dict]:
    return [
        {
            "service": s.service,
            "database": s.where,
            "queries": [
                {
                    "name": r.query.name,
                    "file": str(r.query.path),
                    "description": r.query.description,
                    "params": {k: str(v) for k, v in r.values.items()},
                    "execution_ms": round(r.execution_ms, 3),
                    "planning_ms": round(r.planning_ms, 3),
                    "shape": r.shape,
                    "uses_index": r.uses_index,
                    "rows": {"estimated": r.estimated_rows, "actual": r.actual_rows},
                    "buffers": {"shared_hit": r.shared_hit, "shared_read": r.shared_read, "temp": r.temp_blocks},
                    "warnings": r.warnings,
                    "budget": {"max_ms": r.query.budget.max_ms, "no_seq_scan": r.query.budget.no_seq_scan},
                    "broken": r.broken,
                    "error": r.error,
                    "plan": r.plan,
                }
                for r in s.reports
            ],
        }
        for s in results
    ]


def explain(results: list, as_json: bool) -> None:
    if as_json:
        emit_json(explain_data(results))
        return
    for s in results:
        table = Table(title=f"{s.service}: {s.where}", title_justify="left")
        for col, justify in (("query", "left"), ("ms", "right"), ("plan", "left"), ("rows est/actual", "right"),
                             ("buffers hit/read", "right"), ("budget", "left")):
            table.add_column(col, justify=justify, no_wrap=col == "query")  # type: ignore[arg-type]
        for r in s.reports:
            state = "[red]broken[/]" if r.broken else ("[green]ok[/]" if r.query.budget.describe() else "-")
            table.add_row(r.query.name, f"{r.execution_ms:.2f}" if not r.error else "[red]timeout[/]",
                          "\n".join(r.shape) or "-", f"{r.estimated_rows:,.0f} / {r.actual_rows:,.0f}",
                          f"{r.shared_hit:,} / {r.shared_read:,}", state)
        out.print(table)
        for r in s.reports:
            for warning in r.warnings:
                out.print(f"  [yellow]warning[/] {r.query.name}: ", end="")
                line(warning)
            for broken in r.broken:
                out.print(f"  [red]budget[/] {r.query.name}: ", end="")
                line(broken)
    reports = [r for s in results for r in s.reports]
    line(f"explained {len(reports)} key quer{'y' if len(reports) == 1 else 'ies'} in {len(results)} service"
         f"{'s' if len(results) != 1 else ''}: {sum(len(r.warnings) for r in reports)} warning(s),"
         f" {sum(1 for r in reports if r.broken)} over budget")


def explain_markdown(results: list, title: str = "dbtool explain") -> str:
    """The report for --output: a summary table, then each query with its SQL, values and plan."""
    from datetime import datetime, timezone

    from .explain import plan_lines

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

"""Everything a person or a script reads: rich tables and lines for people, JSON for scripts."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .api import Events, ServiceResult

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

    return Events(target=target, migration=migration)


def summary_data(results: list[ServiceResult], dry_run: bool) -> list[dict]:
    return [
        {
            "service": r.service,
            "database": r.where,
            "dry_run": dry_run,
            "migrations": [{"id": m.id, "ms": round(r.seconds[m.id] * 1000, 1)} for m in r.done],
            "sql": [{"id": m.id, "statements": [st.sql for st in sts]} for m, sts in r.sql],
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
            notes.append(f"invalid index {index}: a concurrent build failed; DROP INDEX CONCURRENTLY {index}"
                         " and migrate again")
        for note in notes:
            out.print(f"  {note}", markup=False)


def server_status(data_dir: Path, conninfo: str | None, as_json: bool) -> None:
    if as_json:
        emit_json({"data_dir": str(data_dir), "running": conninfo is not None, "conninfo": conninfo})
    elif conninfo:
        line(f"embedded server running: {conninfo} (data in {data_dir})")
    else:
        line(f"embedded server not running (data in {data_dir}); 'dbtool server start' starts it")

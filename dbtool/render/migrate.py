"""What migrate, rollback, status and triggers print.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..migrate.results import Events, ServiceResult
from .console import emit_json, fit_table, line, say

if TYPE_CHECKING:
    from ..migrate.triggers import TriggerSync


def progress(verb: str, quiet: bool = False) -> Events:
    """Live lines while a command works; none at all when stdout must hold only JSON."""
    if quiet:
        return Events()

    def target(service: str, where: str) -> None:
        say((service, "bold"), f": {where}")

    def migration(service: str, m, seconds: float) -> None:
        say("  ", (verb, "green"), f" {m.id}  ", (f"{seconds * 1000:.0f} ms", "dim"))

    def retry(service: str, text: str) -> None:
        say("  ", (text, "yellow"))

    return Events(target=target, migration=migration, triggers=trigger_changes, retry=retry)


def trigger_changes(service: str, sync: TriggerSync) -> None:
    prefix = "would have " if sync.dry_run else ""
    for change in sync.changes:
        say("  ", (f"{prefix}{change.describe()}", "cyan"))


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
            line(f"  {r.service}: nothing to do, up to date" if verb == "applied"
                 else f"  {r.service}: nothing to roll back")
    total = sum(len(r.done) for r in results)
    line(f"{verb} {total} migration{'s' if total != 1 else ''} in {len(results)} service"
              f"{'s' if len(results) != 1 else ''}")
    if any(r.where.endswith("(embedded server)") for r in results):
        line("the embedded server is left running for the next command; 'dbtool server stop' stops it")


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
    from rich.text import Text

    styles = {"applied": "green", "pending": "yellow", "edited": "red", "unknown": "magenta"}
    for service in data:
        rows = []
        # As Flyway shows it: the version, then the rest of the name, which then fits in 80 columns.
        for m in service["migrations"]:
            at = m["applied_at"]
            rows.append((*_named(m["id"]), Text(m["state"], styles[m["state"]]),
                         at.strftime("%Y-%m-%d %H:%M:%S") if at else ""))
        for mid in service["missing"]:
            rows.append((*_named(mid), Text("missing file", "red"), ""))
        fit_table([("version", "left"), ("description", "left"), ("state", "left"), ("applied at (UTC)", "left")],
                  rows, shrink=(("description", 24),), title=f"{service['service']}: {service['database']}")
        notes = []
        if not service["database_exists"]:
            notes.append("database does not exist yet; migrate creates it")
        notes.append(f"{len(service['migrations']) - len(service['pending'])} applied, "
                     f"{len(service['pending'])} pending")
        for index in service["invalid_indexes"]:
            notes.append(f"invalid index {index}: a concurrent build failed or was killed; 'dbtool migrate' builds"
                         f" it again if a pending migration names it, else DROP INDEX CONCURRENTLY {index}")
        for note in notes:
            line(f"  {note}")


def _named(migration_id: str) -> tuple[str, str]:
    """`005_drop_old_index` read as Flyway does: version 005, description "drop old index". An id
    recorded by some other tool, not numbered so, is its own description."""
    number, _, rest = migration_id.partition("_")
    return (number, rest.replace("_", " ")) if number.isdigit() and rest else ("", migration_id)


def trigger_progress(quiet: bool = False) -> Events:
    """The triggers command: each service's changes, or that it is up to date, as it goes."""
    if quiet:
        return Events()

    def report(service: str, sync: TriggerSync) -> None:
        trigger_changes(service, sync)
        tables = ", ".join(sync.tables) or "no table"
        if not sync.changes:
            line(f"  up to date: updated_at kept current on {tables}")

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


def validated(trees: dict) -> None:
    for service, tree in trees.items():
        line(f"{service}: {len(tree)} migrations, tree is valid")


def repaired(accepted: list) -> None:
    for service, m in accepted:
        line(f"{service}: accepted the current {m.id} files")
    if not accepted:
        line("nothing to repair: every applied migration matches its files")

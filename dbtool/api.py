"""The core commands, callable from Python: settings first, then services, then options.

>>> from dbtool import api, config
>>> api.migrate(config.make_settings(), ["identity"])
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from psycopg.conninfo import make_conninfo

from . import migrations as mig
from . import server
from . import triggers as trig
from .config import Settings, Target, resolve_target, select_services
from .errors import BadInput, DatabaseUnavailable, Refused


@dataclass
class Events:
    """What a command tells its user while it works; the CLI renders these, Python callers may not."""

    target: Callable[[str, str], None] = lambda service, where: None
    migration: Callable[[str, mig.Migration, float], None] = lambda service, m, seconds: None
    triggers: Callable[[str, trig.TriggerSync], None] = lambda service, sync: None


@dataclass
class ServiceResult:
    service: str
    where: str
    done: list[mig.Migration] = field(default_factory=list)
    state: mig.State | None = None
    sql: list[tuple[mig.Migration, list[mig.Statement]]] = field(default_factory=list)
    triggers: trig.TriggerSync | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # migration id -> time it took

    def reporter(self, events: Events) -> mig.Report:
        def report(m: mig.Migration, seconds: float) -> None:
            self.seconds[m.id] = seconds
            events.migration(self.service, m, seconds)

        return report


def load(settings: Settings, service: str) -> list[mig.Migration]:
    return mig.load_tree(settings.schemas_dir / service)


def validate(settings: Settings, services: list[str] | None) -> dict[str, list[mig.Migration]]:
    """Check every selected service's tree; report every problem of every service at once."""
    problems: list[str] = []
    trees = {}
    for service in select_services(settings, services):
        try:
            trees[service] = load(settings, service)
        except mig.MigrationTreeError as exc:
            problems.extend(exc.problems)
    if problems:
        raise mig.MigrationTreeError(problems)
    return trees


def locate(target: Target, settings: Settings) -> tuple[str, str]:
    """The conninfo of a service's database (starting the embedded server if it is the one) and where
    it is, for people: host, database, user and how it was chosen; never the password."""
    conninfo = server.target_conninfo(target, settings)
    return conninfo, server.describe_target(target, conninfo)


def migrate(
    settings: Settings, services: list[str] | None = None, to: int | None = None,
    dry_run: bool = False, events: Events | None = None,
) -> list[ServiceResult]:
    events = events or Events()
    trees = validate(settings, services)
    if to is not None and len(trees) > 1:
        raise BadInput("--to names one service's version; name one SERVICE with --to")
    results = []
    for service, tree in trees.items():
        target = resolve_target(service, settings)
        conninfo, where = locate(target, settings)
        events.target(service, where)
        result = ServiceResult(service, where)
        if dry_run:
            state = peek_state(conninfo, tree, settings)
            mig.refuse_drift(state)
            result.sql = [(m, m.statements("up")) for m in mig.plan_up(state, to)]
        else:
            if target.may_create:
                server.ensure_database(conninfo, wait=settings.wait)
            with server.connect(conninfo, wait=settings.wait) as conn:
                result.done = mig.migrate_connection(
                    conn, tree, to, settings.lock_timeout,
                    report=result.reporter(events),
                )
                result.triggers = _sync_triggers(conn, service, events)
        results.append(result)
    return results


def rollback(
    settings: Settings, services: list[str] | None = None, steps: int | None = None,
    to: int | None = None, everything: bool = False, force: bool = False,
    dry_run: bool = False, events: Events | None = None,
) -> list[ServiceResult]:
    events = events or Events()
    chosen = [o for o in (steps is not None, to is not None, everything) if o]
    if len(chosen) > 1:
        raise BadInput("--steps, --to and --all choose what to roll back; give only one of them")
    if steps is not None and steps < 1:
        raise BadInput(f"--steps {steps}: give a positive number of migrations to roll back")
    trees = validate(settings, services)
    if to is not None and len(trees) > 1:
        raise BadInput("--to names one service's version; name one SERVICE with --to")
    results = []
    for service, tree in trees.items():
        target = resolve_target(service, settings)
        conninfo, where = locate(target, settings)
        events.target(service, where)
        result = ServiceResult(service, where)
        if dry_run:
            state = peek_state(conninfo, tree, settings)
            mig.refuse_drift(state)
            mig.check_version(tree, to, "--to")
            plan = mig.plan_down(state, steps, to, everything)
            result.sql = [(m, m.statements("down")) for m in plan]
        else:
            with server.connect(conninfo, wait=settings.wait) as conn:
                result.done = mig.rollback_connection(
                    conn, tree, steps, to, everything, force, settings.lock_timeout,
                    report=result.reporter(events),
                )
                result.triggers = _sync_triggers(conn, service, events)
        results.append(result)
    return results


def _sync_triggers(conn, service: str, events: Events, dry_run: bool = False) -> trig.TriggerSync:
    """The updated_at triggers follow the schema the migrations just left, on the same connection."""
    sync = trig.sync_connection(conn, dry_run=dry_run)
    events.triggers(service, sync)
    return sync


def sync_triggers(
    settings: Settings, services: list[str] | None = None, dry_run: bool = False, events: Events | None = None,
) -> list[ServiceResult]:
    """Give every table with an updated_at column its trigger, and take it from tables without one."""
    events = events or Events()
    results = []
    for service in select_services(settings, services):
        target = resolve_target(service, settings)
        conninfo, where = locate(target, settings)
        events.target(service, where)
        result = ServiceResult(service, where)
        if not database_exists(conninfo, settings):
            raise DatabaseUnavailable(
                f"{service}: database {target.dbname} does not exist; run 'dbtool migrate {service}' first"
            )
        with server.connect(conninfo, wait=settings.wait) as conn:
            result.triggers = _sync_triggers(conn, service, events, dry_run)
        results.append(result)
    return results


def database_exists(conninfo: str, settings: Settings) -> bool:
    return peek_state(conninfo, [], settings).database_exists


def peek_state(conninfo: str, tree: list[mig.Migration], settings: Settings) -> mig.State:
    """The state without changing anything: a database that does not exist has nothing applied."""
    from psycopg.conninfo import conninfo_to_dict

    dbname = str(conninfo_to_dict(conninfo)["dbname"])
    try:
        with server.connect(make_conninfo(conninfo, dbname="postgres"), wait=settings.wait) as admin:
            exists = server.database_exists(admin, dbname)
    except Exception:
        exists = True  # no access to the maintenance database: let the real connection tell
    if not exists:
        return mig.State(tree, {}, database_exists=False)
    with server.connect(conninfo, wait=settings.wait) as conn:
        return mig.read_state(conn, tree)


def status(settings: Settings, services: list[str] | None = None, events: Events | None = None) -> list[ServiceResult]:
    events = events or Events()
    trees = validate(settings, services)
    results = []
    for service, tree in trees.items():
        target = resolve_target(service, settings)
        conninfo, where = locate(target, settings)
        events.target(service, where)
        results.append(ServiceResult(service, where, state=peek_state(conninfo, tree, settings)))
    return results


def repair(settings: Settings, services: list[str] | None = None) -> list[tuple[str, mig.Migration]]:
    """Accept intended edits: record the current checksums of edited or unrecorded applied migrations."""
    trees = validate(settings, services)
    accepted = []
    for service, tree in trees.items():
        conninfo, _ = locate(resolve_target(service, settings), settings)
        with server.connect(conninfo, wait=settings.wait) as conn:
            with mig.advisory_lock(conn, settings.lock_timeout, service):
                mig.tracking(conn)
                state = mig.read_state(conn, tree)
                for m in [e for e, _ in state.edited] + state.unknown:
                    mig.record_checksum(conn, m)
                    accepted.append((service, m))
    return accepted


def new_migration(settings: Settings, service: str, name: str) -> tuple[Path, Path]:
    """Write the next numbered up/down pair of a service; the up file must be filled in before migrate."""
    select_services(settings, [service])
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not re.match(r"^[a-z][a-z0-9_]*$", slug):
        raise BadInput(f"NAME {name!r}: give a name that starts with a letter, e.g. add_user_bio_column")
    folder = settings.schemas_dir / service
    versions = [
        parsed[0]
        for p in folder.glob("*.sql")
        if (parsed := mig.parse_file_name(p.name)) is not None
    ]
    version = max(versions, default=0) + 1
    stem = f"{version:03d}_{slug}"
    up, down = folder / f"{stem}.sql", folder / f"{stem}.down.sql"
    if up.exists() or down.exists():
        raise Refused(f"{up}: already exists; choose another name")
    up.write_text(f"-- Up migration {stem}: one change, reversed by {down.name}.\n", encoding="utf-8")
    down.write_text(f"-- Down migration {stem}: undo exactly what {up.name} does.\n", encoding="utf-8")
    return up, down

"""The migration commands, callable from Python: settings first, then services, then options.

>>> from dbtool import config
>>> from dbtool.migrate.commands import migrate
>>> migrate(config.make_settings(), ["identity"])
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import server
from ..config import Settings, resolve_target, select_services
from ..databases import database_exists, locate, peek_state
from ..errors import BadInput, DatabaseUnavailable, MigrationTreeError, Refused
from .locks import policy_of
from .runner import OnMigration, migrate_connection, rollback_connection
from .state import State, check_version, plan_down, plan_up, read_state, refuse_drift
from .tracking import advisory_lock, record_checksum, tracking
from .tree import Migration, Statement, load_tree, parse_file_name
from .triggers import TriggerSync, sync_connection


@dataclass
class Events:
    """What a command tells its user while it works; the CLI renders these, Python callers may not."""

    target: Callable[[str, str], None] = lambda service, where: None
    migration: Callable[[str, Migration, float], None] = lambda service, m, seconds: None
    triggers: Callable[[str, TriggerSync], None] = lambda service, sync: None
    retry: Callable[[str, str], None] = lambda service, line: None  # a lock wait, a retry


@dataclass
class ServiceResult:
    service: str
    where: str
    done: list[Migration] = field(default_factory=list)
    state: State | None = None
    sql: list[tuple[Migration, list[Statement]]] = field(default_factory=list)
    triggers: TriggerSync | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # migration id -> time it took

    @property
    def drifted(self) -> bool:
        """Anything pending, edited or missing: what `status --exit-code` fails on."""
        return bool(self.state and (self.state.pending or self.state.edited or self.state.missing))

    def reporter(self, events: Events) -> OnMigration:
        def report(m: Migration, seconds: float) -> None:
            self.seconds[m.id] = seconds
            events.migration(self.service, m, seconds)

        return report


def load(settings: Settings, service: str) -> list[Migration]:
    return load_tree(settings.schemas_dir / service)


def validate(settings: Settings, services: list[str] | None) -> dict[str, list[Migration]]:
    """Check every selected service's tree; report every problem of every service at once."""
    problems: list[str] = []
    trees = {}
    for service in select_services(settings, services):
        try:
            trees[service] = load(settings, service)
        except MigrationTreeError as exc:
            problems.extend(exc.problems)
    if problems:
        raise MigrationTreeError(problems)
    return trees


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
            refuse_drift(state)
            result.sql = [(m, m.statements("up")) for m in plan_up(state, to)]
        else:
            if target.may_create:
                server.ensure_database(conninfo, wait=settings.wait)
            with server.connect(conninfo, wait=settings.wait) as conn:
                result.done = migrate_connection(
                    conn, tree, to, settings.lock_timeout,
                    report=result.reporter(events),
                    policy=policy_of(settings), on_retry=functools.partial(events.retry, service),
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
            refuse_drift(state)
            check_version(tree, to, "--to")
            plan = plan_down(state, steps, to, everything)
            result.sql = [(m, m.statements("down")) for m in plan]
        else:
            with server.connect(conninfo, wait=settings.wait) as conn:
                result.done = rollback_connection(
                    conn, tree, steps, to, everything, force, settings.lock_timeout,
                    report=result.reporter(events),
                    policy=policy_of(settings), on_retry=functools.partial(events.retry, service),
                )
                result.triggers = _sync_triggers(conn, service, events)
        results.append(result)
    return results


def _sync_triggers(conn, service: str, events: Events, dry_run: bool = False) -> TriggerSync:
    """The updated_at triggers follow the schema the migrations just left, on the same connection."""
    sync = sync_connection(conn, dry_run=dry_run)
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


def repair(settings: Settings, services: list[str] | None = None) -> list[tuple[str, Migration]]:
    """Accept intended edits: record the current checksums of edited or unrecorded applied migrations."""
    trees = validate(settings, services)
    accepted = []
    for service, tree in trees.items():
        conninfo, _ = locate(resolve_target(service, settings), settings)
        with server.connect(conninfo, wait=settings.wait) as conn:
            with advisory_lock(conn, settings.lock_timeout, service):
                tracking(conn)
                state = read_state(conn, tree)
                for m in [e for e, _ in state.edited] + state.unknown:
                    record_checksum(conn, m)
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
        if (parsed := parse_file_name(p.name)) is not None
    ]
    version = max(versions, default=0) + 1
    stem = f"{version:03d}_{slug}"
    up, down = folder / f"{stem}.sql", folder / f"{stem}.down.sql"
    if up.exists() or down.exists():
        raise Refused(f"{up}: already exists; choose another name")
    up.write_text(f"-- Up migration {stem}: one change, reversed by {down.name}.\n", encoding="utf-8")
    down.write_text(f"-- Down migration {stem}: undo exactly what {up.name} does.\n", encoding="utf-8")
    return up, down

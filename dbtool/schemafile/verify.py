"""`dbtool verify`: the round trip a service's CI runs, on scratch databases, never on the service's own.

For each service: apply the migrations one by one, then roll them back one by one, checking that
each down file gives back the schema from before its up file; apply them all again and check the
result is the same schema and equals the committed schema.sql; the updated_at triggers sync and a
second sync changes nothing; the seed files run and a second run adds nothing; the service's roles
(scratch roles of its own) take the schema over and a second `roles` run changes nothing. Every
step runs the way `dbtool migrate` and `dbtool rollback` run it (trigger sync included), and every
schema is compared as pg_dump text, so a difference names the objects.

>>> from dbtool import config, verify
>>> report = verify.verify(config.make_settings(), ["identity"])
>>> report.ok
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import psycopg
from psycopg import sql

from .. import server
from ..config import Settings, secrets, url_variable
from ..data.seed import _referenced_first, seed
from ..errors import DatabaseUnavailable, DbtoolError
from ..migrate.commands import load, validate
from ..migrate.runner import rollback_connection
from ..migrate.tree import Migration
from ..migrate.triggers import COLUMN, plan, sync_connection
from ..roles.scratch import check_roles
from .build import migrate_and_sync
from .compare import Difference, Side, compare
from .dump import SCHEMA_FILE, pg_dump, render_file
from .scratch import scratch_database, scratch_name, scratch_server

# An UPDATE writes this into updated_at; the trigger must replace it with the current time.
_LONG_AGO, _LONG_AGO_END = datetime(2000, 1, 1), datetime(2000, 1, 2)


@dataclass
class Check:
    service: str
    name: str  # what was checked, e.g. "down 002_create_refresh_tokens_table restores the schema"
    ok: bool
    detail: str = ""  # the reason when it failed, or what it found when it held
    objects: list[str] = field(default_factory=list)  # each differing object, named
    diff: str = ""  # unified diff of the two schemas, when a comparison failed


@dataclass
class VerifyReport:
    services: list[str]
    scratch: dict[str, str] = field(default_factory=dict)  # service -> where its scratch database was
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


@dataclass
class VerifyEvents:
    """What verify tells its user as it goes; the CLI renders these, Python callers may not."""

    target: Callable[[str, str], None] = lambda service, where: None
    check: Callable[[Check], None] = lambda check: None


def _add(report: VerifyReport, events: VerifyEvents, check: Check) -> None:
    report.checks.append(check)
    events.check(check)


class _Walk:
    """One service's checks on its scratch database, in order; a step that raises ends the walk."""

    def __init__(self, service: str, conninfo: str, tree: list[Migration], settings: Settings,
                 report: VerifyReport, events: VerifyEvents):
        self.service, self.conninfo, self.tree, self.settings = service, conninfo, tree, settings
        self.report, self.events = report, events
        self.step = "the round trip"  # the check a failing step is reported under

    def add(self, name: str, ok: bool, detail: str = "", difference: Difference | None = None) -> bool:
        check = Check(self.service, name, ok, detail)
        if difference:
            check.objects, check.diff = difference.findings(), difference.diff
        _add(self.report, self.events, check)
        return ok

    def dump(self) -> str:
        return pg_dump(self.conninfo, self.settings.environ, secrets(self.settings))

    def migrate(self, conn: psycopg.Connection, to: int | None = None) -> None:
        migrate_and_sync(conn, self.tree, to, self.settings.lock_timeout)

    def rollback_one(self, conn: psycopg.Connection) -> None:
        # As `dbtool rollback` does; the scratch database holds no rows, so nothing to guard.
        rollback_connection(conn, self.tree, steps=1, force=True, lock_timeout=self.settings.lock_timeout)
        sync_connection(conn)

    def run(self) -> bool:
        """True when the walk got to the end (its checks may still have failed)."""
        first = self.dump()  # outside the try: no usable pg_dump is bad input (exit 2), not a finding
        try:
            with server.connect(self.conninfo, wait=self.settings.wait) as conn:
                self._round_trip(conn, first)
            return True
        except DatabaseUnavailable:
            raise  # the server went away: not a finding about the migrations
        except DbtoolError as exc:  # a failing statement, a refused step: the rest cannot run
            self.add(self.step, False, f"{exc}; the remaining checks of {self.service} did not run")
            return False

    def _round_trip(self, conn: psycopg.Connection, first: str) -> None:
        before = [first]  # before[i]: the schema before migration i+1's up file
        for m in self.tree:
            self.step = f"up {m.id}"
            self.migrate(conn, m.version)
            before.append(self.dump())
            self.add(f"up {m.id}", True)
        for i in reversed(range(len(self.tree))):
            m = self.tree[i]
            self.step = f"down {m.id}"
            if m.irreversible:
                self.add(f"down {m.id}", True, "marked irreversible; the round trip stops going down here")
                break
            self.rollback_one(conn)
            difference = compare(before[i], self.dump(), Side(
                f"the schema before {m.up.name}", f"the schema after {m.down.name}"), ("before up", "after down"))
            reason = f"{m.down} does not undo {m.up.name}" if difference else ""
            self.add(f"down {m.id} restores the schema from before its up", not difference, reason, difference)
        self.step = "migrating again"
        self.migrate(conn)
        final = self.dump()
        difference = compare(before[-1], final, Side("the first migrate", "the second migrate"),
                                    ("first migrate", "second migrate"))
        self.add("migrating again builds the same schema", not difference,
                 "up files build another schema after a round trip" if difference else "", difference)
        self._schema_file(final)
        self.step = "triggers"
        sync = sync_connection(conn)
        tables = ", ".join(sync.tables) or "no table"
        self.add("triggers: a second sync changes nothing", not sync.changes,
                 f"would change: {'; '.join(c.describe() for c in sync.changes)}" if sync.changes
                 else f"updated_at kept current on {tables}")

    def _schema_file(self, final: str) -> None:
        path = self.settings.schemas_dir / self.service / SCHEMA_FILE
        fix = f"run 'dbtool schema dump {self.service}' and commit it"
        if not path.exists():
            self.add(f"{SCHEMA_FILE} matches the migrations", False, f"{path} does not exist; {fix}")
            return
        difference = compare(path.read_text(encoding="utf-8"), render_file(self.service, final),
                                    Side(str(path), "what the migrations build"), (str(path), "migrations"))
        self.add(f"{SCHEMA_FILE} matches the migrations", not difference,
                 f"{path} is stale or was edited by hand; {fix}" if difference else "", difference)


def verify(settings: Settings, services: list[str] | None = None, scratch_dsn: str | None = None,
           events: VerifyEvents | None = None) -> VerifyReport:
    """Round-trip every selected service on scratch databases; the report's checks say what held."""
    events = events or VerifyEvents()
    trees = validate(settings, services)
    selected = list(trees)
    # The services the seeds point at (course seeds identity first) get scratch databases too.
    involved = _referenced_first(settings, selected, None)
    places = {s: scratch_server(settings, s, scratch_dsn) for s in involved}  # prod refused before any work
    report = VerifyReport(selected)
    with ExitStack() as stack:
        scratch = {}
        for service in involved:
            place = places[service]
            name = scratch_name(service, settings)
            scratch[service] = stack.enter_context(scratch_database(place, name, settings.wait))
            report.scratch[service] = f"{name} on {place.where}"
        seed_settings = _seed_settings(settings, scratch)
        # Referenced services come first, so the ones a service's seeds need are migrated and seeded.
        for service in involved:
            if service not in trees:
                _migrate_only(scratch[service], load(settings, service), settings)
                continue
            events.target(service, report.scratch[service])
            if _Walk(service, scratch[service], trees[service], settings, report, events).run():
                _seeds(seed_settings, service, report, events)
                _updates_keep_updated_at(scratch[service], service, settings, report, events)
                _add(report, events, Check(service, *check_roles(scratch[service], service, settings)))
    return report


def _migrate_only(conninfo: str, tree: list[Migration], settings: Settings) -> None:
    """A service the seeds need but that was not selected: migrated, not verified."""
    try:
        with server.connect(conninfo, wait=settings.wait) as conn:
            migrate_and_sync(conn, tree, None, settings.lock_timeout)
    except DatabaseUnavailable:
        raise
    except DbtoolError:
        pass  # the seeds that need it will fail and say why


def _seed_settings(settings: Settings, scratch: dict[str, str]) -> Settings:
    """Settings that point every involved service at its scratch database."""
    environ = {**settings.environ, **{url_variable(s): c for s, c in scratch.items()}}
    # env test: the scratch databases are never prod ones, and seed refuses prod.
    return Settings(schemas_dir=settings.schemas_dir, env="test", wait=settings.wait,
                    lock_timeout=settings.lock_timeout, environ=environ, data_dir=settings.data_dir)


def _seeds(settings: Settings, service: str, report: VerifyReport, events: VerifyEvents) -> None:
    """The service's seed files run (after those of the services they point at), and a second run adds nothing."""
    name = "seeds: the seed files run and a second run adds nothing"
    files = sorted((settings.schemas_dir / service / "seeds").glob("*.sql"))
    if not files:
        check = Check(service, name, True, "no seed files")
    else:
        try:
            first = seed(settings, [service])
            second = seed(settings, [service])
        except DatabaseUnavailable:
            raise
        except DbtoolError as exc:
            check = Check(service, name, False, str(exc))
        else:
            rows = sum(x.rows for x in first.loads if x.service == service)
            again = sum(x.rows for x in second.loads)
            detail = (f"{rows} row(s) from {len(files)} file(s)" if not again else
                      f"the second run added {again} row(s); make the seed files idempotent (ON CONFLICT DO NOTHING)")
            check = Check(service, name, not again, detail)
    _add(report, events, check)


def _updates_keep_updated_at(conninfo: str, service: str, settings: Settings, report: VerifyReport,
                             events: VerifyEvents) -> None:
    """The triggers really fire: an UPDATE of a seeded row that sets updated_at far back gets now() instead."""
    checked, stale = [], []
    with server.connect(conninfo, wait=settings.wait) as conn:
        with conn.transaction(force_rollback=True):  # the seeded rows stay as they were
            for table in plan(conn).tables:
                row = conn.execute(sql.SQL(
                    "UPDATE {t} SET {c} = %s WHERE ctid = (SELECT ctid FROM {t} LIMIT 1) RETURNING {c} < %s"
                ).format(t=sql.Identifier(table), c=sql.Identifier(COLUMN)), (_LONG_AGO, _LONG_AGO_END)).fetchone()
                if row is not None:
                    checked.append(table)
                    if row[0]:
                        stale.append(table)
    if stale:
        detail = f"UPDATE left {COLUMN} as written on {', '.join(stale)}; run 'dbtool triggers' and see its report"
    else:
        detail = f"on {', '.join(checked)}" if checked else "no seeded row to update"
    _add(report, events, Check(service, f"triggers: an UPDATE sets {COLUMN}", not stale, detail))

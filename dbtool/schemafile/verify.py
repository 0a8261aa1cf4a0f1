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

from .. import server, signals
from ..config import Settings, read_utf8, secrets, url_variable
from ..data.seed import _referenced_first, seed
from ..errors import DatabaseUnavailable, DbtoolError
from ..migrate.runner import rollback_connection
from ..migrate.tree import Migration, load, validate
from ..migrate.triggers import COLUMN, plan, sync_connection
from ..roles.scratch import check_roles
from ..signals import Interrupted
from .build import migrate_and_sync, policy_of
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
    signals.check()  # what the signal cancelled is no finding about the migrations
    report.checks.append(check)
    events.check(check)


class _Walk:
    """One service's checks on its scratch database, in order; a step that raises ends the walk."""

    def __init__(self, service: str, conninfo: str, tree: list[Migration], settings: Settings,
                 report: VerifyReport, events: VerifyEvents):
        self.service, self.conninfo, self.tree, self.settings = service, conninfo, tree, settings
        self.report, self.events = report, events
        self.strict_column_order = False  # a re-added column comes back last: order is not compared
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
        sync_connection(conn, policy=policy_of(self.tree))

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
            if isinstance(exc, Interrupted) or signals.received():
                raise  # the signal cancelled the step: verify stops, no finding
            self.add(self.step, False, f"{exc}; the remaining checks of {self.service} did not run")
            return False

    def _round_trip(self, conn: psycopg.Connection, first: str) -> None:
        before = [first]  # before[i]: the schema before migration i+1's up file
        for m in self.tree:
            self.step = f"up {m.id}"
            self.migrate(conn, m.version)
            before.append(self.dump())
            self.add(f"up {m.id}", True)
        # Each difference is reported once, at the down step that introduced it: a column a down file
        # leaves behind stays there for every step below, which would otherwise repeat it each time.
        introduced: dict[str, str] = {}  # finding -> the step that introduced it
        carried: dict[str, int] = {}  # step -> later steps that still show its differences
        for i in reversed(range(len(self.tree))):
            m = self.tree[i]
            self.step = f"down {m.id}"
            if m.irreversible:
                self.add(f"down {m.id}", True, "marked irreversible; the round trip stops going down here")
                break
            self.rollback_one(conn)
            after = self.dump()
            difference = compare(before[i], after, Side(
                f"the schema before {m.up.name}", f"the schema after {m.down.name}"), ("before up", "after down"),
                column_order=self.strict_column_order)
            # The same objects worded without the step's file names, to recognise them at the next step.
            keys = compare(before[i], after, Side("before", "after"), column_order=self.strict_column_order)
            found = list(zip(keys.findings(), difference.findings())) if difference else []
            new = [(key, text) for key, text in found if key not in introduced]
            for origin in dict.fromkeys(introduced[key] for key, _ in found if key in introduced):
                carried[origin] = carried.get(origin, 0) + 1
            for key, _ in new:
                introduced[key] = m.id
            name = f"down {m.id} restores the schema from before its up"
            if new:
                check = Check(self.service, name, False, f"{m.down} does not undo {m.up.name}")
                check.objects = [text for _, text in new]
                check.diff = difference.diff
                _add(self.report, self.events, check)
            else:
                note = "" if not found else f"only the {len(found)} difference(s) already reported above"
                self.add(name, True, note)
        for origin, steps in carried.items():
            self.add(f"differences of down {origin}", False,
                     f"still there in {steps} later step(s) below it; fixing {origin}'s down file fixes those too")
        self.step = "migrating again"
        self.migrate(conn)
        final = self.dump()
        difference = compare(before[-1], final, Side("the first migrate", "the second migrate"),
                                    ("first migrate", "second migrate"))
        self.add("migrating again builds the same schema", not difference,
                 "up files build another schema after a round trip" if difference else "", difference)
        self._schema_file(final)
        self.step = "triggers"
        sync = sync_connection(conn, policy=policy_of(self.tree))
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
        difference = compare(read_utf8(path), render_file(self.service, final),
                                    Side(str(path), "what the migrations build"), (str(path), "migrations"))
        self.add(f"{SCHEMA_FILE} matches the migrations", not difference,
                 f"{path} is stale or was edited by hand; {fix}" if difference else "", difference)


def verify(settings: Settings, services: list[str] | None = None, scratch_dsn: str | None = None,
           events: VerifyEvents | None = None, strict_column_order: bool = False) -> VerifyReport:
    """Round-trip every selected service on scratch databases; the report's checks say what held.

    Column order is not compared unless `strict_column_order`: PostgreSQL puts a re-added column last."""
    events = events or VerifyEvents()
    trees = validate(settings, services)
    selected = list(trees)
    # The services the seeds point at (course seeds identity first) get scratch databases too.
    involved = _referenced_first(settings, selected, None)
    places = {s: scratch_server(settings, s, scratch_dsn) for s in involved}  # prod refused before any work
    report = VerifyReport(selected)
    current = "the scratch databases"  # what verify was doing, should a signal stop it
    try:
        with ExitStack() as stack:  # each scratch database is dropped on the way out, interrupted or not
            scratch = {}
            for service in involved:
                place = places[service]
                name = scratch_name(service, settings)
                scratch[service] = stack.enter_context(scratch_database(place, name, settings.wait))
                report.scratch[service] = f"{name} on {place.where}"
            seed_settings = _seed_settings(settings, scratch)
            # Referenced services come first, so the ones a service's seeds need are migrated and seeded.
            for service in involved:
                current = service
                if service not in trees:
                    _migrate_only(scratch[service], load(settings, service), settings)
                    continue
                events.target(service, report.scratch[service])
                walk = _Walk(service, scratch[service], trees[service], settings, report, events)
                walk.strict_column_order = strict_column_order
                if walk.run():
                    _seeds(seed_settings, service, report, events)
                    _updates_keep_updated_at(scratch[service], service, settings, report, events)
                    _add(report, events, Check(service, *check_roles(scratch[service], service, settings)))
    except Exception:
        if not signals.received():
            raise
        raise _interrupted(current) from None
    if signals.received():  # a check that caught what the signal cancelled still does not count
        raise _interrupted(current)
    return report


def _interrupted(where: str) -> Interrupted:
    """A signal stopped verify: its checks prove nothing either way, so none is reported as failed."""
    return Interrupted(f"interrupted by {signals.name()} while verifying {where}; the checks did not finish, so none"
                       " counts as failed; the scratch databases were dropped and no service's own database was"
                       " touched; run the command again")


def _migrate_only(conninfo: str, tree: list[Migration], settings: Settings) -> None:
    """A service the seeds need but that was not selected: migrated, not verified."""
    try:
        with server.connect(conninfo, wait=settings.wait) as conn:
            migrate_and_sync(conn, tree, None, settings.lock_timeout)
    except DatabaseUnavailable:
        raise
    except DbtoolError:
        if signals.received():
            raise
        # the seeds that need it will fail and say why


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
            if signals.received():
                raise
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

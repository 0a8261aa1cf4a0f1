"""The rehearsal: a scratch database at the service's applied version, synthetic data, writers and a
reader on the tables the pending migrations touch, then each pending migration as `migrate` applies
it, measured. The scratch database is always dropped; the service's own database is only read.

>>> from dbtool import config
>>> from dbtool.rehearse.run import rehearse
>>> report = rehearse(config.make_settings(), "course", scale=10, start=3)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import psycopg
from pglast import parser

from .. import server, signals
from ..config import Settings, resolve_target, select_services
from ..data.seed import SeedEvents, _load_synthetic, check_scale
from ..data.groups import Group
from ..data.synthetic import Catalog
from ..databases import locate, peek_state
from ..errors import BadInput, DbtoolError
from ..migrate.locks import policy_of
from ..migrate.runner import migrate_connection
from ..migrate.state import check_version
from ..migrate.tree import Migration, load
from ..migrate.triggers import sync_connection
from ..schemafile.scratch import scratch_database, scratch_name, scratch_server
from . import probe
from .traffic import Client, TableWrites, plan_writes


@dataclass
class Rehearsed:
    """What one pending migration did under load."""

    migration: str
    duration_ms: float = 0.0
    max_stall_ms: float = 0.0  # the writers' worst write latency while it ran
    p99_ms: float = 0.0
    writes: int = 0
    reader_max_ms: float = 0.0
    locks: list[str] = field(default_factory=list)
    rewrote: list[str] = field(default_factory=list)
    size_change: int = 0  # bytes, tables touched with their indexes and TOAST
    ok: bool = True
    error: str = ""  # the migration failed or ran past --duration-limit


@dataclass
class Rehearsal:
    service: str
    scratch: str  # where the scratch database was, for people
    start: int  # the version the scratch database was migrated to first
    scale: int
    writers: int
    max_stall_ms: float
    tables: list[str] = field(default_factory=list)  # the tables the load ran on
    migrations: list[Rehearsed] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(not m.ok for m in self.migrations)


@dataclass
class RehearseEvents:
    target: Callable[[str, str], None] = lambda service, where: None
    step: Callable[[str], None] = lambda text: None  # setting up: migrating, seeding, starting the load
    migration: Callable[[Rehearsed], None] = lambda result: None
    retry: Callable[[str], None] = lambda text: None


def check_options(scale: int, writers: int, duration_limit: float, max_stall: float) -> None:
    check_scale(scale)
    if writers < 1:
        raise BadInput(f"--writers {writers}: give at least 1 writer connection")
    if duration_limit <= 0:
        raise BadInput(f"--duration-limit {duration_limit:g}: give a positive number of seconds, e.g. 600")
    if max_stall <= 0:
        raise BadInput(f"--max-stall {max_stall:g}: give the worst write latency to allow, in ms, e.g. 500")


def rehearse(settings: Settings, service: str, scale: int = 10, writers: int = 4, duration_limit: float = 600.0,
             max_stall: float = 500.0, start: int | None = None, scratch_dsn: str | None = None,
             events: RehearseEvents | None = None) -> Rehearsal:
    """Rehearse a service's pending migrations; each Rehearsed says whether it kept under max_stall."""
    events = events or RehearseEvents()
    check_options(scale, writers, duration_limit, max_stall)
    select_services(settings, [service])
    tree = load(settings, service)
    check_version(tree, start, "--from")
    if start is None:
        conninfo, _ = locate(resolve_target(service, settings), settings)
        applied = peek_state(conninfo, tree, settings).applied_migrations  # read only
        start = max((m.version for m in applied), default=0)
    pending = [m for m in tree if m.version > start]
    if not pending:
        raise BadInput(f"{service}: nothing pending after version {start:03d}; pass --from VERSION to rehearse"
                       " applied migrations again")
    place = scratch_server(settings, service, scratch_dsn)
    name = scratch_name(service, settings)
    report = Rehearsal(service, f"{name} on {place.where}", start, scale, writers, max_stall)
    events.target(service, report.scratch)
    doing = "while setting up the scratch database"
    stopped = False
    with scratch_database(place, name, settings.wait) as conninfo:
        try:
            with server.connect(conninfo, wait=settings.wait) as conn:
                _prepare(conn, settings, service, tree, start, scale, events)
                report.tables = tables(conn, touched(pending))
                plans = [p for t in report.tables if (p := plan_writes(conn, t)) is not None]
                clients = _start_load(conninfo, plans, writers, events)
                try:
                    for m in pending:
                        doing = f"while rehearsing {m.id}"
                        result = _one(conn, conninfo, tree, m, report, clients, settings, duration_limit, events)
                        report.migrations.append(result)
                        events.migration(result)
                        if result.error:
                            break  # the later migrations build on this one
                finally:
                    for client in clients:
                        client.stop.set()
                    for client in clients:
                        client.join()
        except Exception:
            if not signals.received():
                raise
            # Whatever the signal cancelled, it happened on the scratch database. Leave the block
            # normally so that it is dropped, and a drop that fails reports itself instead of this.
            stopped = True
    if stopped:
        raise signals.Interrupted(f"{service}: interrupted by {signals.name()} {doing}; the scratch database {name}"
                                  " was dropped and the service's own database was not changed; run the command"
                                  " again") from None
    return report


def _prepare(conn: psycopg.Connection, settings: Settings, service: str, tree: list[Migration], start: int,
             scale: int, events: RehearseEvents) -> None:
    if start:
        events.step(f"migrating to {start:03d}")
        migrate_connection(conn, tree, start, settings.lock_timeout)
        sync_connection(conn)
    groups = _loadable(conn, Catalog(settings).service(service))
    if groups:
        events.step(f"seeding --scale {scale}: {', '.join(dict.fromkeys(g.table for g in groups))}")
        _load_synthetic(conn, service, groups, scale, SeedEvents())


def _loadable(conn: psycopg.Connection, groups: list[Group]) -> list[Group]:
    """The synthetic groups whose table and columns exist at this version (and whose parent loads)."""
    chosen: list[Group] = []
    for group in groups:
        have = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (group.table,))}
        if {c for c, _ in group.columns} <= have and (group.parent is None or group.parent in chosen):
            chosen.append(group)
    return chosen


def touched(migrations: list[Migration]) -> list[str]:
    """Every relation a migration's up file names (read with PostgreSQL's parser), in order met: tables,
    and the indexes a DROP INDEX names (tables() finds their tables)."""
    names: dict[str, None] = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "relname" in node and "relpersistence" in node:  # a RangeVar, wrapped or in a typed field
                names[node["relname"]] = None
            if node.get("removeType") == "OBJECT_INDEX":
                for obj in node.get("objects", []):
                    names[obj["List"]["items"][-1]["String"]["sval"]] = None
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for m in migrations:
        walk(json.loads(parser.parse_sql_json(m.text("up"))))
    return list(names)


def tables(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """The existing tables among names, an index standing for its table."""
    found: dict[str, None] = {}
    for name in names:
        row = conn.execute(
            """SELECT coalesce(i.indrelid, c.oid)::regclass::text FROM pg_class c
               LEFT JOIN pg_index i ON i.indexrelid = c.oid
               WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p', 'i')""", (name,)).fetchone()
        if row:
            found[row[0]] = None
    return list(found)


def _start_load(conninfo: str, plans: list[TableWrites], writers: int, events: RehearseEvents) -> list[Client]:
    if not plans:
        return []
    events.step(f"load: {writers} writer(s) and a reader on {', '.join(p.table for p in plans)}")
    load = [Client(conninfo, plans, False, seed=i) for i in range(writers)] + [Client(conninfo, plans, True, seed=99)]
    for client in load:
        client.start()
    for client in load:
        client.ready.wait(30)
    time.sleep(0.3)  # every client past its first, planning statements
    return load


def _one(conn: psycopg.Connection, conninfo: str, tree: list[Migration], m: Migration, report: Rehearsal,
         load: list[Client], settings: Settings, duration_limit: float, events: RehearseEvents) -> Rehearsed:
    result = Rehearsed(m.id)
    names = report.tables + [t for t in touched([m]) if t not in report.tables]
    files, size = probe.files(conn, names), probe.size(conn, names)
    sampler = probe.LockSampler(conninfo, conn.info.backend_pid)
    sampler.start()
    watchdog = threading.Timer(duration_limit, _cancel, (conninfo, conn.info.backend_pid))
    started = time.perf_counter()
    watchdog.start()
    try:
        migrate_connection(conn, tree, m.version, settings.lock_timeout, policy=policy_of(settings),
                           on_retry=events.retry)
        sync_connection(conn)
    except DbtoolError as exc:
        if signals.received():
            raise  # the signal cancelled it: no finding about the migration, the run stops (rehearse())
        result.error = f"{m.id}: {exc}"
    finally:
        ended = time.perf_counter()
        watchdog.cancel()
        sampler.stop.set()
        sampler.join()
    if ended - started >= duration_limit:
        result.error = f"{m.id}: ran past --duration-limit {duration_limit:g}s and was cancelled"
    result.duration_ms = (ended - started) * 1000
    result.locks = sampler.locks()
    result.rewrote = probe.rewritten(files, probe.files(conn, names))
    result.size_change = probe.size(conn, names) - size
    _measure(result, load, started, ended)
    result.ok = not result.error and result.max_stall_ms <= report.max_stall_ms
    return result


def _cancel(conninfo: str, pid: int) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_cancel_backend(%s)", (pid,))


def _measure(result: Rehearsed, load: list[Client], started: float, ended: float) -> None:
    """The latencies of the statements that overlapped the migration, once each has finished."""
    deadline = time.monotonic() + 60
    # A write the migration held up finishes after it: wait for each client's next statement.
    while any(c.is_alive() and c.last_start <= ended for c in load) and time.monotonic() < deadline:
        time.sleep(0.01)
    writes = sorted(e - s for c in load if not c.reader for s, e in list(c.spans) if e >= started and s <= ended)
    reads = [e - s for c in load if c.reader for s, e in list(c.spans) if e >= started and s <= ended]
    result.writes = len(writes)
    if writes:
        result.max_stall_ms = writes[-1] * 1000
        result.p99_ms = writes[min(len(writes) - 1, int(len(writes) * 0.99))] * 1000
    result.reader_max_ms = max(reads, default=0.0) * 1000

"""Development and synthetic data: `dbtool seed [SERVICE]... [--scale N]`.

Without --scale, each service's `schemas/<service>/seeds/*.sql` files run in name order, in one
transaction per service; they insert fixed rows with ON CONFLICT DO NOTHING, so a second run adds
nothing. With --scale N, the groups of `seeds/synthetic.toml` are generated (dbtool/data/synthetic.py)
and streamed in with COPY, one transaction per service; a second run at the same scale adds
nothing, a larger scale adds the rows the smaller one lacked.

Either way the services a seeded service's soft references point at are seeded first, in the same
run (references.toml and synthetic refs say which), so no reference dangles. Every database must
exist and be fully migrated before anything is written; prod is refused before any connection.

>>> from dbtool import config, seed
>>> seed.seed(config.make_settings(), ["course"], scale=1)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from .. import server, signals
from ..config import Settings, read_utf8, select_services
from ..databases import migrated_conninfo
from ..errors import BadInput, DatabaseUnavailable, Refused, classify, server_condition
from ..migrate.sqltext import client_copy_line
from ..roles.denied import explain
from ..signals import Interrupted
from .bulkload import defer, rebuild
from .references import referenced_services, service_settings
from .groups import Chunk, Group
from .synthetic import SYNTHETIC_FILE, Catalog, chunks

# --scale 5000 puts 1,000,000 rows in courses and 1.25 million in chat_messages: the largest load we
# document. Anything beyond is a typo rather than a plan.
MAX_SCALE = 5000
# Rows generated at a time (parent rows, for a group under a parent), per COPY write: small enough
# that the server starts early and the last chunk leaves it little to do once generation ends.
CHUNK_ROWS = 1000
# Two int4 keys for pg_advisory_xact_lock, "dbtl" and "seed" in ASCII: one seed at a time per database.
# Distinct from the migration lock (dbtool/migrate/tracking.py). A second seed waits for the first to
# commit, then finds its rows present and adds only those still missing, instead of deadlocking with it.
SEED_LOCK_KEYS = (0x6462746C, 0x73656564)


@dataclass
class TableLoad:
    service: str
    table: str
    group: str  # the synthetic group, or the seed file's name
    rows: int = 0  # rows written by this run
    present: int = 0  # rows an earlier run had already written
    seconds: float = 0.0  # until the table was ready: rows, indexes, keys, statistics
    copy_seconds: float = 0.0  # the rows alone

    @property
    def copy_rows_per_second(self) -> float:
        return self.rows / self.copy_seconds if self.copy_seconds else 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class SeedReport:
    scale: int | None
    services: list[str] = field(default_factory=list)
    loads: list[TableLoad] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # one line each, e.g. what filling the Redis cache did

    @property
    def rows(self) -> int:
        return sum(load.rows for load in self.loads)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass
class SeedEvents:
    """What seed tells its user while it works; the CLI renders these, Python callers may not."""

    target: Callable[[str, str], None] = lambda service, where: None
    start: Callable[[TableLoad, int | None], None] = lambda load, total: None  # total rows, None if unknown
    advance: Callable[[TableLoad, int], None] = lambda load, rows: None
    done: Callable[[TableLoad], None] = lambda load: None  # its rows are in
    # After the rows, what is being done to the table ("indexes and keys", "statistics"), then that it
    # is ready: the table load whose rate counts until then (the last, for a table of two groups).
    finishing: Callable[[TableLoad, str], None] = lambda load, step: None
    ready: Callable[[TableLoad], None] = lambda load: None


def check_scale(scale: int | None) -> None:
    if scale is not None and not 1 <= scale <= MAX_SCALE:
        raise BadInput(f"--scale {scale}: give a whole number from 1 (small) to {MAX_SCALE}"
                       f" (1,000,000 courses); nothing was written")


def seed(settings: Settings, services: list[str] | None = None, scale: int | None = None,
         events: SeedEvents | None = None, redis_cache: bool = False) -> SeedReport:
    """Seed the selected services (all by default) and the services they refer to.

    redis_cache: also fill chat's Redis context cache from the seeded sessions (the CLI does).
    """
    if settings.env == "prod":
        raise Refused("--env prod: seed writes development and synthetic data and never runs on prod;"
                      " nothing was written")
    check_scale(scale)
    events = events or SeedEvents()
    selected = select_services(settings, services)
    catalog = Catalog(settings)
    order = _referenced_first(settings, selected, catalog if scale else None)
    plans = {s: (catalog.service(s) if scale else _seed_files(settings, s)) for s in order}
    # Every database is checked before the first row is written: all of them seed, or none starts.
    targets = {s: migrated_conninfo(service_settings(settings, s, selected), s) for s in order}
    report = SeedReport(scale, order)
    started = time.perf_counter()
    for i, service in enumerate(order):
        conninfo, where = targets[service]
        _stop_if_interrupted(order[:i], f"before seeding {service}; nothing of {service} was written")
        events.target(service, where)
        with server.connect(conninfo, wait=settings.wait) as conn:
            if scale:
                report.loads += _load_synthetic(conn, service, plans[service], scale, events, seeded=order[:i])
            else:
                report.loads += _run_files(conn, service, plans[service], events, seeded=order[:i])
    report.seconds = time.perf_counter() - started
    if redis_cache:  # Redis: the chat context cache of the seeded sessions (dbtool/redis/seeding.py)
        _stop_if_interrupted(order, "before filling the Redis cache, which stays as it was")
        from ..redis.seeding import fill_context_cache

        report.notes += fill_context_cache(settings, {s: targets[s][0] for s in order}, scale)
    return report


def _interrupted(seeded: Sequence[str], what: str) -> Interrupted:
    """A signal stopped the run: where each database was left, and that a rerun finishes the job (seed
    only adds the rows that are missing)."""
    earlier = f"; {', '.join(seeded)} were seeded before and stay committed" if seeded else ""
    return Interrupted(f"{what}{earlier}; run the command again to finish (it adds only the rows still missing)")


def _stop_if_interrupted(seeded: Sequence[str], what: str) -> None:
    if signals.received():
        raise _interrupted(seeded, f"interrupted by {signals.name()} {what}")


def _rolled_back(service: str, tables: Sequence[str], table: str | None) -> str:
    """The words for a signal that ended a service's transaction: its rows never became visible."""
    during = f" while loading {table}" if table else ""
    listed = ", ".join(dict.fromkeys(tables)) or "none"
    return (f"{service}: interrupted by {signals.name()}{during}; its transaction was rolled back, so the tables"
            f" of {service} ({listed}) were left as they were")


def _referenced_first(settings: Settings, selected: list[str], catalog: Catalog | None) -> list[str]:
    """The selected services plus those they refer to, each after every service it refers to."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(service: str) -> None:
        if service in order or service in visiting:
            return  # a cycle of references: seed in the order met, each still in one transaction
        visiting.add(service)
        refs = set(referenced_services(settings, service))
        if catalog is not None:
            refs |= catalog.referenced_services(service)
        for other in sorted(refs):
            visit(other)
        order.append(service)

    for service in selected:
        visit(service)
    return order


# ---------------------------------------------------------------- seed files


def _seed_files(settings: Settings, service: str) -> list[Path]:
    folder = settings.schemas_dir / service / "seeds"
    return sorted(folder.glob("*.sql")) if folder.is_dir() else []


def _run_files(conn: psycopg.Connection, service: str, files: list[Path], events: SeedEvents,
               seeded: Sequence[str] = ()) -> list[TableLoad]:
    """All of a service's seed files in one transaction; the rows each inserted, per table."""
    try:
        return _run_files_in_one_transaction(conn, service, files, events)
    except (psycopg.Error, BadInput, DatabaseUnavailable, Interrupted):
        if not signals.received():
            raise
        # The file's statement was cancelled (or never started): the transaction rolled back whole.
        files_text = ", ".join(p.name for p in files)
        raise _interrupted(seeded, f"{service}: interrupted by {signals.name()}; its transaction was rolled"
                                   f" back, so nothing of its seed files ({files_text}) was written and its"
                                   " tables were left as they were") from None


def _run_files_in_one_transaction(conn: psycopg.Connection, service: str, files: list[Path],
                                  events: SeedEvents) -> list[TableLoad]:
    loads: list[TableLoad] = []
    with conn.transaction():
        _serialise(conn)
        for path in files:
            signals.check()  # reworded by _run_files, which names the files
            before = _inserted(conn)
            started = time.perf_counter()
            _execute_file(conn, path)
            seconds = time.perf_counter() - started
            added = {t: n - before.get(t, 0) for t, n in sorted(_inserted(conn).items())}
            file_loads = [TableLoad(service, t, path.name, n, 0, seconds, seconds) for t, n in added.items() if n]
            tables = ", ".join(x.table for x in file_loads) or "nothing new"
            events.done(TableLoad(service, tables, path.name, sum(x.rows for x in file_loads), 0, seconds))
            loads += file_loads
    return loads


def _serialise(conn: psycopg.Connection) -> None:
    """The first statement of a service's seed transaction: wait for any other seed of this database;
    the lock goes with the transaction (commit, rollback, or a connection that died)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", SEED_LOCK_KEYS)


def _inserted(conn: psycopg.Connection) -> dict[str, int]:
    # This transaction's own inserts: ON CONFLICT DO NOTHING skips do not count, so a rerun shows 0.
    rows = conn.execute("SELECT relname, n_tup_ins FROM pg_stat_xact_user_tables").fetchall()
    return {name: int(count) for name, count in rows}


def _execute_file(conn: psycopg.Connection, path: Path) -> None:
    text = read_utf8(path)
    line = client_copy_line(text)
    if line:  # the server would wait for rows that never come
        raise BadInput(f"{path}:{line}: COPY with STDIN or STDOUT streams rows through psql, and a seed file"
                       " has no such stream; write the rows as INSERT ... ON CONFLICT DO NOTHING")
    try:
        conn.execute(text.encode())
    except psycopg.Error as exc:
        if exc.sqlstate == "42501":
            raise DatabaseUnavailable(f"{path}: {explain(exc.diag.message_primary or '', 'INSERT')}") from None
        if server_condition(exc):
            raise DatabaseUnavailable(f"{path}: {classify(exc)}; nothing of this service's seeds was written") from None
        pos = getattr(exc.diag, "statement_position", None)
        line = f":{text[: int(pos) - 1].count(chr(10)) + 1}" if pos else ""
        message = (exc.diag.message_primary or str(exc)).strip()
        raise BadInput(f"{path}{line}: {message}; nothing of this service's seeds was written;"
                       " fix the file and run again") from None


# ---------------------------------------------------------------- synthetic data


def _present(conn: psycopg.Connection, group: Group) -> int:
    """Rows of this group already in the table: its keys fall in one range, found through the index."""
    low, high = group.key_range()
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} BETWEEN %s AND %s").format(
        sql.Identifier(group.table), sql.Identifier(group.key))
    return int(conn.execute(query, (low, high)).fetchone()[0])


def _load_synthetic(conn: psycopg.Connection, service: str, groups: list[Group], scale: int,
                    events: SeedEvents, seeded: Sequence[str] = ()) -> list[TableLoad]:
    loads = []
    present_before: dict[str, int] = {}
    children_total: dict[str, int] = {}
    tables = [g.table for g in groups]
    loading: str | None = None  # the table being loaded, for the words of an interruption
    try:
        with conn.transaction():
            _serialise(conn)  # before anything is read: which tables are empty, which rows are present
            deferred = defer(conn, tables)
            for group in groups:
                loading = group.table
                signals.check()  # between two statements, a cancel finds nothing to cancel
                present = _present(conn, group)
                present_before[group.name] = present
                load = TableLoad(service, group.table, group.name, present=present)
                if group.parent is None:
                    total = max((group.planned(scale) or 0) - present, 0)
                    generated = chunks(group, scale, start=present, size=CHUNK_ROWS)
                else:
                    total = children_total.get(group.name, 0)
                    generated = chunks(group, scale, start=present, parent_start=present_before[group.parent.name],
                                       size=CHUNK_ROWS)
                children = [g for g in groups if g.parent is group]
                events.start(load, total)
                _copy(conn, group, _counting(generated, children, children_total), load, events)
                events.done(load)
                loads.append(load)
            # The indexes and keys of the tables that were empty, built once over all their rows.
            loading = None
            for item in deferred:
                load = _last_load(loads, item.table)
                events.finishing(load, "indexes and keys")
                load.seconds += rebuild(conn, [item])[item.table]
    except Interrupted:  # raised between statements, inside the transaction: it rolled back
        raise _interrupted(seeded, _rolled_back(service, tables, loading)) from None
    except psycopg.Error as exc:
        if signals.received():
            # The signal cancelled the running statement: the transaction rolled back, and the indexes
            # and keys taken off for the load came back with it.
            raise _interrupted(seeded, _rolled_back(service, tables, loading)) from None
        if isinstance(exc, psycopg.errors.UniqueViolation):
            raise Refused(f"{service}: synthetic rows of an earlier seed were changed or deleted"
                          f" ({(exc.diag.message_detail or '').strip()}); delete the remaining ones or use a"
                          " fresh database, then seed again") from None
        if exc.sqlstate == "42501":
            raise DatabaseUnavailable(f"{service}: {explain(exc.diag.message_primary or '', 'INSERT')}") from None
        if server_condition(exc):  # read-only, a timeout, a full disk: the server's, not the file's
            raise DatabaseUnavailable(f"{service}: {classify(exc)}; nothing of {service} was written") from None
        raise BadInput(f"{service}: synthetic data refused by the database:"
                       f" {(exc.diag.message_primary or str(exc)).strip()}; fix seeds/{SYNTHETIC_FILE}") from None
    for table in dict.fromkeys(load.table for load in loads if load.rows):  # users holds two groups
        # Fresh statistics, so EXPLAIN right after seeding plans against the data as loaded; VACUUM
        # too, so the visibility map is set and index-only scans (a count) need not wait for autovacuum.
        last = _last_load(loads, table)
        events.finishing(last, "statistics")
        started = time.perf_counter()
        try:
            _stop_if_interrupted([*seeded, service], f"before VACUUM (ANALYZE) {table}, after the rows of {service}"
                                 " were committed")
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
        except psycopg.Error:
            if not signals.received():
                raise
            raise _interrupted([*seeded, service], f"{service}: interrupted by {signals.name()} during VACUUM"
                               f" (ANALYZE) {table}, after its rows were committed (they stay; its statistics"
                               " wait for autovacuum)") from None
        # A table's rate counts until it is ready to be read: rows, indexes, keys and statistics.
        last.seconds += time.perf_counter() - started
        events.ready(last)
    return loads


def _last_load(loads: list[TableLoad], table: str) -> TableLoad:
    return [load for load in loads if load.table == table][-1]


def _counting(generated: Iterator[Chunk], children: list[Group], totals: dict[str, int]) -> Iterator[Chunk]:
    """Pass chunks through, adding up how many rows each child group will make under them."""
    for child in children:
        totals[child.name] = 0
    for chunk in generated:
        for child in children:
            totals[child.name] += sum(int(n) for n in child.counts(chunk))  # type: ignore[misc]
        yield chunk


def _copy(conn: psycopg.Connection, group: Group, generated: Iterator[Chunk], load: TableLoad,
          events: SeedEvents) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(name) for name, _ in group.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(group.table), columns)
    started = time.perf_counter()
    cursor = conn.cursor()
    # A writer thread sends one chunk while the next is generated: the server never waits on Python.
    with _writer_gets_the_gil_sooner(), cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
        for chunk in generated:
            signals.check()  # the cancel may land while Python generates, not on the COPY
            copy.write(group.copy_text(chunk))
            load.rows += len(chunk)
            events.advance(load, len(chunk))
    load.seconds = load.copy_seconds = time.perf_counter() - started


@contextmanager
def _writer_gets_the_gil_sooner() -> Iterator[None]:
    """The writer thread needs the GIL each time the socket takes more data, and by default the
    generating thread holds it up to 5 ms: long enough for the server to empty the socket and wait.
    With 1 ms it stays fed, and COPY ends with little left to parse (about 0.1 s sooner on the
    50,000 courses of --scale 250)."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, 0.001))
    try:
        yield
    finally:
        sys.setswitchinterval(before)

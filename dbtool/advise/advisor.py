"""`dbtool advise`: per key query the one index that cuts its estimated cost by --min-gain, merged per service.

Where the candidates are priced: hypothetically when the database has hypopg (any env, nothing is
built); otherwise built for real in a rolled-back transaction, on the dev database itself, and on
a scratch copy for test and prod (prod needs --scratch-dsn: nothing is ever built on prod).
"""

from __future__ import annotations

import functools
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg

from .. import server
from ..config import Settings
from ..errors import BadInput, MigrationTreeError, Refused
from ..inspect.explain import (
    DEFAULT_TIMEOUT,
    bind_params,
    open_database,
    require_statistics,
)
from ..inspect.queries import (
    KeyQuery,
    load_queries,
    select_queries,
)
from ..migrate.state import TRACKING_TABLES
from ..migrate.tree import validate
from .candidates import Candidate, derive
from .measure import Measurement, baseline, has_hypopg, measure
from .stats import StatsUnavailable, check_top, statement, top_statements

DEFAULT_MIN_GAIN = 50.0  # percent of the estimated cost a candidate must save (Dexter's rule)


@dataclass
class QueryAdvice:
    query: KeyQuery
    values: dict[str, Any]
    before: Measurement
    after: Measurement | None = None  # with the suggested index
    suggestion: Candidate | None = None
    note: str = ""  # why there is no suggestion
    tried: int = 0  # candidates priced
    seconds: float = 0.0

    @property
    def gain(self) -> float:
        if self.after is None or self.before.cost <= 0:
            return 0.0
        return 100.0 * (self.before.cost - self.after.cost) / self.before.cost


@dataclass
class Suggestion:
    candidate: Candidate
    name: str  # the candidate's name, or a free one when an index of another shape has it
    size_bytes: int
    indexes_after: int
    queries: list[str] = field(default_factory=list)

    @property
    def index_sql(self) -> str:
        return self.candidate.definition().replace(f" {self.candidate.name} ON", f" {self.name} ON", 1) + ";"


@dataclass
class ServiceAdvice:
    service: str
    where: str
    method: str  # "hypothetical (hypopg)" or "real build, rolled back" (+ on a scratch copy)
    queries: list[QueryAdvice] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    written: list[str] = field(default_factory=list)  # migration files --write created
    from_stats: bool = False  # --from-stats: the top statements of pg_stat_statements advised too
    stats_problem: str | None = None  # why pg_stat_statements could not be read, and how to enable it


def check_min_gain(min_gain: float) -> float:
    if not 0 <= min_gain <= 100:
        raise BadInput(f"--min-gain {min_gain:g}: give a percentage from 0 to 100, e.g. --min-gain 50")
    return min_gain


def check_tree(settings: Settings, service: str) -> None:
    """--write needs a valid tree to number the new pair; checked before any connection."""
    try:
        validate(settings, [service])
    except MigrationTreeError as exc:
        raise BadInput(f"--write: the migration tree of {service} is invalid ({exc.problems[0]}); fix it"
                       f" ('dbtool validate {service}' lists every problem); nothing was written") from None


def advise(settings: Settings, services: list[str] | None = None, names: list[str] | None = None,
           min_gain: float = DEFAULT_MIN_GAIN, scratch_dsn: str | None = None, write: bool = False,
           timeout: float = DEFAULT_TIMEOUT, from_stats: bool = False, top: int | None = None,
           ) -> list[ServiceAdvice]:
    """Advise the key queries (those named, if any) and, with `from_stats`, the `top` statements of
    pg_stat_statements. When a database cannot give its statements the key queries are advised all the
    same, the result says why (`stats_problem`), and --write writes nothing: see `check_stats`."""
    check_min_gain(min_gain)
    top = check_top(from_stats, top)
    # With --from-stats a service without key queries still has its statements to advise.
    queries = select_queries(settings, services, names, keep_empty=from_stats)
    if write:
        for service in queries:
            check_tree(settings, service)
    results = []
    for service, qs in queries.items():
        with ExitStack() as stack:
            conn, where = open_database(settings, service)
            stack.callback(conn.close)
            problem = None
            if from_stats:  # read on the live database, before any scratch copy
                try:
                    qs = qs + top_statements(conn, service, top, load_queries(settings, service))
                except StatsUnavailable as exc:
                    problem = str(exc)
            require_statistics(conn, service, qs, may_analyse=False)
            hypothetical = has_hypopg(conn)
            method = "hypothetical (hypopg)" if hypothetical else "real build, rolled back"
            if not hypothetical and settings.env != "dev":
                conn, where = _scratch_copy(stack, settings, service, conn, scratch_dsn), f"scratch copy of {where}"
                method += ", on a scratch copy"
            bound = [(q, bind_params(conn, q, timeout)) for q in qs]
            # With hypopg, what it cannot price (a gin index) is built for real only where building is allowed.
            measurer = functools.partial(measure, conn, timeout=timeout, hypothetical=hypothetical,
                                         may_build=settings.env == "dev")
            result = _advise_service(conn, measurer, service, where, method, bound, min_gain, timeout)
            result.from_stats, result.stats_problem = from_stats, problem
            results.append(result)
    if write and not any(r.stats_problem for r in results):
        from .write import write_suggestions

        for result in results:
            result.written = write_suggestions(settings, result)
    return results


def check_stats(results: list[ServiceAdvice], write: bool) -> None:
    """After the advice is shown: --from-stats that could not be honoured is bad input (exit 2)."""
    problems = [r.stats_problem for r in results if r.stats_problem]
    if problems:
        raise BadInput(f"--from-stats: {'; '.join(problems)}; the key queries were advised without it"
                       f"{', nothing was written' if write else ''}")


def _advise_service(conn: psycopg.Connection, measurer: Callable, service: str, where: str, method: str,
                    bound: list, min_gain: float, timeout: float) -> ServiceAdvice:
    result = ServiceAdvice(service, where, method)
    columns = _columns(conn, sorted({t for q, _ in bound for t in q.tables}))
    for query, values in bound:
        started = time.perf_counter()
        advice = QueryAdvice(query, values, baseline(conn, query, values, timeout))
        # A view or another relation that takes no index is not a candidate's table.
        candidates = [c for c in derive(statement(query), columns) if c.table in columns]
        advice.tried = len(candidates)
        best: tuple[Candidate, Measurement] | None = None
        given: list[str] = []
        closest: tuple[float, Candidate] | None = None  # the best gain under --min-gain, for the note
        unpriced = 0
        for candidate in candidates:
            m = measurer(query, values, candidate)
            if m is None:
                unpriced += 1
                continue
            if m.given_by:
                given.append(m.given_by)
                continue
            if not m.uses:
                continue
            gain = _gain(advice.before.cost, m.cost)
            if gain < min_gain:
                closest = max(closest or (gain, candidate), (gain, candidate), key=lambda g: g[0])
                continue
            if best is None or _rank(candidate, m) < _rank(*best):
                best = (candidate, m)
        if best is not None:
            advice.suggestion, advice.after = best
        elif not candidates:
            advice.note = "no candidate: the query filters and orders on nothing an index can serve"
        else:
            notes = []
            if closest is not None:
                notes.append(f"the best candidate, {closest[1].name}, cuts the cost {closest[0]:.0f}%, under"
                             f" --min-gain {min_gain:g}")
            elif len(given) + unpriced < len(candidates):
                notes.append(f"the plan used none of its {len(candidates) - len(given) - unpriced} new candidate(s)")
            if given:
                notes.append(f"already there: {', '.join(dict.fromkeys(given))}")
            if unpriced:
                notes.append(f"{unpriced} candidate(s) hypopg cannot price (gin, gist) and never built outside dev")
            advice.note = "; ".join(notes)
        advice.seconds = time.perf_counter() - started
        result.queries.append(advice)
    _merge(conn, measurer, result, min_gain)
    return result


def _gain(before: float, after: float) -> float:
    return 100.0 * (before - after) / before if before > 0 else 0.0


def _rank(candidate: Candidate, m: Measurement) -> tuple:
    # A plan that reads the rows in order wins over one that sorts them, once both meet --min-gain:
    # a sort's cost grows with the rows per key, the estimate at today's size does not show it.
    sorts = any(label.endswith("Sort") for label in m.shape)
    return (sorts, m.cost, _width(candidate))


def _width(candidate: Candidate) -> int:
    # Of two candidates that price the same, the smaller index: fewer columns, partial over whole.
    return len(candidate.keys) + len(candidate.include) + (0 if candidate.predicate else 1)


def _serves(big: Candidate, small: Candidate) -> bool:
    """`big` leads with `small`'s keys on the same rows: the merge a query may accept, if the planner agrees."""
    n = len(small.keys)
    return (big.table == small.table and big.method == small.method == "btree"
            and big.predicate == small.predicate and big.keys[:n] == small.keys
            and set(small.include) <= set(big.keys) | set(big.include))


def _merge(conn: psycopg.Connection, measurer: Callable, result: ServiceAdvice, min_gain: float) -> None:
    """One index for the queries one index serves: the widest first, re-priced for each query it takes."""
    advised = [a for a in result.queries if a.suggestion is not None]
    order = sorted(advised, key=lambda a: -_width(a.suggestion))  # type: ignore[arg-type]
    kept: list[tuple[Candidate, Measurement, list[str]]] = []
    for advice in order:
        candidate = advice.suggestion
        assert candidate is not None
        for big, first, served in kept:
            if big == candidate:
                served.append(advice.query.name)
                break
            if _serves(big, candidate):
                m = measurer(advice.query, advice.values, big)
                if m is not None and m.uses and _gain(advice.before.cost, m.cost) >= min_gain:
                    advice.suggestion, advice.after = big, m
                    served.append(advice.query.name)
                    break
        else:
            assert advice.after is not None
            kept.append((candidate, advice.after, [advice.query.name]))
    taken = {row[0] for row in conn.execute("SELECT relname FROM pg_class WHERE relkind IN ('i', 'I')")}
    for candidate, m, served in kept:
        name, n = candidate.name, 1
        while name in taken:  # an index of another shape has the name: IF NOT EXISTS would skip ours
            n += 1
            name = f"{candidate.name[:60]}_{n}"
        taken.add(name)
        result.suggestions.append(Suggestion(candidate, name, m.size_bytes, m.indexes_after,
                                             [q.query.name for q in result.queries if q.query.name in served]))
    # A query that earned no index of its own may still ride on one suggested for another: say so.
    for advice in result.queries:
        if advice.suggestion is not None or not advice.tried:
            continue
        for suggestion in result.suggestions:
            if suggestion.candidate.table in advice.query.tables:
                m = measurer(advice.query, advice.values, suggestion.candidate)
                if m is not None and m.uses and m.cost < advice.before.cost:
                    advice.note += (f"; {suggestion.name} (suggested above) would serve it too:"
                                    f" cost {advice.before.cost:,.2f} -> {m.cost:,.2f}")
                    break


def _columns(conn: psycopg.Connection, tables: list[str]) -> dict[str, dict[str, int]]:
    """{table: {column: average width}} for the query tables that take an index, in one catalog query."""
    rows = conn.execute(
        """SELECT c.relname, a.attname, coalesce(s.avg_width, CASE WHEN t.typlen > 0 THEN t.typlen END, 64)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
           WHERE c.oid = ANY(ARRAY(SELECT to_regclass(x) FROM unnest(%s::text[]) x)) AND a.attnum > 0
             AND c.relkind IN ('r', 'p', 'm')
             AND NOT a.attisdropped""", (tables,)).fetchall()
    found: dict[str, dict[str, int]] = {}
    for table, column, width in rows:
        found.setdefault(table, {})[column] = int(width)
    return found


def _scratch_copy(stack: ExitStack, settings: Settings, service: str, live: psycopg.Connection,
                  scratch_dsn: str | None) -> psycopg.Connection:
    """The live schema (pg_dump, indexes as they are) on a scratch database, every table's rows copied, analysed."""
    from ..config import resolve_target, secrets
    from ..databases import locate
    from ..schemafile.dump import pg_dump
    from ..schemafile.scratch import scratch_database, scratch_name, scratch_server

    if settings.env == "prod" and scratch_dsn is None:
        raise Refused(f"{service}: the server has no hypopg, and the real-build path never builds an index on"
                      " prod; pass --scratch-dsn with the admin URL of another server (the tables are copied"
                      " there), or install hypopg in the database; nothing was built")
    place = scratch_server(settings, service, scratch_dsn)
    live_conninfo, _ = locate(resolve_target(service, settings), settings)  # with its password, unlike conn.info
    schema = pg_dump(live_conninfo, settings.environ, secrets(settings))
    conninfo = stack.enter_context(scratch_database(place, scratch_name(service, settings), settings.wait))
    conn = server.connect(conninfo, wait=settings.wait)
    stack.callback(conn.close)
    conn.execute(schema.encode())
    with conn.transaction(), live.transaction(force_rollback=True):
        live.execute("SET TRANSACTION READ ONLY, ISOLATION LEVEL REPEATABLE READ")
        for table in _load_order(conn):
            with live.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as source, \
                    conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT binary)") as target:
                for block in source:
                    target.write(block)
    conn.execute("VACUUM (ANALYZE)")
    return conn


def _load_order(conn: psycopg.Connection) -> list[str]:
    """User tables, each after the tables its foreign keys point at."""
    rows = conn.execute(
        """SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                  ARRAY(SELECT quote_ident(fn.nspname) || '.' || quote_ident(f.relname) FROM pg_constraint k
                        JOIN pg_class f ON f.oid = k.confrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace
                        WHERE k.conrelid = c.oid AND k.contype = 'f' AND k.confrelid <> c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname <> 'information_schema'
             AND n.nspname !~ '^pg_' AND c.relname <> ALL(%s::text[]) ORDER BY 1""",
        (list(TRACKING_TABLES),)).fetchall()
    pending, order = {t: set(deps) for t, deps in rows}, []
    while pending:
        ready = sorted(t for t, deps in pending.items() if not deps - set(order)) or sorted(pending)[:1]
        for table in ready:
            order.append(table)
            del pending[table]
    return order

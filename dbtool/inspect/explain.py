"""Key queries and `dbtool explain`: how each service's important queries really run.

Each service keeps its key queries in `schemas/<service>/queries/<name>.sql`, one SELECT a file:

    -- Courses of one instructor, newest first (spec section 9).
    -- param instructor_id: SELECT instructor_id FROM courses ORDER BY id LIMIT 1
    -- budget: max_ms=50 no_seq_scan
    SELECT * FROM courses WHERE instructor_id = :instructor_id AND deleted_at IS NULL
    ORDER BY created_at DESC LIMIT 10;

Every `:name` needs a `-- param name:` line whose SELECT picks a sample value from the same database
(first column of the first row). Each query runs as EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) in a READ
ONLY transaction with a statement timeout that is always rolled back, so nothing a query does stays.

>>> from dbtool import config, explain
>>> explain.explain(config.make_settings(), ["course"], names=["courses_by_instructor"])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from .. import server, signals
from ..config import Settings
from ..databases import require_database
from ..errors import BadInput, Refused
from ..migrate.locks import LONGEST
from ..render.outfile import check_output
from ..signals import Interrupted
from .plans import PlanNode, plan_nodes, plan_warnings, scan_summary
from .queries import KeyQuery, select_queries

DEFAULT_TIMEOUT = 30.0  # seconds a key query may run before it is cancelled


DEFAULT_LARGE_ROWS = 10_000  # a sequential scan over a table this big is worth a warning


@dataclass
class QueryReport:
    query: KeyQuery
    values: dict[str, Any] = field(default_factory=dict)
    execution_ms: float = 0.0
    planning_ms: float = 0.0
    plan: dict = field(default_factory=dict)
    estimated_rows: float = 0.0
    actual_rows: float = 0.0
    shared_hit: int = 0
    shared_read: int = 0
    temp_blocks: int = 0
    warnings: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # budgets this run broke
    notes: list[str] = field(default_factory=list)  # budgets judged fine, e.g. a seq scan on a small table
    small_scans: dict[str, tuple[float, int]] = field(default_factory=dict)  # table -> (rows, no_seq_scan size)
    regressions: list[str] = field(default_factory=list)  # against --baseline (see baseline.py)
    baseline_ms: float | None = None
    error: str | None = None  # the query did not finish (statement timeout)

    @property
    def nodes(self) -> list[PlanNode]:
        return list(plan_nodes(self.plan)) if self.plan else []

    @property
    def shape(self) -> list[str]:
        """The scans of the plan: which index, or a sequential scan, on which table."""
        seen: list[str] = []
        for node in self.nodes:
            if (node.relation or node.index) and node.label() not in seen:
                seen.append(node.label())
        return seen

    @property
    def summary(self) -> list[str]:
        return scan_summary(self.plan) if self.plan else []

    @property
    def uses_index(self) -> bool:
        return any(n.index for n in self.nodes) and not any(n.is_seq_scan for n in self.nodes)


@dataclass
class ServiceExplain:
    service: str
    where: str
    reports: list[QueryReport] = field(default_factory=list)
    analysed: list[str] = field(default_factory=list)  # tables never analysed that explain analysed first


def explain(
    settings: Settings, services: list[str] | None = None, names: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT, large_rows: int = DEFAULT_LARGE_ROWS, output: Path | None = None,
) -> list[ServiceExplain]:
    """Explain every key query of the selected services (or only those named); nothing is changed.

    `output`, where the report will be written, is checked first so that a bad path runs no query.
    """
    check_output(output)
    if not 0 < timeout <= LONGEST:  # also NaN
        raise BadInput(f"--timeout {timeout:g}: give a positive number of seconds up to {LONGEST:g}"
                       " (PostgreSQL's longest statement timeout), e.g. --timeout 30")
    if large_rows < 0:
        raise BadInput(f"--large-rows {large_rows}: give a row count, e.g. --large-rows 10000")
    # Every file of every service is checked before the first connection: bad input runs nothing.
    queries = select_queries(settings, services, names)
    # Every database is checked and every parameter bound before the first EXPLAIN runs.
    conns: list[psycopg.Connection] = []
    prepared = []
    try:
        for service, qs in queries.items():
            conn, where = _open(settings, service)
            conns.append(conn)
            analysed = _require_statistics(conn, service, qs, settings.env != "prod")
            prepared.append((conn, ServiceExplain(service, where, analysed=analysed),
                             [(q, _bind(conn, q, timeout)) for q in qs]))
        for conn, result, _ in prepared:
            # Only once every input held: ANALYZE samples a table and writes pg_statistic, no row changes.
            for table in result.analysed:
                conn.execute(f"ANALYZE {_quoted(conn, table)}")
        for conn, result, bound in prepared:
            sizes: dict[str, float] = {}  # reltuples per table, looked up once per service
            for query, values in bound:
                if signals.received():  # between two queries: start no new one
                    raise _interrupted(f"before {query.path.name} of {result.service}")
                result.reports.append(_run(conn, query, values, timeout, large_rows, sizes))
        return [result for _, result, _ in prepared]
    finally:
        for conn in conns:
            conn.close()


def _open(settings: Settings, service: str) -> tuple[psycopg.Connection, str]:
    conninfo, where = require_database(settings, service, f" and 'dbtool seed {service}'")
    conn = server.connect(conninfo, wait=settings.wait)
    # Never prepare: a prepared statement run five times may switch to a generic plan, a different plan.
    conn.prepare_threshold = None
    return conn, where


def _require_statistics(conn: psycopg.Connection, service: str, queries: list[KeyQuery],
                        may_analyse: bool) -> list[str]:
    """Plans on tables never analysed are guesses: in dev and test analyse them (and return their
    names), in prod refuse, naming the tables."""
    missing, unanalysed = [], []
    for table in sorted({t for q in queries for t in q.tables}):
        row = conn.execute(
            """SELECT c.oid IS NOT NULL,
                      EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)
                      OR coalesce(t.last_analyze, t.last_autoanalyze) IS NOT NULL
               FROM (SELECT to_regclass(%s) AS oid) r
               LEFT JOIN pg_class c ON c.oid = r.oid
               LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_stat_all_tables t ON t.relid = c.oid""", (table,)).fetchone()
        if not row[0]:
            missing.append((table, next(q.path for q in queries if table in q.tables)))
        elif not row[1]:
            unanalysed.append(table)
    if missing:
        table, path = missing[0]
        raise BadInput(f"{path}: table {table} does not exist in {conn.info.dbname}; fix the query"
                       f" or run 'dbtool migrate {service}'")
    if unanalysed and may_analyse:
        return unanalysed
    if unanalysed:
        raise Refused(f"{service}: no statistics on {', '.join(unanalysed)} (never analysed), so every plan"
                      f" would be a guess; run 'dbtool seed --scale N {service}' or ANALYZE them; nothing was run")
    return []


def _quoted(conn: psycopg.Connection, table: str) -> str:
    # The name as the query wrote it, resolved by the server to its exact, quoted form.
    return conn.execute("SELECT to_regclass(%s)::text", (table,)).fetchone()[0]


def _read_only(conn: psycopg.Connection, timeout: float) -> None:
    # The first statement of the transaction: from here on the server refuses any write.
    conn.execute("SET TRANSACTION READ ONLY")
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout * 1000)}ms",))


def _bind(conn: psycopg.Connection, query: KeyQuery, timeout: float) -> dict[str, Any]:
    values = {}
    with conn.transaction(force_rollback=True):
        _read_only(conn, timeout)
        for name, sql_text in query.params.items():
            try:
                row = conn.execute(sql_text.encode()).fetchone()
            except psycopg.Error as exc:
                if signals.received():
                    raise _interrupted(f"while the parameters of {query.path.name} were picked") from None
                raise BadInput(f"{query.path}: -- param {name}: {_message(exc)}; fix the parameter query") from None
            if row is None:
                raise Refused(f"{query.path}: -- param {name} found no row in {conn.info.dbname}; load data with"
                              f" 'dbtool seed --scale N {query.service}' first; nothing was run")
            if row[0] is None:
                raise BadInput(f"{query.path}: -- param {name} picked NULL, which matches nothing;"
                               f" add 'WHERE ... IS NOT NULL' to its SELECT; nothing was run")
            values[name] = row[0]
    return values


def _interrupted(where: str) -> Interrupted:
    return Interrupted(f"interrupted by {signals.name()} {where}; every key query runs in a read-only transaction"
                       " that is rolled back, so nothing was changed and no report was written;"
                       " run the command again")


def _message(exc: psycopg.Error) -> str:
    return ((exc.diag.message_primary if exc.diag else None) or str(exc)).strip().splitlines()[0]


def _run(conn: psycopg.Connection, query: KeyQuery, values: dict[str, Any], timeout: float,
         large_rows: int, sizes: dict[str, float]) -> QueryReport:
    report = QueryReport(query, values)
    try:
        with conn.transaction(force_rollback=True):
            _read_only(conn, timeout)
            row = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {query.sql}", values).fetchone()
    except psycopg.errors.QueryCanceled:
        if signals.received():  # the signal cancelled it, not the statement timeout: no finding
            raise _interrupted(f"while {query.path.name} of {query.service} ran") from None
        report.error = f"cancelled after the {timeout:g} s statement timeout"
        report.broken.append(f"did not finish within --timeout {timeout:g} s")
        return report
    except psycopg.errors.ReadOnlySqlTransaction as exc:
        raise BadInput(f"{query.path}: the query tried to write ({_message(exc)}); key queries only read;"
                       " nothing was changed") from None
    except psycopg.Error as exc:
        raise BadInput(f"{query.path}: {_message(exc)}; fix the query; nothing was changed") from None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    top = document[0]
    report.plan = top["Plan"]
    report.execution_ms = float(top.get("Execution Time", 0.0))
    report.planning_ms = float(top.get("Planning Time", 0.0))
    report.estimated_rows = float(report.plan.get("Plan Rows", 0))
    report.actual_rows = float(report.plan.get("Actual Rows", 0)) * max(int(report.plan.get("Actual Loops", 1)), 1)
    report.shared_hit = int(report.plan.get("Shared Hit Blocks", 0))
    report.shared_read = int(report.plan.get("Shared Read Blocks", 0))
    report.temp_blocks = int(report.plan.get("Temp Read Blocks", 0)) + int(report.plan.get("Temp Written Blocks", 0))
    for node in report.nodes:
        if node.relation and node.relation not in sizes:
            sizes[node.relation] = float(conn.execute(
                "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = to_regclass(%s)", (node.relation,)
            ).fetchone()[0])
    report.warnings = plan_warnings(report.plan, large_rows, sizes)
    report.broken, report.notes, report.small_scans = judge_budgets(report, large_rows, sizes)
    return report


def judge_budgets(report: QueryReport, large_rows: int, sizes: dict[str, float]
                  ) -> tuple[list[str], list[str], dict[str, tuple[float, int]]]:
    """(broken, fine, small tables scanned) budget lines. no_seq_scan holds only for tables of a
    size: below it a sequential scan is the planner's right choice, reported as fine."""
    budget, broken, fine, small = report.query.budget, [], [], {}
    if budget.max_ms is not None and report.execution_ms > budget.max_ms:
        broken.append(f"took {report.execution_ms:.1f} ms, over its budget max_ms={budget.max_ms:g}")
    if budget.no_seq_scan:
        threshold = budget.seq_scan_rows if budget.seq_scan_rows is not None else large_rows
        for table in sorted({n.relation or "?" for n in report.nodes if n.is_seq_scan}):
            rows = sizes.get(table, 0.0)
            if rows >= threshold:
                broken.append(f"sequential scan on {table} ({rows:,.0f} rows), against its budget no_seq_scan"
                              f" (tables of {threshold:,} rows or more)")
            else:
                fine.append(f"sequential scan on {table} ({rows:,.0f} rows) is fine: below the"
                            f" {threshold:,}-row size no_seq_scan judges")
                small[table] = (rows, threshold)
    return broken, fine, small


def any_broken(results: list[ServiceExplain]) -> bool:
    """A broken budget or a regression against the baseline: exit 1."""
    return any(r.broken or r.regressions for s in results for r in s.reports)


# The steps other commands reuse (the index advisor): the same database checks and sample values.
open_database = _open
require_statistics = _require_statistics
bind_params = _bind

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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

from . import api, server
from .config import Settings, resolve_target, select_services
from .errors import BadInput, Refused

QUERIES_DIR = "queries"
DEFAULT_TIMEOUT = 30.0  # seconds a key query may run before it is cancelled
DEFAULT_LARGE_ROWS = 10_000  # a sequential scan over a table this big is worth a warning
DEEP_OFFSET = 1_000  # rows skipped by a Limit before it is a deep OFFSET
MISESTIMATE = 10.0  # estimated vs actual rows, either way

_PARAM_LINE = re.compile(r"^--\s*param\b(.*)$")
_PARAM = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")
_BUDGET_LINE = re.compile(r"^--\s*budget\s*:(.*)$")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


# ---------------------------------------------------------------- query files


@dataclass(frozen=True)
class Budget:
    max_ms: float | None = None
    no_seq_scan: bool = False

    def describe(self) -> str:
        parts = ([f"max_ms={self.max_ms:g}"] if self.max_ms is not None else []) + (
            ["no_seq_scan"] if self.no_seq_scan else [])
        return " ".join(parts)


@dataclass(frozen=True)
class KeyQuery:
    service: str
    name: str
    path: Path
    description: str
    text: str  # the statement as written, :name parameters and all
    sql: str  # the same with psycopg %(name)s placeholders, ready to bind
    params: dict[str, str]  # parameter -> the SELECT that picks its sample value
    budget: Budget
    tables: tuple[str, ...]  # tables named by the query and by its parameter queries


def load_queries(settings: Settings, service: str) -> list[KeyQuery]:
    folder = settings.schemas_dir / service / QUERIES_DIR
    if not folder.is_dir():
        return []
    return [parse_query_file(path, service) for path in sorted(folder.glob("*.sql"))]


def parse_query_file(path: Path, service: str = "") -> KeyQuery:
    """Read and check one query file; every problem is a BadInput naming the file and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    params: dict[str, str] = {}
    budget = Budget()
    description: list[str] = []
    in_header = True
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if (match := _PARAM_LINE.match(stripped)) is not None:
            name, query = _param_line(path, number, match.group(1))
            if name in params:
                raise BadInput(f"{path}:{number}: parameter {name} is declared twice; keep one '-- param' line")
            params[name] = query
        elif (match := _BUDGET_LINE.match(stripped)) is not None:
            budget = _budget(path, number, match.group(1))
        elif in_header and stripped.startswith("--"):
            description.append(stripped[2:].strip())
        elif stripped:
            in_header = False
    statement, used = _statement(path, text)
    names = list(dict.fromkeys(u.name for u in used))
    for name in names:
        if name not in params:
            raise BadInput(f"{path}: parameter :{name} has no value; add '-- param {name}: SELECT ...'"
                           " that picks one from the data")
    for name in params:
        if name not in names:
            raise BadInput(f"{path}: '-- param {name}' is not used by the query; remove it or use :{name}")
    tables = set(_tables(_single_select(path, _validation_text(statement, used), "the query")))
    for name, query in params.items():
        tables |= _tables(_single_select(path, query, f"-- param {name}"))
    return KeyQuery(
        service=service or path.parent.parent.name,
        name=path.stem,
        path=path,
        description=" ".join(d for d in description if d),
        text=statement,
        sql=_psycopg_text(statement, used),
        params=params,
        budget=budget,
        tables=tuple(sorted(tables)),
    )


def _param_line(path: Path, number: int, rest: str) -> tuple[str, str]:
    match = _PARAM.match(rest)
    if match is None:
        raise BadInput(f"{path}:{number}: malformed parameter line; write '-- param NAME: SELECT ...'")
    name, query = match.groups()
    if not query:
        raise BadInput(f"{path}:{number}: parameter {name} has no value; give the SELECT that picks one"
                       f" ('-- param {name}: SELECT ...')")
    return name, query


def _budget(path: Path, number: int, rest: str) -> Budget:
    max_ms, no_seq = None, False
    for word in rest.split():
        if word == "no_seq_scan":
            no_seq = True
        elif word.startswith("max_ms="):
            try:
                max_ms = float(word[len("max_ms="):])
            except ValueError:
                max_ms = -1.0
            if max_ms < 0:
                raise BadInput(f"{path}:{number}: {word}: give milliseconds, e.g. max_ms=50")
        else:
            raise BadInput(f"{path}:{number}: unknown budget {word!r}; use max_ms=N and/or no_seq_scan")
    return Budget(max_ms, no_seq)


@dataclass(frozen=True)
class _Use:
    name: str
    start: int  # offset of the ':' in the statement (characters, as pglast counts them)
    end: int  # offset just after the name


def _statement(path: Path, text: str) -> tuple[str, list[_Use]]:
    """The one statement of the file (the comments around it cut off) and its :name parameters."""
    try:
        tokens = list(scan(text))
    except Exception as exc:  # the scanner reports an unterminated string or comment
        raise BadInput(f"{path}: {str(exc).splitlines()[0]}; fix the SQL") from None
    uses = _uses(path, text, tokens)
    try:
        statements = parse_sql(_validation_text(text, uses))
    except ParseError as exc:
        message, position = exc.args[0], exc.args[1] if len(exc.args) > 1 else 0
        line = text[:position].count("\n") + 1
        raise BadInput(f"{path}:{line}: {message}; fix the SQL") from None
    if len(statements) != 1:
        what = "no statement" if not statements else f"{len(statements)} statements"
        raise BadInput(f"{path}: holds {what}; a key query file holds exactly one SELECT")
    raw = statements[0]
    end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
    # Skip the header comments: the statement starts at its first real token.
    start = next(t.start for t in tokens if t.start >= (raw.stmt_location or 0) and not t.name.endswith("COMMENT"))
    statement = text[start:end].rstrip()
    inside = [_Use(u.name, u.start - start, u.end - start) for u in uses if start <= u.start < end]
    return statement, inside


def _uses(path: Path, text: str, tokens: list) -> list[_Use]:
    """`:name` is a ':' token directly followed by a word; '::' casts and strings are other tokens."""
    found = []
    for token, following in zip(tokens, tokens[1:] + [None]):
        if token.name == "PARAM":
            line = text[: token.start].count("\n") + 1
            raise BadInput(f"{path}:{line}: positional parameter {text[token.start:token.end + 1]};"
                           " use named ones like :instructor_id with a '-- param' line")
        if token.name != "ASCII_58" or following is None or following.start != token.end + 1:
            continue
        word = text[following.start: following.end + 1]
        if _IDENT.match(word):
            found.append(_Use(word, token.start, following.end + 1))
    return found


def _validation_text(text: str, uses: list[_Use]) -> str:
    # `$1` padded to the same length keeps every offset pglast reports valid for the file itself.
    for use in uses:
        text = text[: use.start] + "$1".ljust(use.end - use.start) + text[use.end:]
    return text


def _psycopg_text(statement: str, uses: list[_Use]) -> str:
    # psycopg reads every % as a placeholder marker, in strings and comments too: double the others.
    parts, at = [], 0
    for use in uses:
        parts.append(statement[at: use.start].replace("%", "%%"))
        parts.append(f"%({use.name})s")
        at = use.end
    parts.append(statement[at:].replace("%", "%%"))
    return "".join(parts)


def _single_select(path: Path, text: str, what: str) -> ast.Node:
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        raise BadInput(f"{path}: {what}: {exc.args[0]}; fix the SQL") from None
    if len(statements) != 1:
        raise BadInput(f"{path}: {what} holds {len(statements)} statements; give exactly one SELECT")
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        raise BadInput(f"{path}: {what} is a {type(stmt).__name__.removesuffix('Stmt').upper()},"
                       " not a SELECT; key queries only read, nothing was run")
    finder = _Finder()
    finder(stmt)
    if finder.writes:
        raise BadInput(f"{path}: {what} contains a data-modifying {finder.writes[0]};"
                       " key queries only read, nothing was run")
    if finder.into:
        raise BadInput(f"{path}: {what} is a SELECT INTO, which creates a table; drop the INTO, nothing was run")
    if finder.locks:
        raise BadInput(f"{path}: {what} locks rows (FOR UPDATE/SHARE); drop the locking clause, nothing was run")
    return stmt


class _Finder(Visitor):
    """What a parsed SELECT hides: writing CTEs, INTO, row locks, and the tables it names."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.into = False
        self.locks = False
        self.tables: set[str] = set()
        self.ctes: set[str] = set()

    def visit(self, ancestors, node):  # type: ignore[override]
        if isinstance(node, _WRITES):
            self.writes.append(type(node).__name__.removesuffix("Stmt").upper())
        elif isinstance(node, ast.IntoClause):
            self.into = True
        elif isinstance(node, ast.LockingClause):
            self.locks = True
        elif isinstance(node, ast.CommonTableExpr):
            self.ctes.add(node.ctename)
        elif isinstance(node, ast.RangeVar):
            self.tables.add(f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname)


def _tables(stmt: ast.Node) -> set[str]:
    finder = _Finder()
    finder(stmt)
    return finder.tables - finder.ctes


# ---------------------------------------------------------------- plans


@dataclass
class PlanNode:
    depth: int
    node_type: str  # as EXPLAIN's text format names it: "Index Scan Backward", "Parallel Seq Scan"
    relation: str | None
    index: str | None
    plan_rows: float
    actual_rows: float  # per loop, like plan_rows
    loops: int
    total_ms: float
    details: list[str] = field(default_factory=list)
    under_limit: bool = False  # below a Limit that got its rows, so it may have stopped early
    removed: float = 0.0  # rows its filter read and discarded, over all loops

    @property
    def is_seq_scan(self) -> bool:
        return self.node_type.endswith("Seq Scan")

    def label(self) -> str:
        on = f" using {self.index}" if self.index else ""
        return f"{self.node_type}{on}{f' on {self.relation}' if self.relation else ''}"


_DETAILS = ("Index Cond", "Recheck Cond", "Filter", "Rows Removed by Filter", "Sort Key", "Sort Method",
            "Sort Space Used", "Sort Space Type", "Hash Batches", "Join Filter", "Heap Fetches")


def plan_nodes(plan: dict, depth: int = 0, under_limit: bool = False) -> Iterator[PlanNode]:
    kind = plan["Node Type"]
    if plan.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    if plan.get("Scan Direction") == "Backward":
        kind += " Backward"
    details = [f"{key}: {', '.join(map(str, plan[key])) if isinstance(plan[key], list) else plan[key]}"
               for key in _DETAILS if key in plan]
    yield PlanNode(
        depth=depth, node_type=kind, relation=plan.get("Relation Name"), index=plan.get("Index Name"),
        plan_rows=float(plan.get("Plan Rows", 0)), actual_rows=float(plan.get("Actual Rows", 0)),
        loops=int(plan.get("Actual Loops", 0)), total_ms=float(plan.get("Actual Total Time", 0)),
        details=details, under_limit=under_limit,
        removed=float(plan.get("Rows Removed by Filter", 0)) * max(int(plan.get("Actual Loops", 1)), 1),
    )
    # A Limit that returned fewer rows than asked ran its input to the end: nothing below stopped early.
    stops = plan["Node Type"] == "Limit" and float(plan.get("Actual Rows", 0)) >= float(plan.get("Plan Rows", 0))
    for child in plan.get("Plans", []):
        yield from plan_nodes(child, depth + 1, under_limit or stops)


def plan_lines(plan: dict) -> list[str]:
    """The plan as an indented tree, EXPLAIN's text format in short, for the Markdown report."""
    lines = []
    for node in plan_nodes(plan):
        pad = "  " * node.depth + ("-> " if node.depth else "")
        lines.append(f"{pad}{node.label()}  (rows est {node.plan_rows:,.0f}, actual {node.actual_rows:,.0f}"
                     f" x {node.loops} loop{'s' if node.loops != 1 else ''}, {node.total_ms:.3f} ms)")
        lines += [f"{'  ' * node.depth}     {d}" for d in node.details]
    return lines


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
    def uses_index(self) -> bool:
        return any(n.index for n in self.nodes) and not any(n.is_seq_scan for n in self.nodes)


@dataclass
class ServiceExplain:
    service: str
    where: str
    reports: list[QueryReport] = field(default_factory=list)


def check_output(path: Path | None) -> None:
    """Fail before anything runs when the report could not be written."""
    if path is not None and not path.parent.is_dir():
        raise BadInput(f"--output {path}: folder {path.parent} does not exist; create it or choose another path")
    if path is not None and path.is_dir():
        raise BadInput(f"--output {path}: is a folder; give a file name such as report.md")


def explain(
    settings: Settings, services: list[str] | None = None, names: list[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT, large_rows: int = DEFAULT_LARGE_ROWS,
) -> list[ServiceExplain]:
    """Explain every key query of the selected services (or only those named); nothing is changed."""
    if timeout <= 0:
        raise BadInput(f"--timeout {timeout:g}: give a positive number of seconds, e.g. --timeout 30")
    if large_rows < 0:
        raise BadInput(f"--large-rows {large_rows}: give a row count, e.g. --large-rows 10000")
    chosen = select_services(settings, services)
    # Every file of every service is checked before the first connection: bad input runs nothing.
    queries = {s: load_queries(settings, s) for s in chosen}
    if names:
        known = {q.name for qs in queries.values() for q in qs}
        for name in names:
            if name not in known:
                listing = ", ".join(sorted(known)) or "none"
                raise BadInput(f"--query {name}: no key query of that name in {settings.schemas_dir}/<service>/"
                               f"{QUERIES_DIR}/ (queries: {listing}); check the name")
        queries = {s: [q for q in qs if q.name in names] for s, qs in queries.items()}
    queries = {s: qs for s, qs in queries.items() if qs}
    if not queries:
        raise BadInput(f"{settings.schemas_dir}: no key queries in <service>/{QUERIES_DIR}/*.sql;"
                       " add one SELECT a file")
    # Every database is checked and every parameter bound before the first EXPLAIN runs.
    conns: list[psycopg.Connection] = []
    prepared = []
    try:
        for service, qs in queries.items():
            conn, where = _open(settings, service)
            conns.append(conn)
            _require_statistics(conn, service, qs)
            prepared.append((conn, ServiceExplain(service, where), [(q, _bind(conn, q, timeout)) for q in qs]))
        for conn, result, bound in prepared:
            sizes: dict[str, float] = {}  # reltuples per table, looked up once per service
            for query, values in bound:
                result.reports.append(_run(conn, query, values, timeout, large_rows, sizes))
        return [result for _, result, _ in prepared]
    finally:
        for conn in conns:
            conn.close()


def _open(settings: Settings, service: str) -> tuple[psycopg.Connection, str]:
    target = resolve_target(service, settings)
    conninfo, where = api.locate(target, settings)
    if not api.database_exists(conninfo, settings):
        raise Refused(f"{service}: database {target.dbname} does not exist; run 'dbtool migrate {service}'"
                      f" and 'dbtool seed {service}' first")
    conn = server.connect(conninfo, wait=settings.wait)
    # Never prepare: a prepared statement run five times may switch to a generic plan, a different plan.
    conn.prepare_threshold = None
    return conn, where


def _require_statistics(conn: psycopg.Connection, service: str, queries: list[KeyQuery]) -> None:
    """Plans on tables never analysed are guesses; refuse them, naming the tables."""
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
    if unanalysed:
        raise Refused(f"{service}: no statistics on {', '.join(unanalysed)} (never analysed), so every plan"
                      f" would be a guess; run 'dbtool seed --scale N {service}' or ANALYZE them; nothing was run")


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
                raise BadInput(f"{query.path}: -- param {name}: {_message(exc)}; fix the parameter query") from None
            if row is None:
                raise Refused(f"{query.path}: -- param {name} found no row in {conn.info.dbname}; load data with"
                              f" 'dbtool seed --scale N {query.service}' first; nothing was run")
            if row[0] is None:
                raise BadInput(f"{query.path}: -- param {name} picked NULL, which matches nothing;"
                               f" add 'WHERE ... IS NOT NULL' to its SELECT; nothing was run")
            values[name] = row[0]
    return values


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
    report.broken = broken_budgets(report)
    return report


def plan_warnings(plan: dict, large_rows: int, sizes: dict[str, float]) -> list[str]:
    """Plain findings on a plan: big sequential scans, misestimates, spills, deep OFFSETs."""
    found = []
    for node, raw in zip(plan_nodes(plan), _raw_nodes(plan)):
        rows = sizes.get(node.relation or "", 0.0)
        if node.is_seq_scan and rows >= large_rows:
            found.append(f"sequential scan on {node.relation} ({rows:,.0f} rows): index the columns it filters on")
        if node.loops:
            est, act = max(node.plan_rows, 1.0), max(node.actual_rows, 1.0)
            # Under a Limit a node stops early by design: fewer rows than estimated is no misestimate.
            if max(est, act) / min(est, act) > MISESTIMATE and not (node.under_limit and act < est):
                found.append(f"{node.label()}: estimated {node.plan_rows:,.0f} rows, got {node.actual_rows:,.0f}"
                             f" ({max(est, act) / min(est, act):,.0f}x off); run ANALYZE, or raise the"
                             " statistics target of the columns it filters on")
        if node.removed >= large_rows:
            found.append(f"{node.label()}: read and discarded {node.removed:,.0f} rows with its filter;"
                         " index the filtered columns (or expression) so fewer rows are read")
        if raw.get("Sort Space Type") == "Disk":
            found.append(f"sort spilled to disk ({raw.get('Sort Space Used', '?')} kB): raise work_mem"
                         " or read the rows in order from an index")
        if int(raw.get("Hash Batches", 1)) > 1:
            found.append(f"hash spilled to disk in {raw['Hash Batches']} batches: raise work_mem")
        if raw["Node Type"] == "Limit" and raw.get("Plans") and node.loops:
            child = raw["Plans"][0]
            skipped = float(child.get("Actual Rows", 0)) * int(child.get("Actual Loops", 1)) - \
                node.actual_rows * node.loops
            if skipped > DEEP_OFFSET:
                found.append(f"deep OFFSET: {skipped:,.0f} rows read and thrown away before the page;"
                             " use keyset pagination (WHERE (created_at, id) < (:last...))")
    return found


def _raw_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _raw_nodes(child)


def broken_budgets(report: QueryReport) -> list[str]:
    budget, broken = report.query.budget, []
    if budget.max_ms is not None and report.execution_ms > budget.max_ms:
        broken.append(f"took {report.execution_ms:.1f} ms, over its budget max_ms={budget.max_ms:g}")
    if budget.no_seq_scan:
        scans = sorted({n.relation or "?" for n in report.nodes if n.is_seq_scan})
        if scans:
            broken.append(f"sequential scan on {', '.join(scans)}, against its budget no_seq_scan")
    return broken


def any_broken(results: list[ServiceExplain]) -> bool:
    return any(r.broken for s in results for r in s.reports)

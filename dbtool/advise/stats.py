"""--from-stats: the top SELECTs of pg_stat_statements as further queries to advise, named stats:<queryid>.

The extension records each statement with $1, $2 where its values were, so there is nothing to
bind: such a statement is priced by its generic plan, the plan made without the values. PostgreSQL
16 and later give it with EXPLAIN (GENERIC_PLAN); before 16 it is a prepared statement explained
with plan_cache_mode = force_generic_plan (PostgreSQL 12+), where the NULLs passed to EXECUTE do
not shape the plan.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError, fingerprint
from pglast.stream import RawStream
from psycopg import sql

from ..errors import BadInput
from ..inspect.queries import Budget, KeyQuery, parse_statement, read_tables
from ..migrate.state import TRACKING_TABLES

DEFAULT_TOP = 10
GENERIC_PLAN_VERSION = 160000  # server_version_num of the first release with EXPLAIN (GENERIC_PLAN)
_CATALOG_SCHEMAS = ("pg_catalog", "information_schema")
_PREPARED = itertools.count(1)


class StatsUnavailable(BadInput):
    """pg_stat_statements cannot be read in the database; the message says why and how to enable it."""


@dataclass(frozen=True)
class StatsQuery(KeyQuery):
    """A statement of pg_stat_statements, advised like a key query; its description is the
    statement's first line."""

    queryid: int = 0
    calls: int = 0
    total_exec_ms: float = 0.0


def check_top(from_stats: bool, top: int | None) -> int:
    if top is not None and not from_stats:
        raise BadInput(f"--top {top}: counts the statements --from-stats takes; add --from-stats, or drop --top")
    if top is not None and top < 1:
        raise BadInput(f"--top {top}: give how many statements to take, 1 or more, e.g. --top {DEFAULT_TOP}")
    return DEFAULT_TOP if top is None else top


def statement(query: KeyQuery) -> ast.SelectStmt:
    """The parsed SELECT of a key query or of a statement from pg_stat_statements."""
    return parse_sql(query.text)[0].stmt if isinstance(query, StatsQuery) else parse_statement(query)


def explain_generic(conn: psycopg.Connection, text: str, option: bool | None = None) -> dict:
    """The generic plan (EXPLAIN FORMAT JSON's Plan) of a statement with $n placeholders; inside a
    transaction. `option`: use EXPLAIN (GENERIC_PLAN), by default when the server has it."""
    if option is None:
        option = conn.info.server_version >= GENERIC_PLAN_VERSION
    if option:
        row = conn.execute(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {text}".encode()).fetchone()
    else:
        # A prepared statement outlives the rollback: a name of its own, deallocated once explained.
        name = f"_dbtool_advise_{next(_PREPARED)}"
        conn.execute("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
        conn.execute(f"PREPARE {name} AS {text}".encode())
        count = conn.execute("SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = %s",
                             (name,)).fetchone()[0]
        values = f"({', '.join(['NULL'] * count)})" if count else ""
        row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{values}").fetchone()
        conn.execute(f"DEALLOCATE {name}")
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return document[0]["Plan"]


def top_statements(conn: psycopg.Connection, service: str, top: int, key_queries: list[KeyQuery]) -> list[StatsQuery]:
    """The `top` SELECTs of the database by total execution time that read its own tables, each one
    the planner can price; `key_queries` are every key query of the service."""
    view = _view(conn)
    time_column = "total_exec_time" if conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'total_exec_time')",
        (view,)).fetchone()[0] else "total_time"  # the extension before 1.8 (PostgreSQL 12)
    try:
        with conn.transaction():
            rows = conn.execute(sql.SQL(
                """SELECT queryid, min(query), sum(calls)::int8, sum({time})::float8 FROM {view}
                   WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                     AND queryid IS NOT NULL
                   GROUP BY queryid ORDER BY 4 DESC, 1""").format(
                time=sql.Identifier(time_column), view=sql.SQL(view))).fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        raise StatsUnavailable(
            f"pg_stat_statements is installed in {conn.info.dbname} but the server does not preload it;"
            " add shared_preload_libraries = 'pg_stat_statements' to its postgresql.conf and restart it") from None
    # The key queries are advised as such; their -- param SELECTs are dbtool's own, not the service's.
    known = {fingerprint(RawStream()(parse_statement(q))) for q in key_queries}
    known |= {fingerprint(p) for q in key_queries for p in q.params.values()}
    taken: list[StatsQuery] = []
    for queryid, text, calls, total in rows:
        if len(taken) == top:
            break
        query = _query(conn, service, queryid, text, calls, total, known)
        if query is not None:
            taken.append(query)
    return taken


def _view(conn: psycopg.Connection) -> str:
    """The extension's view, qualified with the schema it was installed in."""
    row = conn.execute("""SELECT quote_ident(n.nspname) || '.pg_stat_statements' FROM pg_extension e
                          JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'""").fetchone()
    if row is not None:
        return row[0]
    # Superuser-only setting: a role that may not read it is told both steps.
    setting = conn.execute("SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'").fetchone()
    db = conn.info.dbname
    if setting is not None and "pg_stat_statements" in setting[0]:
        raise StatsUnavailable(f"pg_stat_statements is not installed in {db}; run CREATE EXTENSION"
                               f" pg_stat_statements in {db} (the server preloads it already)")
    raise StatsUnavailable(f"pg_stat_statements is not installed in {db}; add shared_preload_libraries ="
                           " 'pg_stat_statements' to the server's postgresql.conf, restart it, then run"
                           f" CREATE EXTENSION pg_stat_statements in {db}")


def _query(conn: psycopg.Connection, service: str, queryid: int, text: str, calls: int, total: float,
           known: set[str]) -> StatsQuery | None:
    """The statement as a query to advise, or None: not one SELECT of the service's tables (a write, a
    view, the catalog, dbtool's and yoyo's tracking tables), a key query already, or unplannable."""
    text = text.strip().rstrip(";").strip()
    try:
        statements = parse_sql(text)
    except ParseError:  # '<insufficient privilege>' for another role's statement, without pg_read_all_stats
        return None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.SelectStmt):
        return None
    tables = read_tables(statements[0].stmt)
    if not tables or fingerprint(text) in known:
        return None
    for table in tables:
        schema, _, name = table.rpartition(".")
        if schema in _CATALOG_SCHEMAS or name.startswith("pg_") or name in TRACKING_TABLES:
            return None
    try:
        with conn.transaction(force_rollback=True):
            # Every relation a table of the user's own (a view takes no index and has no statistics),
            # resolved as dbtool resolves the key queries' tables.
            if not conn.execute(
                    """SELECT bool_and(n.nspname <> ALL(%s) AND n.nspname !~ '^pg_' AND c.relkind IN ('r', 'p', 'm'))
                              AND count(c.oid) = %s
                       FROM unnest(%s::text[]) t LEFT JOIN pg_class c ON c.oid = to_regclass(t)
                       LEFT JOIN pg_namespace n ON n.oid = c.relnamespace""",
                    (list(_CATALOG_SCHEMAS), len(tables), sorted(tables))).fetchone()[0]:
                return None
            explain_generic(conn, text)
    except psycopg.Error:  # a parameter whose type nothing settles, a table of another search_path
        return None
    name = f"stats:{queryid}"
    return StatsQuery(service, name, Path(name), text.splitlines()[0].strip(), text, text, {}, Budget(),
                      tuple(sorted(tables)), queryid=queryid, calls=int(calls), total_exec_ms=float(total))

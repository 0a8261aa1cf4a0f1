"""Pricing a key query's plan with a candidate index, and without: the planner is the proof.

Two ways, same answer shape. With the hypopg extension in the database the candidate is
hypothetical (nothing is built). Without it the candidate is built for real, under a temporary
name, inside a transaction that is always rolled back: the planner sees it, EXPLAIN (no ANALYZE)
prices the query, and the rollback leaves nothing. Either way the audit's duplicate/redundant logic
says whether an index already there gives the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..inspect.indexes import AuditIndex, read_indexes, served_by
from ..inspect.plans import plan_nodes
from ..inspect.queries import KeyQuery
from .candidates import Candidate
from .stats import StatsQuery, explain_generic

BUILD_NAME = "_dbtool_advise_candidate"  # the real build's temporary name, never left behind
HYPOPG_METHODS = ("btree", "brin", "hash", "bloom")  # hypopg 1.3 prices no gin or gist index
LOCK_TIMEOUT = "5s"  # a busy table is skipped, not waited for: the build needs a SHARE lock


@dataclass
class Measurement:
    cost: float
    plan: dict
    uses: bool = False  # the plan reads through the candidate
    size_bytes: int = 0
    indexes_after: int = 0  # indexes on the table with the candidate
    given_by: str | None = None  # an existing index that already gives the candidate
    shape: list[str] = field(default_factory=list)


def has_hypopg(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')").fetchone()[0]


def _explain(conn: psycopg.Connection, query: KeyQuery, values: dict[str, Any]) -> dict:
    if isinstance(query, StatsQuery):  # $1 placeholders and no values: its generic plan
        return explain_generic(conn, query.text)
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query.sql}", values).fetchone()
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return document[0]["Plan"]


def shape(plan: dict) -> list[str]:
    seen: list[str] = []
    for node in plan_nodes(plan):
        if node.node_type in ("Sort", "Incremental Sort") or node.relation or node.index:
            if node.label() not in seen:
                seen.append(node.label())
    return seen


def _settings(conn: psycopg.Connection, timeout: float) -> None:
    conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{int(timeout * 1000)}ms",))
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))


def baseline(conn: psycopg.Connection, query: KeyQuery, values: dict[str, Any], timeout: float) -> Measurement:
    with conn.transaction(force_rollback=True):
        _settings(conn, timeout)
        plan = _explain(conn, query, values)
    return Measurement(float(plan["Total Cost"]), plan, shape=shape(plan))


def measure(conn: psycopg.Connection, query: KeyQuery, values: dict[str, Any], candidate: Candidate,
            timeout: float, hypothetical: bool, may_build: bool = True) -> Measurement | None:
    """The plan with the candidate; None when hypopg cannot price it and building it is not allowed here."""
    if hypothetical and candidate.method not in HYPOPG_METHODS:
        if not may_build:
            return None
        hypothetical = False  # a real build, rolled back like any other
    with conn.transaction(force_rollback=True):
        _settings(conn, timeout)
        if hypothetical:
            oid = conn.execute("SELECT indexrelid FROM hypopg_create_index(%s)",
                               (candidate.definition(False, False),)).fetchone()[0]
            mine, others = _hypothetical_index(conn, oid), read_indexes(conn)
            size = int(conn.execute("SELECT hypopg_relation_size(%s)", (oid,)).fetchone()[0])
            label = f"<{oid}>"
        else:
            conn.execute(candidate.definition(False, False).replace(
                f" {_quoted(candidate.name)} ON", f" {BUILD_NAME} ON", 1))
            indexes = read_indexes(conn)
            mine = next(i for i in indexes if i.name == BUILD_NAME)
            others = [i for i in indexes if i.name != BUILD_NAME]
            size, label = mine.size, BUILD_NAME
        plan = _explain(conn, query, values)
        if hypothetical:
            conn.execute("SELECT hypopg_reset()")
    given = served_by(mine, others)
    uses = any(n.index and label in n.index for n in plan_nodes(plan))
    same_table = sum(1 for i in others if i.table_oid == mine.table_oid)
    named = [s.replace(label, candidate.name) for s in shape(plan)]
    return Measurement(float(plan["Total Cost"]), plan, uses, size, same_table + 1,
                       given.name if given else None, named)


def _quoted(name: str) -> str:
    from pglast.stream import maybe_double_quote_name

    return maybe_double_quote_name(name)


_HYPOTHETICAL = """
SELECT h.indexrelid::int8, h.indrelid::int8, n.nspname, t.relname, h.indexname, h.indexname, am.amname,
       h.indisunique, h.indkey::int2[], h.indclass::oid[], h.indcollation::oid[],
       string_to_array(h.indoption::text, ' ')::int2[],
       pg_get_expr(h.indexprs, h.indrelid), pg_get_expr(h.indpred, h.indrelid), h.innatts
FROM hypopg() h
JOIN pg_class t ON t.oid = h.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = h.amid
WHERE h.indexrelid = %s"""


def _hypothetical_index(conn: psycopg.Connection, oid: int) -> AuditIndex:
    """hypopg's own catalog row of a hypothetical index, in the audit's terms."""
    (ioid, table_oid, schema, table, name, qualified, am, unique, key, opclasses, collations, options,
     exprs, pred, natts) = conn.execute(_HYPOTHETICAL, (oid,)).fetchone()
    # hypopg leaves indoption empty when no column is DESC or NULLS FIRST; pg_index has a zero each.
    options = tuple(options or ()) or (0,) * len(key)
    return AuditIndex(ioid, table_oid, schema, table, name, qualified, am, unique, False, False, True, False,
                      int(natts), tuple(key), tuple(opclasses), tuple(collations or ()), options, exprs, pred,
                      (), 0, None, None, None, False, False)

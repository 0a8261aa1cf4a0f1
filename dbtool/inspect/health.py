"""The audit's health checks: bloated btree indexes, sequences near overflow, indexes too unselective to
be used, and index usage read from replicas.

Two catalog queries on the audited database (`QUERIES`) and one per replica (`REPLICA_QUERIES`),
whatever the number of tables; the comparing is done in Python, like the rest of the audit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import psycopg

from ..migrate.state import TRACKING_TABLES

QUERIES = 2  # what health_findings sends
REPLICA_QUERIES = 1  # what replica_scans sends

BLOAT_MIN_BYTES = 1024 * 1024  # smaller indexes are not worth a rebuild whatever their waste
BLOAT_RATIO = 2.0  # the index is at least twice the size its rows need
OVERFLOW_WARN = 0.75  # share of a sequence's (or its column's) range already used
LOW_DISTINCT = 10  # distinct values at most, for a single-column btree to be too unselective
LOW_SELECTIVITY_MIN_ROWS = 10_000  # a small table is read whole anyway: no finding
_PAGE = 8192
_PAGE_OVERHEAD = 24 + 16  # page header and btree special space
_TUPLE_OVERHEAD = 8 + 4  # index tuple header and its line pointer
_TYPE_MAX = {"smallint": 32_767, "integer": 2_147_483_647, "bigint": 9_223_372_036_854_775_807}

_USER = """n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND t.relname <> ALL(%(skip)s::text[])"""

# Per plain btree index: its pages and rows, the width of its key columns (pg_stats), its fillfactor,
# and the statistics of its leading column (distinct values, most common values and frequencies).
_INDEXES = f"""
SELECT n.nspname, t.relname, c.relname, quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       c.relpages::int8, greatest(c.reltuples, 0)::float8, greatest(t.reltuples, 0)::float8,
       (SELECT sum(s.avg_width) FROM unnest(i.indkey::int2[]) k(attnum)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = t.relname AND s.attname = a.attname)::int,
       coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o WHERE o LIKE 'fillfactor=%%'), 90),
       i.indisunique, i.indnatts, i.indkey[0] = 0 OR i.indexprs IS NOT NULL, i.indpred IS NOT NULL,
       a0.attname, s0.n_distinct::float8, s0.most_common_vals::text, s0.most_common_freqs::float8[]
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = c.relam AND am.amname = 'btree'
LEFT JOIN pg_attribute a0 ON a0.attrelid = i.indrelid AND a0.attnum = i.indkey[0]
LEFT JOIN pg_stats s0 ON s0.schemaname = n.nspname AND s0.tablename = t.relname AND s0.attname = a0.attname
WHERE i.indisvalid AND c.relkind = 'i' AND {_USER}
ORDER BY 1, 2, 3"""

# Each sequence, how far it got, and the type of the column it feeds (serial or identity), if any.
_SEQUENCES = """
SELECT n.nspname, s.relname, quote_ident(n.nspname) || '.' || quote_ident(s.relname),
       t.relname, a.attname, format_type(a.atttypid, NULL), q.last_value, q.max_value, q.increment_by
FROM pg_class s
JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_sequences q ON q.schemaname = n.nspname AND q.sequencename = s.relname
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE s.relkind = 'S' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND coalesce(t.relname, '') <> ALL(%(skip)s::text[])
ORDER BY 1, 2"""

_SCANS = f"""
SELECT n.nspname, c.relname, coalesce(pg_stat_get_numscans(i.indexrelid), 0)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace WHERE {_USER}"""


@dataclass(frozen=True)
class HealthFinding:
    kind: str
    schema: str
    table: str
    index: str | None
    subject: str
    size: int
    evidence: str
    fix: str


def health_findings(conn: psycopg.Connection) -> list[HealthFinding]:
    params = {"skip": list(TRACKING_TABLES)}
    indexes = conn.execute(_INDEXES, params).fetchall()
    sequences = conn.execute(_SEQUENCES, params).fetchall()
    return _bloat(indexes) + _overflow(sequences) + _low_selectivity(indexes)


def replica_scans(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """{(schema, index): scans} on a replica: an index only a replica reads is not unused."""
    return {(schema, name): int(scans) for schema, name, scans in
            conn.execute(_SCANS, {"skip": list(TRACKING_TABLES)}).fetchall()}


def expected_pages(rows: float, key_width: int, fillfactor: int) -> int:
    """Leaf pages a freshly built btree needs for its rows, plus the metapage and ~1% inner pages."""
    tuple_size = _TUPLE_OVERHEAD + 8 * math.ceil(key_width / 8)
    per_page = max(int((_PAGE - _PAGE_OVERHEAD) * fillfactor / 100 // tuple_size), 1)
    leaves = math.ceil(rows / per_page)
    return max(leaves + math.ceil(leaves / 100), 1) + 1


def _bloat(indexes: list[tuple]) -> list[HealthFinding]:
    from .audit import pretty_size

    found = []
    for (schema, table, name, qualified, pages, rows, _, width, fillfactor, _, _, expression, _,
         _, _, _, _) in indexes:
        size = pages * _PAGE
        if width is None or expression or size < BLOAT_MIN_BYTES:
            continue  # no statistics for a key column (never analysed), or an expression: no estimate
        need = expected_pages(rows, width, fillfactor)
        if pages < BLOAT_RATIO * need:
            continue
        waste = (pages - need) * _PAGE
        evidence = (f"{name} takes {pretty_size(size)} for {rows:,.0f} rows that need about"
                    f" {pretty_size(need * _PAGE)} (estimate from the key width and fillfactor {fillfactor});"
                    f" about {pretty_size(waste)} is empty space left by deletes and updates")
        found.append(HealthFinding("bloat", schema, table, name, name, size, evidence,
                                   f"REINDEX INDEX CONCURRENTLY {qualified};"))
    return found


def _overflow(sequences: list[tuple]) -> list[HealthFinding]:
    found = []
    for schema, name, qualified, table, column, type_name, last, max_value, step in sequences:
        if last is None or step <= 0:
            continue  # never used, or counting down
        limit = min(max_value, _TYPE_MAX.get(type_name or "", max_value))
        if last < OVERFLOW_WARN * limit:
            continue
        feeds = f" feeding {table}.{column} ({type_name})" if table else ""
        evidence = (f"sequence {name}{feeds} is at {last:,} of {limit:,} ({100 * last / limit:.0f}% used);"
                    " inserts fail once it passes the limit")
        if table and type_name in ("smallint", "integer"):
            fix = (f"-- widen the column (rewrites {table}: plan a window), then the sequence:\n"
                   f"ALTER TABLE {schema}.{table} ALTER COLUMN {column} TYPE bigint;\n"
                   f"ALTER SEQUENCE {qualified} AS bigint;")
        else:
            fix = f"ALTER SEQUENCE {qualified} AS bigint MAXVALUE 9223372036854775807;"
        found.append(HealthFinding("overflow", schema, table or name, None, name, 0, evidence, fix))
    return found


def _low_selectivity(indexes: list[tuple]) -> list[HealthFinding]:
    from .audit import pretty_size

    found = []
    for (schema, table, name, qualified, pages, _, table_rows, _, _, unique, natts, expression, partial,
         column, n_distinct, common, freqs) in indexes:
        if unique or natts != 1 or expression or partial or n_distinct is None or column is None:
            continue
        if table_rows < LOW_SELECTIVITY_MIN_ROWS:
            continue
        distinct = n_distinct if n_distinct > 0 else -n_distinct * table_rows
        if distinct > LOW_DISTINCT:
            continue
        values = _array_text(common)
        top = f"; the most common, {values[0]!r}, is in {100 * freqs[0]:.0f}% of the rows" if values and freqs else ""
        evidence = (f"{name} ({column}) on {table}: {distinct:,.0f} distinct value(s) over {table_rows:,.0f} rows"
                    f"{top}; a lookup of a common value reads the table, not the index, so the index costs"
                    f" {pretty_size(pages * _PAGE)} and every write for little")
        fix = f"DROP INDEX CONCURRENTLY IF EXISTS {qualified};"
        if values and len(values) > 1 and freqs and freqs[0] >= 0.5:
            rare = ", ".join(f"'{v}'" for v in values[1:])
            fix = (f"-- or keep only the rare values: CREATE INDEX CONCURRENTLY ... ON {schema}.{table} ({column})"
                   f" WHERE {column} IN ({rare});\n" + fix)
        found.append(HealthFinding("low-selectivity", schema, table, name, name, pages * _PAGE, evidence, fix))
    return found


def _array_text(text: str | None) -> list[str]:
    """pg_stats' most_common_vals as text, '{a,b,"c d"}', into its values."""
    if not text:
        return []
    import csv

    return next(csv.reader([text.strip("{}")], quotechar='"', escapechar="\\"))

"""The indexes of a database as the catalog describes them, and which one already serves another.

One catalog query reads them all (`read_indexes`). `duplicate_pairs` and `covers` say when an index
adds nothing: the audit reports those as duplicate or redundant, and the advisor asks `served_by`
before it suggests a candidate, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ..migrate.state import TRACKING_TABLES

# Every user schema; never the system ones, nor dbtool's and yoyo's bookkeeping tables, nor tables
# an extension owns (its own upgrade scripts manage their indexes).
USER_RELATION = """n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND t.relname <> ALL(%(skip)s::text[])
  AND t.oid NOT IN (SELECT objid FROM pg_depend WHERE classid = 'pg_class'::regclass AND deptype = 'e')"""

INDEXES = f"""
SELECT i.indexrelid::int8, i.indrelid::int8, n.nspname, t.relname, c.relname,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       am.amname, i.indisunique, i.indisprimary, i.indisexclusion, i.indisvalid, i.indnullsnotdistinct,
       i.indnkeyatts, i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[], i.indoption::int2[],
       pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid),
       ARRAY(SELECT CASE WHEN u.attnum = 0 THEN pg_get_indexdef(i.indexrelid, u.n::int, true)
                         ELSE quote_ident(a.attname) END
             FROM unnest(i.indkey::int2[]) WITH ORDINALITY u(attnum, n)
             LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = u.attnum ORDER BY u.n),
       pg_relation_size(i.indexrelid),
       CASE WHEN c.relkind = 'I' THEN NULL ELSE pg_stat_get_numscans(i.indexrelid) END, k.conname, k.contype::text,
       c.relispartition, i.indexrelid IN (SELECT conindid FROM pg_constraint WHERE contype = 'f')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x')
WHERE {USER_RELATION}
ORDER BY n.nspname, t.relname, c.relname"""


@dataclass(frozen=True)
class AuditIndex:
    oid: int
    table_oid: int
    schema: str
    table: str
    name: str
    qualified: str  # quoted for SQL
    am: str
    unique: bool
    primary: bool
    exclusion: bool
    valid: bool
    nulls_not_distinct: bool
    key_count: int
    key: tuple[int, ...]  # attnums; 0 for an expression
    opclasses: tuple[int, ...]
    collations: tuple[int, ...]
    options: tuple[int, ...]
    expressions: str | None
    predicate: str | None
    columns: tuple[str, ...]  # key and INCLUDE columns as written
    size: int
    scans: int | None  # None for a partitioned index: its partitions count the scans
    constraint: str | None
    constraint_type: str | None  # p, u or x
    partition: bool
    referenced: bool  # a foreign key of another table depends on it: DROP INDEX would fail

    @property
    def enforces(self) -> bool:
        """Unique, primary key or exclusion: dropping it would drop a rule, not only speed."""
        return self.unique or self.primary or self.exclusion

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.columns[: self.key_count]

    def shape(self) -> str:
        where = f" WHERE {self.predicate}" if self.predicate else ""
        include = self.columns[self.key_count:]
        extra = f" INCLUDE ({', '.join(include)})" if include else ""
        return f"{self.am} ({', '.join(self.key_columns)}){extra}{where}"

    def describe(self) -> str:
        """The index as named in evidence, with the rule it backs if any."""
        rule = {"p": "PRIMARY KEY", "u": "UNIQUE constraint", "x": "EXCLUSION constraint"}.get(
            self.constraint_type or "")
        if rule:
            return f"{self.name} {self.shape()} (the index of {rule} {self.constraint})"
        return f"{'unique index ' if self.unique else ''}{self.name} {self.shape()}"


def index_of(row: tuple) -> AuditIndex:
    (oid, table_oid, schema, table, name, qualified, am, unique, primary, exclusion, valid, nnd, nkey,
     key, opclasses, collations, options, exprs, pred, columns, size, scans, conname, contype,
     partition, referenced) = row
    return AuditIndex(oid, table_oid, schema, table, name, qualified, am, unique, primary, exclusion, valid,
                 bool(nnd), nkey, tuple(key), tuple(opclasses), tuple(collations), tuple(options), exprs,
                 pred, tuple(columns), size, scans, conname, contype, partition, referenced)


def _same_columns(a: AuditIndex, b: AuditIndex, n: int) -> bool:
    """The first n key columns match: attributes, operator classes, collations and sort options."""
    return (a.key[:n] == b.key[:n] and a.opclasses[:n] == b.opclasses[:n]
            and a.collations[:n] == b.collations[:n] and a.options[:n] == b.options[:n])


def _rank(index: AuditIndex) -> tuple:
    """Which of equal indexes to keep: the primary key, one a foreign key uses, a constraint's, then by name."""
    return (not index.primary, not index.referenced, index.constraint is None, index.name)


def _equality_key(index: AuditIndex) -> tuple:
    """What two indexes must share to be duplicates: everything that matters to a query."""
    return (index.table_oid, index.am, index.key, index.key_count, index.opclasses, index.collations,
            index.options, index.expressions, index.predicate, index.unique, index.nulls_not_distinct)


def duplicate_pairs(indexes: list[AuditIndex]) -> list[tuple[AuditIndex, AuditIndex]]:
    """(the one to drop, the one to keep) for indexes equal in every respect that matters to a query."""
    groups: dict[tuple, list[AuditIndex]] = {}
    for index in indexes:
        if index.exclusion:  # the operators of an exclusion constraint are not in pg_index
            continue
        groups.setdefault(_equality_key(index), []).append(index)
    pairs = []
    for group in groups.values():
        keep, *others = sorted(group, key=_rank)
        for index in others:
            # Uniqueness is part of the group's key, so the one kept enforces what this one does; but a
            # primary key stays, and so does an index a foreign key depends on (DROP INDEX would fail).
            if index.primary or index.referenced:
                continue
            pairs.append((index, keep))
    return pairs


def covers(other: AuditIndex, index: AuditIndex) -> bool:
    """Whether `other` serves every query the plain index `index` does (a leading prefix of a btree, or an equal that enforces a rule)."""
    n = index.key_count
    return (other.am == index.am and other.predicate == index.predicate and not other.exclusion
            and (
                (index.am == "btree" and other.key_count > n and _same_columns(index, other, n))
                or (other.enforces and other.key_count == n and other.expressions is None
                    and _same_columns(index, other, n))
            )
            # INCLUDE columns of the plain index must be somewhere in the covering one.
            and set(index.key[n:]) <= set(other.key))


def served_by(index: AuditIndex, others: list[AuditIndex]) -> AuditIndex | None:
    """An index among `others` (same table, valid) that already gives what `index` would: its duplicate,
    or one it would be redundant with. The advisor asks this of each candidate it builds."""
    live = [o for o in others if o.valid and o.oid != index.oid and o.table_oid == index.table_oid]
    equal = [o for o in live if not o.exclusion and _equality_key(o)[1:] == _equality_key(index)[1:]]
    if equal:
        return min(equal, key=_rank)
    if index.enforces or index.expressions is not None:
        return None
    serving = [o for o in live if covers(o, index)]
    return min(serving, key=lambda o: (not o.enforces, o.key_count, o.name)) if serving else None


def read_indexes(conn: psycopg.Connection) -> list[AuditIndex]:
    """Every index of the user tables, as the audit reads them (one catalog query)."""
    return [index_of(row) for row in conn.execute(INDEXES, {"skip": list(TRACKING_TABLES)}).fetchall()]



"""Loading an empty table the way pg_restore does: rows first, then its secondary indexes and foreign
keys, all inside the caller's transaction, so a kill leaves the table as it was, indexes included.

Building an index once over all rows is much cheaper than maintaining it row by row (a GIN index on
a text search expression most of all), and adding a foreign key checks every row in one join
instead of one lookup per row. Tables that already hold rows keep their indexes: dropping them would
make the database worse for whoever reads it meanwhile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

# Index builds are sorts: give them memory for this transaction only.
MAINTENANCE_WORK_MEM = "512MB"

_INDEXES = """
SELECT c.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = to_regclass(%(table)s)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY c.relname"""
_FOREIGN_KEYS = """
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = to_regclass(%(table)s) AND contype = 'f' ORDER BY conname"""


@dataclass
class Deferred:
    """What was taken off an empty table before its rows went in, to be put back after."""

    table: str
    indexes: list[tuple[str, str]] = field(default_factory=list)  # (name, CREATE INDEX ...)
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # (name, FOREIGN KEY ...)


def defer(conn: psycopg.Connection, tables: list[str]) -> list[Deferred]:
    """Drop the secondary indexes and foreign keys of each of `tables` that is empty."""
    conn.execute(sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(MAINTENANCE_WORK_MEM)))
    deferred = []
    for table in dict.fromkeys(tables):
        ident = sql.Identifier(table)
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident)).fetchone()[0]:
            continue
        found = Deferred(table, conn.execute(_INDEXES, {"table": table}).fetchall(),
                         conn.execute(_FOREIGN_KEYS, {"table": table}).fetchall())
        for name, _ in found.foreign_keys:
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(ident, sql.Identifier(name)))
        for name, _ in found.indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        deferred.append(found)
    return deferred


def rebuild(conn: psycopg.Connection, deferred: list[Deferred]) -> dict[str, float]:
    """Put back what `defer` took, exactly as it was defined; the seconds it took per table."""
    seconds = {}
    for item in deferred:
        started = time.perf_counter()
        for _, definition in item.indexes:
            conn.execute(definition.encode())
        for name, definition in item.foreign_keys:
            conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(item.table), sql.Identifier(name), sql.SQL(definition)))
        seconds[item.table] = time.perf_counter() - started
    return seconds

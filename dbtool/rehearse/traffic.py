"""The load a rehearsal runs while it migrates: writers doing a service's ordinary writes (INSERT and
UPDATE by primary key) on the tables the pending migrations touch, and one reader, all derived from
the catalog, so no service is named here.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

# Types whose unique columns an INSERT can fill with a fresh value of its own.
_TEXT = {"text", "character varying", "citext"}


@dataclass
class TableWrites:
    """The two statements a writer sends to one table, and the keys it picks from."""

    table: str
    select: sql.Composed
    update: sql.Composed
    insert: sql.Composed | None  # None when a unique column cannot be made up: updates only
    keys: list = field(default_factory=list)


def _columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str, bool, bool]]:
    """(name, type, has a default, is generated or identity) of each column, in order."""
    return conn.execute(
        """SELECT a.attname, format_type(a.atttypid, NULL), a.atthasdef OR a.attidentity <> '',
                  a.attgenerated <> '' OR a.attidentity <> ''
           FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum""", (table,)).fetchall()


def _unique_columns(conn: psycopg.Connection, table: str) -> tuple[list[str], set[str]]:
    """(the primary key's columns, every column of a unique index or constraint)."""
    rows = conn.execute(
        """SELECT i.indisprimary, array_agg(a.attname ORDER BY a.attnum)
           FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
           WHERE i.indrelid = %s::regclass AND i.indisunique GROUP BY i.indexrelid, i.indisprimary""",
        (table,)).fetchall()
    primary = next((list(cols) for is_pk, cols in rows if is_pk), [])
    return primary, {c for _, cols in rows for c in cols}


def plan_writes(conn: psycopg.Connection, table: str, sample: int = 2000) -> TableWrites | None:
    """UPDATE ... WHERE pk = %s and INSERT ... SELECT a copy of a row with fresh unique values; None
    for a table without a one-column primary key."""
    primary, unique = _unique_columns(conn, table)
    if len(primary) != 1:
        return None
    pk = primary[0]
    columns = _columns(conn, table)
    t, key = sql.Identifier(table), sql.Identifier(pk)
    plain = [name for name, _, _, generated in columns if name not in unique and not generated]
    target = sql.Identifier(plain[0] if plain else pk)
    # Not SELECT *: a migration adding a column would change a prepared statement's result type.
    select = sql.SQL("SELECT {k}, {c} FROM {t} WHERE {k} = %s").format(t=t, c=target, k=key)
    update = sql.SQL("UPDATE {t} SET {c} = {c} WHERE {k} = %s").format(t=t, c=target, k=key)
    insert = _insert(t, key, pk, columns, unique)
    keys = [r[0] for r in conn.execute(sql.SQL("SELECT {k} FROM {t} LIMIT %s").format(k=key, t=t), (sample,))]
    return TableWrites(table, select, update, insert, keys) if keys else None


def _insert(t: sql.Identifier, key: sql.Identifier, pk: str, columns, unique: set[str]) -> sql.Composed | None:
    names, values = [], []
    for name, kind, has_default, generated in columns:
        if generated:
            continue
        column = sql.Identifier(name)
        if name == pk or name in unique:
            if name == pk and has_default:
                continue  # the key's own default, e.g. gen_random_uuid()
            if kind == "uuid":
                value = sql.SQL("gen_random_uuid()")
            elif kind in _TEXT:
                value = sql.SQL("{} || '.' || md5(random()::text)").format(column)
            else:
                return None  # a unique value we cannot make up: updates only
        else:
            value = column
        names.append(column)
        values.append(value)
    return sql.SQL("INSERT INTO {t} ({names}) SELECT {values} FROM {t} WHERE {k} = %s").format(
        t=t, names=sql.SQL(", ").join(names), values=sql.SQL(", ").join(values), k=key)


class Client(threading.Thread):
    """One connection in a loop; every statement's (start, end) is kept, from perf_counter."""

    def __init__(self, conninfo: str, plans: list[TableWrites], reader: bool, seed: int, pause: float = 0.002):
        super().__init__(daemon=True)
        self.conninfo, self.plans, self.reader, self.pause = conninfo, plans, reader, pause
        self.random = random.Random(seed)
        self.spans: list[tuple[float, float]] = []
        self.failed = 0
        self.last_start = 0.0  # of the latest statement, whatever its outcome
        self.stop = threading.Event()
        self.ready = threading.Event()
        self._no_insert: set[str] = set()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, application_name="dbtool rehearse load") as conn:
            self.ready.set()
            while not self.stop.is_set():
                plan = self.random.choice(self.plans)
                statement = self._statement(plan)
                started = self.last_start = time.perf_counter()
                try:
                    conn.execute(statement, (self.random.choice(plan.keys),), prepare=True)
                except psycopg.Error:
                    # A row the service itself would refuse (a full course, a CHECK): it did not
                    # happen, so it is not counted; that table gets updates only from now on.
                    self.failed += 1
                    self._no_insert.add(plan.table)
                else:
                    self.spans.append((started, time.perf_counter()))
                time.sleep(self.pause)

    def _statement(self, plan: TableWrites) -> sql.Composable:
        if self.reader:
            return plan.select
        if plan.insert is not None and plan.table not in self._no_insert and self.random.random() < 0.5:
            return plan.insert
        return plan.update

"""What a migration is seen to do while it runs: the locks its backend holds (sampled from pg_locks),
and, before against after, which tables and indexes got a new relfilenode (a rewrite) and the size.
"""

from __future__ import annotations

import threading

import psycopg

from ..migrate.state import TRACKING_TABLES

_HELD = """
SELECT DISTINCT l.mode, c.relname, c.relkind = 'i' FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = %s AND l.locktype = 'relation' AND l.granted
  AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
  AND NOT c.relname LIKE ANY(%s)
"""
# Every table and index of the touched tables: name -> relfilenode, and their total size.
_FILES = """
SELECT c.relname, c.relfilenode FROM pg_class c
WHERE c.oid = ANY(%(t)s::regclass[]) OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%(t)s::regclass[]))
"""
_SIZE = "SELECT coalesce(sum(pg_total_relation_size(t)), 0) FROM unnest(%s::regclass[]) AS t"


class LockSampler(threading.Thread):
    """Polls the locks one backend holds, every `interval` seconds, until stopped."""

    def __init__(self, conninfo: str, pid: int, interval: float = 0.01):
        super().__init__(daemon=True)
        self.conninfo, self.pid, self.interval = conninfo, pid, interval
        self.seen: set[tuple[str, str, bool]] = set()  # (mode, relation, is an index)
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, application_name="dbtool rehearse probe") as conn:
            while True:
                self.seen |= {(m, r, i) for m, r, i in conn.execute(_HELD, (self.pid, [f"{t}%" for t in TRACKING_TABLES]))}
                if self.stop.wait(self.interval):
                    return

    def locks(self) -> list[str]:
        """'ACCESS EXCLUSIVE on courses', the strongest first, tables before their indexes."""
        order = ["AccessExclusiveLock", "ExclusiveLock", "ShareRowExclusiveLock", "ShareLock",
                 "ShareUpdateExclusiveLock", "RowExclusiveLock", "RowShareLock", "AccessShareLock"]
        ranked = sorted(self.seen, key=lambda x: (order.index(x[0]) if x[0] in order else 99, x[2], x[1]))
        return [f"{_mode(m)} on {r}" for m, r, _ in ranked]


def _mode(mode: str) -> str:
    # AccessExclusiveLock -> ACCESS EXCLUSIVE, as the documentation and lock errors write it.
    words, word = [], ""
    for ch in mode.removesuffix("Lock"):
        if ch.isupper() and word:
            words.append(word)
            word = ""
        word += ch
    return " ".join(words + [word]).upper()


def files(conn: psycopg.Connection, tables: list[str]) -> dict[str, int]:
    present = [t for t in tables if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0]]
    return {name: int(node) for name, node in conn.execute(_FILES, {"t": present})}


def size(conn: psycopg.Connection, tables: list[str]) -> int:
    present = [t for t in tables if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0]]
    return int(conn.execute(_SIZE, (present,)).fetchone()[0])


def rewritten(before: dict[str, int], after: dict[str, int]) -> list[str]:
    """Tables and indexes that existed before and have another file now: rewritten or rebuilt."""
    return sorted(name for name, node in before.items() if name in after and after[name] != node)

"""yoyo's tracking tables on dbtool's own connection, dbtool's checksum table, and the session advisory lock.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import psycopg
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import DatabaseURI

from ..errors import DatabaseUnavailable
from ..roles.denied import explain
from .state import CHECKSUM_TABLE
from .tree import Migration

# Two int4 keys for pg_advisory_lock: "dbtl" and "migr" in ASCII. Per database, by nature.
LOCK_KEYS = (0x6462746C, 0x6D696772)


class Tracking(PostgresqlPsycopgBackend):
    """yoyo's backend on a connection dbtool opened (so it already holds our advisory lock)."""

    def __init__(self, conn: psycopg.Connection):
        self._given = conn
        uri = DatabaseURI("postgresql+psycopg", None, None, None, None, conn.info.dbname, {})
        super().__init__(uri, "_yoyo_migration")

    def connect(self, dburi):  # noqa: ANN001 - yoyo's signature
        return self._given

    def __exit__(self, *exc):  # the connection is dbtool's to close
        return None


def tracking(conn: psycopg.Connection) -> Tracking:
    backend = Tracking(conn)
    backend.create_lock_table()
    # yoyo's lock is a row that outlives a killed process; we hold the advisory lock, so any row
    # left there is stale and would only make yoyo's own schema upgrade wait and fail.
    try:
        conn.execute("DELETE FROM yoyo_lock")
    except psycopg.errors.InsufficientPrivilege as exc:  # the one write here: name DELETE, not a guess
        raise DatabaseUnavailable(explain(exc.diag.message_primary or "", "DELETE", conn.info.user)) from None
    backend.ensure_internal_schema_updated()
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} (
                migration_id TEXT PRIMARY KEY,
                up_sha256 TEXT NOT NULL,
                down_sha256 TEXT NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
    )
    return backend


@contextmanager
def advisory_lock(conn: psycopg.Connection, timeout: float, what: str) -> Iterator[None]:
    """Serialise dbtool runs per database; a session lock dies with its connection, even on SIGKILL."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEYS).fetchone()[0]:
        if time.monotonic() >= deadline:
            holder = conn.execute(
                """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND classid = %s AND objid = %s AND database = (SELECT oid FROM pg_database
                   WHERE datname = current_database())""",
                LOCK_KEYS,
            ).fetchone()
            pid = f" (server pid {holder[0]})" if holder else ""
            raise DatabaseUnavailable(
                f"{what}: another dbtool run holds the migration lock{pid} after {timeout:g}s;"
                " wait for it to finish or raise --lock-timeout"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)


def record_applied(backend: Tracking, m: Migration) -> None:
    backend.mark_one(m, log=False)
    backend.log_migration(m, "apply")
    record_checksum(backend.connection, m)


def record_checksum(conn: psycopg.Connection, m: Migration) -> None:
    conn.execute(
        f"""INSERT INTO {CHECKSUM_TABLE} (migration_id, up_sha256, down_sha256) VALUES (%s, %s, %s)
            ON CONFLICT (migration_id) DO UPDATE
            SET up_sha256 = EXCLUDED.up_sha256, down_sha256 = EXCLUDED.down_sha256, recorded_at = now()""",
        (m.id, m.up_checksum, m.down_checksum),
    )


def record_rolled_back(backend: Tracking, m: Migration) -> None:
    backend.unmark_one(m, log=False)
    backend.log_migration(m, "rollback")
    backend.connection.execute(f"DELETE FROM {CHECKSUM_TABLE} WHERE migration_id = %s", (m.id,))

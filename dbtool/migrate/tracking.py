"""yoyo's tracking tables on dbtool's own connection, dbtool's checksum table, and the session advisory lock.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from typing import Iterator

import psycopg
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import DatabaseURI

from .. import signals
from ..errors import DatabaseUnavailable, Refused
from ..roles.denied import explain
from ..server import roll_back
from ..signals import Interrupted
from .locks import MIGRATION_LOCK_KEYS
from .state import CHECKSUM_TABLE, tables_of
from .tree import Migration

# yoyo's tables at the schema version yoyo 9 writes (its internalmigrations.v2).
YOYO_TABLES = {"_yoyo_migration", "_yoyo_log", "_yoyo_version"}
YOYO_SCHEMA_VERSION = 2
_CREATE_CHECKSUM_TABLE = f"""CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} (
    migration_id TEXT PRIMARY KEY,
    up_sha256 TEXT NOT NULL,
    down_sha256 TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())"""

LOCK_KEYS = MIGRATION_LOCK_KEYS  # pg_advisory_lock's keys for a migration run


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
    """yoyo's backend on `conn`, its tables and dbtool's checksum table made or brought up to date."""
    backend = Tracking(conn)
    found = tables_of(conn)
    _refuse_damaged(conn, found)
    with _denied(conn, "SELECT"):
        current = YOYO_TABLES <= found and _yoyo_version(conn) == YOYO_SCHEMA_VERSION
    if current and CHECKSUM_TABLE in found:
        backend._internal_schema_updated = True  # what yoyo's own check would conclude
        return backend
    if not found & YOYO_TABLES:
        with _denied(conn, "CREATE"):
            _create_current(backend, found)
        return backend
    if not current:  # an older yoyo's tables: yoyo's own upgrade, under its lock row
        with _denied(conn, "CREATE"):
            backend.create_lock_table()
        with _denied(conn, "DELETE"):
            # yoyo's lock is a row that outlives a killed process; we hold the advisory lock, so any row
            # left there is stale and would only make yoyo's own schema upgrade wait and fail.
            conn.execute("DELETE FROM yoyo_lock")
        backend.ensure_internal_schema_updated()
    with _denied(conn, "CREATE"):
        conn.execute(_CREATE_CHECKSUM_TABLE)
    return backend


def keep_checksums(conn: psycopg.Connection) -> None:
    """A database yoyo alone migrated, with nothing to apply, gets dbtool's checksum table (empty:
    what yoyo applied has no record to compare with), as its first applied migration would give it.
    Until then each read of its state fails its one-round-trip try, an ERROR in the server's log.
    Skipped, leaving the no-op a no-op, where the role may not create in the schema, another run
    holds the migration lock (that run makes the table), or the server refuses (a standby)."""
    try:  # the privilege asked first: a refused CREATE would be one more ERROR in the log
        if not conn.execute("SELECT has_schema_privilege(current_schema(), 'CREATE')").fetchone()[0]:
            return
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEYS).fetchone()[0]:
            return
        try:
            conn.execute(_CREATE_CHECKSUM_TABLE)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)
    except psycopg.Error:
        pass


def _refuse_damaged(conn: psycopg.Connection, found: set[str]) -> None:
    """yoyo's tables come as none, _yoyo_migration alone (an older yoyo, upgraded by yoyo) or all
    three. Any other set was changed by hand, and yoyo's upgrade or the next record would fail
    half-way with "relation already exists" or "does not exist", which is no statement's fault."""
    have = found & YOYO_TABLES
    if have in (set(), {"_yoyo_migration"}, YOYO_TABLES):
        return
    missing = ", ".join(sorted(YOYO_TABLES - have))
    raise Refused(f"{conn.info.dbname}: yoyo's tracking tables are incomplete: {missing} missing beside"
                  f" {', '.join(sorted(have))} (dropped by hand?); restore {missing} from a backup, then run"
                  " again; nothing was changed")


@contextmanager
def _denied(conn: psycopg.Connection, privilege: str) -> Iterator[None]:
    """A missing privilege on yoyo's tables is the role's problem, named with the privilege to grant."""
    try:
        yield
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseUnavailable(explain(exc.diag.message_primary or "", privilege, conn.info.user)) from None


def _create_current(backend: Tracking, found: set[str]) -> None:
    """A database yoyo never touched gets its current tables directly, made by yoyo's own functions,
    in one transaction and one round trip (pipeline mode): what yoyo's upgrade ends with (it creates
    the version 1 table, then drops and re-creates it), without its five commits and its lock row
    (dbtool holds the advisory lock)."""
    from yoyo.internalmigrations import mark_schema_version, v2

    conn = backend.connection
    try:
        with conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
            conn.execute("BEGIN")
            if "yoyo_lock" not in found:
                backend.execute(backend.format_sql(backend.create_lock_table_sql))
            v2.create_migration_table(backend)
            v2.create_log_table(backend)
            v2.create_version_table(backend)
            mark_schema_version(backend, YOYO_SCHEMA_VERSION)
            conn.execute(_CREATE_CHECKSUM_TABLE)
            conn.execute("COMMIT")
    except BaseException:
        roll_back(conn)
        raise
    backend._internal_schema_updated = True


def _yoyo_version(conn: psycopg.Connection) -> int | None:
    return conn.execute("SELECT max(version) FROM _yoyo_version").fetchone()[0]


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
        for _ in range(round(delay / 0.05)):  # in slices: a signal cannot cut a thread's sleep short
            time.sleep(0.05)
            if signals.received():
                raise Interrupted(f"{what}: interrupted by {signals.name()} while waiting for another dbtool run's"
                                  " migration lock; nothing was applied; run the command again")
        delay = min(delay * 2, 1.0)
    try:
        yield
    except BaseException:
        # The error that ended the run is the one to report: an unlock refused on its way out (an
        # aborted transaction, a connection gone) must not replace it. The lock dies with the session.
        if not conn.closed:
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)
            except psycopg.Error:
                pass
        raise
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

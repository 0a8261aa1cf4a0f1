"""Applying and rolling back migrations on an open connection: one transaction for a migration and its record.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

import psycopg
from psycopg import sql

from ..errors import BadInput, Refused
from .guard import refuse_data_loss
from .locks import LockPolicy, OnRetry, Watcher, file_policy, is_lock_timeout, set_timeouts, watching, with_retries
from .state import (
    check_version,
    invalid_indexes,
    plan_down,
    plan_up,
    read_state,
    refuse_drift,
)
from .tracking import _record, _Tracking, _unrecord, advisory_lock, tracking
from .tree import Migration, Statement


def _run(conn: psycopg.Connection, path: Path, statements: list[Statement], transactional: bool) -> None:
    for st in statements:
        try:
            conn.execute(st.sql.encode("utf-8"))
        except psycopg.Error as exc:
            if is_lock_timeout(exc):
                raise  # the caller retries it (locks.with_retries)
            line = st.line
            pos = getattr(exc.diag, "statement_position", None)
            if pos:
                line += st.sql[: int(pos) - 1].count("\n")
            message = (exc.diag.message_primary or str(exc)).strip()
            if transactional:
                state = "nothing of this migration was applied"
            else:
                state = "statements before this one were committed (non-transactional migration)"
            raise BadInput(f"{path}:{line}: {message}; {state}; fix the statement and run again") from None


def apply_one(backend: _Tracking, m: Migration, policy: LockPolicy | None = None,
              on_retry: OnRetry | None = None) -> None:
    """Apply one migration; its changes and its record commit together, or neither does."""
    _step(backend, m, "up", _record, policy, on_retry)


def rollback_one(backend: _Tracking, m: Migration, policy: LockPolicy | None = None,
                 on_retry: OnRetry | None = None) -> None:
    _step(backend, m, "down", _unrecord, policy, on_retry)


def _step(backend: _Tracking, m: Migration, direction: str, bookkeeping: Callable[[_Tracking, Migration], None],
          policy: LockPolicy | None, on_retry: OnRetry | None) -> None:
    path, statements = m.path(direction), m.statements(direction)
    policy = file_policy(m.text(direction), path, policy or LockPolicy())
    conn = backend.connection
    verb = "migrate" if direction == "up" else "rollback"
    # What a DBA sees in pg_stat_activity while this migration runs or waits.
    conn.execute("SELECT set_config('application_name', %s, false)", (f"dbtool {verb} {m.service} {m.version:03d}",))
    with watching(conn, on_retry, m.id) as watch:
        if m.transactional(direction):
            def attempt() -> None:
                with backend.transaction():
                    set_timeouts(conn, policy, local=True)
                    _run(conn, path, statements, True)
                    bookkeeping(backend, m)

            with_retries(attempt, policy, watch, m.id, on_retry)
        else:
            _step_outside_transaction(backend, m, direction, bookkeeping, policy, watch, on_retry)


def _step_outside_transaction(backend: _Tracking, m: Migration, direction: str,
                              bookkeeping: Callable[[_Tracking, Migration], None], policy: LockPolicy,
                              watch: Watcher, on_retry: OnRetry | None) -> None:
    # Statements such as CREATE INDEX CONCURRENTLY cannot run in a transaction block: the
    # record can only follow them. Such migrations must be written to be re-runnable.
    conn, text, path = backend.connection, m.text(direction), m.path(direction)

    def drop_invalid() -> None:
        # A concurrent build that failed or was killed leaves an invalid index under its name, which
        # a re-run's IF NOT EXISTS would pass over. It serves no reads, so drop it and build again.
        for name in _invalid_indexes_named(conn, text):
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))

    set_timeouts(conn, policy, local=False)
    try:
        for st in m.statements(direction):
            def attempt(st: Statement = st) -> None:
                drop_invalid()  # also what a build cut short by its lock timeout left
                _run(conn, path, [st], False)

            with_retries(attempt, policy, watch, m.id, on_retry,
                         "the statements before this one were committed (non-transactional migration);"
                         " the migration was not recorded")
    finally:
        if not conn.closed:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
    left = _invalid_indexes_named(conn, text)
    if left:
        raise BadInput(f"{path}: index {left[0]} is invalid after this migration; drop it with DROP INDEX"
                       " CONCURRENTLY and run again; the migration was not recorded")
    with backend.transaction():
        bookkeeping(backend, m)


def _invalid_indexes_named(conn: psycopg.Connection, text: str) -> list[str]:
    return [i for i in invalid_indexes(conn) if re.search(rf"\b{re.escape(i)}\b", text)]


OnMigration = Callable[[Migration, float], None]


def migrate_connection(
    conn: psycopg.Connection, migrations: list[Migration], to: int | None = None,
    lock_timeout: float = 60.0, report: OnMigration | None = None,
    policy: LockPolicy | None = None, on_retry: OnRetry | None = None,
) -> list[Migration]:
    """Apply pending migrations on an open connection, under the advisory lock.

    `policy` bounds each migration's lock waits (locks.py); `on_retry` hears each retry line.
    """
    check_version(migrations, to, "--to")
    with advisory_lock(conn, lock_timeout, str(conn.info.dbname)):
        backend = tracking(conn)
        state = read_state(conn, migrations)
        refuse_drift(state)
        done = []
        for m in plan_up(state, to):
            started = time.perf_counter()
            apply_one(backend, m, policy, on_retry)
            done.append(m)
            if report:
                report(m, time.perf_counter() - started)
        return done


def rollback_connection(
    conn: psycopg.Connection, migrations: list[Migration], steps: int | None = None,
    to: int | None = None, everything: bool = False, force: bool = False,
    lock_timeout: float = 60.0, report: OnMigration | None = None,
    policy: LockPolicy | None = None, on_retry: OnRetry | None = None,
) -> list[Migration]:
    check_version(migrations, to, "--to")
    with advisory_lock(conn, lock_timeout, str(conn.info.dbname)):
        backend = tracking(conn)
        state = read_state(conn, migrations)
        refuse_drift(state)
        plan = plan_down(state, steps, to, everything)
        for m in plan:
            if m.irreversible:
                raise Refused(f"{m.down}: marked irreversible; this migration cannot be rolled back")
        if not force:
            refuse_data_loss(conn, plan)
        done = []
        for m in plan:
            started = time.perf_counter()
            rollback_one(backend, m, policy, on_retry)
            done.append(m)
            if report:
                report(m, time.perf_counter() - started)
        return done

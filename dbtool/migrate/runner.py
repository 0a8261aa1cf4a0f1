"""Applying and rolling back migrations on an open connection: one transaction for a migration and its record.
"""

from __future__ import annotations

import re
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import psycopg
from psycopg import sql
from psycopg.pq import ExecStatus, TransactionStatus

from .. import signals
from ..errors import BadInput, DatabaseUnavailable, DbtoolError, Refused, connection_ended, server_condition
from ..roles.denied import explain, privilege_of
from ..server import roll_back
from ..signals import Interrupted
from .guard import refuse_data_loss
from .locks import (
    LockPolicy,
    OnRetry,
    file_policy,
    is_lock_timeout,
    timeouts_sql,
    watching,
    with_retries,
)
from .queue import Look
from .sqltext import Statement, builds_concurrently, running_after, transaction_control
from .state import (
    TRACKING_TABLES,
    check_version,
    invalid_indexes,
    pending_up,
    plan_down,
    plan_up,
    read_state,
    refuse_drift,
)
from .tree import Migration

if TYPE_CHECKING:  # yoyo loads only when something is to be applied or rolled back
    from .blockers import Watcher
    from .tracking import Tracking


class _Counted(psycopg.Cursor):
    """A cursor that keeps how many statements of its message completed before one failed. An error
    in a file sent whole often has no position (a missing privilege, a row a new constraint rejects,
    a cancel); the count still names the statement. Should psycopg stop calling this hook, the
    count stays 0 and such errors name the file without a line."""

    completed = 0

    def _check_results(self, results: list) -> None:  # psycopg's check of every result of a message
        self.completed = next((i for i, r in enumerate(results) if r.status == ExecStatus.FATAL_ERROR),
                              len(results))
        super()._check_results(results)


def _run(conn: psycopg.Connection, path: Path, statements: list[Statement], transactional: bool) -> None:
    for n, st in enumerate(statements):
        if signals.received():
            raise Interrupted(f"{_at(path, st.line)}: interrupted by {signals.name()} before"
                              f" {'this statement' if st.line else 'it started'};"
                              f" {_left(transactional, n)}; run the command again to finish")
        cursor = _Counted(conn)
        try:
            cursor.execute(st.sql.encode("utf-8"))
            if transactional and conn.info.transaction_status == TransactionStatus.IDLE:
                _ended_transaction(path, statements, n)
        except psycopg.Error as exc:
            if is_lock_timeout(exc):
                raise  # the caller retries it (locks.with_retries)
            failed = st if st.line else (running_after(st.sql, cursor.completed) or st)
            line = failed.line
            pos = getattr(exc.diag, "statement_position", None)
            if pos:  # the server's position is in the text sent: this statement, or the whole file
                line = max(st.line, 1) + st.sql[: int(pos) - 1].count("\n")
            where = _at(path, line)
            message = (exc.diag.message_primary or str(exc)).strip()
            rolling_back = path.name.endswith(".down.sql")
            if transactional and rolling_back:
                state = "nothing of this rollback took effect; the migration stays applied"
            elif transactional:
                state = "nothing of this migration was applied"
            else:
                state = "statements before this one were committed (non-transactional migration)"
            if signals.received():
                left = _left(transactional, n)
                if not transactional and builds_concurrently(failed.sql):
                    left = ("the cancelled concurrent build left an invalid index, which the rerun drops and"
                            " builds again; the migration is not recorded, the statements before it stay done")
                raise Interrupted(f"{where}: interrupted by {signals.name()}; the running statement was"
                                  f" cancelled; {left}; run the command again to finish") from None
            if _server_gone(exc):
                raise DatabaseUnavailable(f"{where}: the server ended the connection while this statement"
                                          f" ran ({message}); {state}; run again once it is back") from None
            if exc.sqlstate == "42501":  # not the statement's fault: the role lacks a privilege
                what = explain(message, privilege_of(failed.sql), conn.info.user)
                raise DatabaseUnavailable(f"{where}: {what}; {state}") from None
            condition = server_condition(exc)
            if condition:  # read-only database, timeout, deadlock, disk full: not the statement's fault
                raise DatabaseUnavailable(f"{where}: {message}: {condition}; {state}; then run again") from None
            raise BadInput(f"{where}: {message}; {state}; fix the statement and run again") from None


def _at(path: Path, line: int) -> str:
    """path:line, or the path alone when the line is not known (line 0: a file sent whole)."""
    return f"{path}:{line}" if line else str(path)


def _left(transactional: bool, n: int) -> str:
    """Where an interrupted migration left its database, truthfully for both kinds of migration."""
    if transactional or n == 0:
        return ("this migration's step was rolled back: nothing of it took effect and nothing was recorded;"
                " the steps before it stay done")
    return (f"its first {n} statement{'s' if n != 1 else ''} stay committed (a non-transactional migration)"
            " and it is not recorded; a rerun runs it again from the top")


def _server_gone(exc: psycopg.Error) -> bool:
    """Terminated, shut down or cut off, or lost before any SQLSTATE came: the server's problem, not the file's."""
    return connection_ended(exc) or (isinstance(exc, psycopg.OperationalError) and not exc.sqlstate)


def _ended_transaction(path: Path, statements: list[Statement], n: int) -> None:
    """A statement ended the migration's transaction, which validate's parse did not foresee: stop
    at once, record nothing, and say exactly what the server now holds."""
    st = statements[n]
    if transaction_control(st.sql) == "rollback":
        state = "it rolled back the statements before it, so nothing of this migration was applied"
    else:
        lines = ", ".join(str(s.line) for s in statements[: n + 1])
        state = (f"the statements up to it were committed (lines {lines}) and the rest did not run; undo those"
                 " by hand")
    raise BadInput(f"{path}:{st.line}: this statement ended the migration's transaction; {state}; the"
                   " migration was not recorded; split it in two or mark it '-- transactional: false'")


def apply_one(backend: Tracking, m: Migration, policy: LockPolicy | None = None,
              on_retry: OnRetry | None = None, watch: Watcher | None = None) -> None:
    """Apply one migration; its changes and its record commit together, or neither does."""
    from .tracking import record_applied

    _step(backend, m, "up", record_applied, policy, on_retry, watch)


def rollback_one(backend: Tracking, m: Migration, policy: LockPolicy | None = None,
                 on_retry: OnRetry | None = None, watch: Watcher | None = None) -> None:
    from .tracking import record_rolled_back

    _step(backend, m, "down", record_rolled_back, policy, on_retry, watch)


def _step(backend: Tracking, m: Migration, direction: str, bookkeeping: Callable[[Tracking, Migration], None],
          policy: LockPolicy | None, on_retry: OnRetry | None, watch: Watcher | None) -> None:
    if watch is None:
        with watching(backend.connection, on_retry) as watch:
            return _step(backend, m, direction, bookkeeping, policy, on_retry, watch)
    path = m.path(direction)
    policy = file_policy(m.text(direction), path, policy or LockPolicy())
    conn = backend.connection
    verb = "migrate" if direction == "up" else "rollback"
    watch.what = m.id
    transactional, statements = m.transactional(direction), m.batches(direction)
    # The first attempt's look at pg_locks: at the whole file in a transaction, else at its first statement.
    look = Look(conn, "\n;\n".join(st.sql for st in statements) if transactional else
                (statements[0].sql if statements else ""), policy)
    # What a DBA sees in pg_stat_activity while this migration runs or waits; and the search_path
    # before it: a migration may change the session's (every pg_dump file empties it with
    # set_config(..., false)), and dbtool's bookkeeping and the next migration need the one it had.
    # With the first look, in one round trip.
    with conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
        named = conn.execute("SELECT current_setting('search_path'), set_config('application_name', %s, false)",
                             (f"dbtool {verb} {m.service} {m.version:03d}",))
        look.prefetch()
    search_path = named.fetchone()[0]
    changed = True  # unless the step shows otherwise, put the search_path back
    try:
        if transactional:
            changed = _step_in_transaction(backend, m, path, statements, bookkeeping, search_path,
                                           policy, watch, on_retry, look)
        else:
            changed = _step_outside_transaction(backend, m, direction, statements, bookkeeping, policy, watch,
                                                on_retry, search_path, look)
    finally:
        if changed and not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            try:
                conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
            except psycopg.Error:
                pass  # the connection is going; the error that ended the step is the one to report


def _step_in_transaction(backend: Tracking, m: Migration, path: Path, statements: list[Statement],
                         bookkeeping: Callable[[Tracking, Migration], None], search_path: str,
                         policy: LockPolicy, watch: Watcher, on_retry: OnRetry | None, look: Look) -> bool:
    """One transaction for the migration and its record, in three round trips: BEGIN with the
    timeouts, the file (whole when it can be), the record with COMMIT. Whether the migration changed
    the session's search_path (then the caller puts it back)."""
    conn = backend.connection
    failed: list[DbtoolError] = []  # what _run raised: the ROLLBACK on the way out may fail too
    changed = [True]

    def attempt() -> None:
        failed.clear()
        try:
            conn.execute("BEGIN; " + timeouts_sql(policy, local=True))  # inside: a refused SET rolls back too
            try:
                _run(conn, path, statements, True)
            except DbtoolError as exc:
                failed.append(exc)
                raise
            changed[0] = _record(backend, m, bookkeeping, search_path, begin=False,
                                 left="nothing of this migration was applied")
        except BaseException:
            roll_back(conn)
            raise

    try:
        with_retries(attempt, policy, watch, m.id, on_retry, look=look)
    except psycopg.Error as exc:  # after the statements: at COMMIT, or in the bookkeeping
        if failed:
            raise failed[0] from None
        message = (exc.diag.message_primary or str(exc)).strip()
        if _server_gone(exc):
            raise DatabaseUnavailable(f"{path}: the server ended the connection at COMMIT ({message});"
                                      " run again: the migration is applied and recorded, or neither") from None
        if isinstance(exc, psycopg.errors.IntegrityError):
            raise BadInput(f"{path}: refused at COMMIT: {message} (a deferred constraint); nothing of"
                           " this migration was applied; fix the migration and run again") from None
        raise
    return changed[0]


def _record(backend: Tracking, m: Migration, bookkeeping: Callable[[Tracking, Migration], None],
            search_path: str, begin: bool, left: str) -> bool:
    """yoyo's rows and dbtool's checksum under the search_path the run started with, then COMMIT:
    one round trip in pipeline mode. Whether the session's search_path differs from that one."""
    conn = backend.connection
    try:
        with conn.pipeline() if psycopg.Pipeline.is_supported() else nullcontext():
            if begin:
                conn.execute("BEGIN")
            now = conn.execute("SELECT current_setting('search_path')")
            conn.execute("SELECT set_config('search_path', %s, true)", (search_path,))
            bookkeeping(backend, m)
            conn.execute("COMMIT")
    except psycopg.Error as exc:
        roll_back(conn)
        table = getattr(exc.diag, "table_name", None)
        if table in TRACKING_TABLES and exc.sqlstate != "42501":  # not the migration's fault
            raise Refused(f"{m.id}: the tracking table {table} refused its record"
                          f" ({(exc.diag.message_primary or '').strip()}); {left}; the table was changed by"
                          " hand: restore the definition yoyo and dbtool give it, then run again") from None
        raise
    except BaseException:
        roll_back(conn)
        raise
    return now.fetchone()[0] != search_path


def _step_outside_transaction(backend: Tracking, m: Migration, direction: str, statements: list[Statement],
                              bookkeeping: Callable[[Tracking, Migration], None], policy: LockPolicy,
                              watch: Watcher, on_retry: OnRetry | None, search_path: str, look: Look) -> bool:
    """Statements such as CREATE INDEX CONCURRENTLY cannot run in a transaction block: the record
    can only follow them. Such migrations must be written to be re-runnable. Whether the migration
    changed the session's search_path (then the caller puts it back)."""
    conn, text, path = backend.connection, m.text(direction), m.path(direction)
    # A concurrent build that failed or was killed leaves an invalid index under its name, which a
    # re-run's IF NOT EXISTS would pass over. It serves no reads, so it is dropped and built again:
    # what an earlier run left, read in one round trip with setting the session's timeouts, and what
    # an attempt cut short by its lock timeout left, read before each retry. A statement that
    # succeeded left none, so the next statement's first attempt does not look.
    left_before = _invalid_indexes_named(conn, text, then=timeouts_sql(policy, local=False))
    done = False
    try:
        for n, st in enumerate(statements):
            known: list[str] | None = left_before if n == 0 else []  # a first attempt's; a retry reads

            def attempt(st: Statement = st) -> None:
                nonlocal known
                for name in _invalid_indexes_named(conn, text) if known is None else known:
                    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
                known = None
                _run(conn, path, [st], False)

            with_retries(attempt, policy, watch, m.id, on_retry,
                         "the statements before this one were committed (non-transactional migration);"
                         " the migration was not recorded", look=look if n == 0 else Look(conn, st.sql, policy))
        # Whether one is left, with the session's timeouts put back, in one round trip.
        left = _invalid_indexes_named(conn, text, then=_RESET_TIMEOUTS)
        done = True
    finally:
        if not done and not conn.closed:
            conn.execute(_RESET_TIMEOUTS)
    if left:
        raise BadInput(f"{path}: index {left[0]} is invalid after this migration; drop it with DROP INDEX"
                       " CONCURRENTLY and run again; the migration was not recorded")
    return _record(backend, m, bookkeeping, search_path, begin=True,
                   left="its statements ran (a non-transactional migration) but it was not recorded")


_RESET_TIMEOUTS = "RESET lock_timeout; RESET statement_timeout"


def _invalid_indexes_named(conn: psycopg.Connection, text: str, then: str = "") -> list[str]:
    return [i for i in invalid_indexes(conn, then) if re.search(rf"\b{re.escape(i)}\b", text)]


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
    if not pending_up(conn, migrations, to)[0]:
        return []
    return apply_pending(conn, migrations, to, lock_timeout, report, policy, on_retry)


def apply_pending(
    conn: psycopg.Connection, migrations: list[Migration], to: int | None = None,
    lock_timeout: float = 60.0, report: OnMigration | None = None,
    policy: LockPolicy | None = None, on_retry: OnRetry | None = None,
) -> list[Migration]:
    """migrate_connection once `pending_up` has found something to do: the state is read again under
    the lock (another run may have applied some meanwhile) and what is still pending is applied."""
    from .tracking import advisory_lock, tracking

    with advisory_lock(conn, lock_timeout, str(conn.info.dbname)), watching(conn, on_retry) as watch:
        backend = tracking(conn)
        state = read_state(conn, migrations)
        refuse_drift(state)
        done = []
        for m in plan_up(state, to):
            if signals.received():
                raise Interrupted(f"{conn.info.dbname}: interrupted by {signals.name()} before {m.id};"
                                  f" {len(done)} applied in this run, the rest pending; run the command again")
            started = time.perf_counter()
            apply_one(backend, m, policy, on_retry, watch)
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
    from .tracking import advisory_lock, tracking

    with advisory_lock(conn, lock_timeout, str(conn.info.dbname)), watching(conn, on_retry) as watch:
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
            rollback_one(backend, m, policy, on_retry, watch)
            done.append(m)
            if report:
                report(m, time.perf_counter() - started)
        return done

"""Bounded lock waits: lock_timeout per migration, retries that let the queue drain, blockers named."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import add_migration, connect

from dbtool.migrate.locks import LockPolicy, file_policy, parse_duration
from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.state import read_state
from dbtool.migrate.tree import load_tree


@pytest.fixture
def service(project):
    return project / "schemas" / "identity"


def columns(conn, table):
    return {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))}


@pytest.mark.parametrize("text, seconds", [("300ms", 0.3), ("2s", 2.0), ("10min", 600.0), ("1h", 3600.0),
                                           ("250", 0.25), (" 1.5 s ", 1.5), ("0", 0.0)])
def test_durations_read_as_postgresql_writes_them(text, seconds):
    assert parse_duration(text, "x") == pytest.approx(seconds)


def test_file_directives_override_the_run(tmp_path):
    text = "-- lock-timeout: 300ms\n-- retries: 20\n-- statement-timeout: 10min\nALTER TABLE t ADD c int;\n" \
           "-- lock-timeout: 9s\n"
    policy = file_policy(text, tmp_path / "f.sql", LockPolicy())
    assert (policy.lock_timeout, policy.retries, policy.statement_timeout) == (0.3, 20, 600.0)
    assert "lock-timeout" in policy.where  # the fix names the file's directive, not the option


@pytest.mark.parametrize("args, named", [
    (["--ddl-lock-timeout", "5 parsecs"], "--ddl-lock-timeout"),
    (["--ddl-lock-timeout", "-1s"], "--ddl-lock-timeout"),
    (["--statement-timeout", "soon"], "--statement-timeout"),
    (["--ddl-retries", "-1"], "--ddl-retries"),
])
def test_bad_options_are_one_line_and_exit_2(cli, service, server, new_db, args, named):
    db = new_db()
    with connect(db) as conn:
        conn.execute("SELECT 1")
    result = cli("migrate", "identity", "--schemas-dir", service.parent, *args, env={"IDENTITY_DATABASE_URL": db})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with connect(db) as conn:  # nothing created
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


def test_a_bad_directive_fails_validate_before_any_database(cli, service, db):
    add_migration(service, "add_users_notes", "-- lock-timeout: quick\nALTER TABLE users ADD COLUMN notes text;\n",
                  "ALTER TABLE users DROP COLUMN notes;\n")
    result = cli("migrate", "identity", "--schemas-dir", service.parent, env={"IDENTITY_DATABASE_URL": db})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "_add_users_notes.sql: -- lock-timeout: 'quick' is not a duration" in result.stderr
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0


class Writer(threading.Thread):
    """UPDATE by primary key in a loop; keeps the worst latency."""

    def __init__(self, conninfo: str, row_id):
        super().__init__(daemon=True)
        self.conninfo, self.row_id, self.worst, self.writes = conninfo, row_id, 0.0, 0
        self.done = threading.Event()

    def run(self) -> None:
        with connect(self.conninfo) as conn:
            while not self.done.is_set():
                started = time.perf_counter()
                conn.execute("UPDATE users SET name = name WHERE id = %s", (self.row_id,))
                self.worst = max(self.worst, time.perf_counter() - started)
                self.writes += 1
                time.sleep(0.005)


def _prepared(service, db):
    tree = load_tree(service)
    with connect(db) as conn:
        migrate_connection(conn, tree)
        return conn.execute("INSERT INTO users (email, password_hash, role, name) VALUES"
                            " ('a@x.io', 'h', 'student', 'A') RETURNING id").fetchone()[0]


def _migrate_behind_a_report(cli, service, db, timeout, age, hold, migrator=None):
    """Migrate while a 'nightly report' (a superuser's) holds ACCESS SHARE on users: it began `age`
    seconds before the run and ends `hold` seconds into it. A writer updates users by primary key
    throughout. `migrator`: the conninfo that migrates and writes, if not the superuser's `db`."""
    migrator = migrator or db
    row_id = _prepared(service, migrator)
    add_migration(service, "add_users_notes", "ALTER TABLE users ADD COLUMN notes text;\n",
                  "ALTER TABLE users DROP COLUMN notes;\n")
    blocker = connect(db)
    pid = blocker.info.backend_pid
    blocker.execute("SELECT set_config('application_name', 'nightly report', false)")
    blocker.execute("BEGIN")
    blocker.execute("SELECT count(*) FROM users")  # ACCESS SHARE until the transaction ends
    writer = Writer(migrator, row_id)
    writer.start()
    time.sleep(age)
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(result=cli(
        "migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", timeout,
        "--ddl-retries", "30", env={"IDENTITY_DATABASE_URL": migrator})))
    run.start()
    seen_as, queued = set(), set()
    with connect(db) as watch:
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            seen_as |= {r[0] for r in watch.execute(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'dbtool migrate%'")}
            # Who waits for a lock on users, sampled far more often than any wait dbtool allows lasts.
            queued |= {(r[0], r[1]) for r in watch.execute(
                "SELECT a.application_name, l.mode FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE NOT l.granted AND l.relation = 'users'::regclass")}
            time.sleep(0.02)
    blocker.execute("ROLLBACK")
    run.join(30)
    writer.done.set()
    writer.join()
    blocker.close()
    result = outcome["result"]
    assert result.exit_code == 0, result.stderr
    assert "applied 005_add_users_notes" in result.stdout
    with connect(db) as conn:
        assert "notes" in columns(conn, "users")
    assert writer.writes > 20
    return result, pid, writer, seen_as, queued


def test_a_young_blocker_costs_one_lock_timeout_then_is_waited_out_without_queueing(cli, service, db):
    # The report's transaction is young when the run starts: the ALTER asks for its lock and waits
    # one lock timeout, with the writer queued behind it. By the retry the report has shown it is
    # long, so the ALTER does not queue again: it waits for the report to end, then goes at once.
    result, pid, writer, seen_as, queued = _migrate_behind_a_report(cli, service, db, "1s", age=0.0, hold=3.0)
    lines = [x for x in result.stdout.splitlines() if "retry " in x]
    assert "lock timeout after 1s waiting for users held by pid" in lines[0]
    assert f"users held by pid {pid} (nightly report, idle in transaction" in lines[0]
    assert "SELECT count(*) FROM users" in lines[0] and "retry 1/30 in" in lines[0]
    assert len(lines) >= 2 and all("not queuing behind users held by pid" in x for x in lines[1:]), lines
    assert "dbtool migrate identity 005" in seen_as
    assert ("dbtool migrate identity 005", "AccessExclusiveLock") in queued, queued  # the one attempt that queued
    # The writer queued behind the waiting ALTER for one lock timeout, not the report's three seconds.
    assert writer.worst < 1.0 + 0.35, writer.worst


def test_an_old_blocker_is_never_queued_behind_so_writers_never_stall(cli, service, db):
    # The report has been open 0.5 s, longer than a quarter of the 200 ms lock timeout: the ALTER
    # never asks for its lock while the report runs, so the writer never waits behind it.
    result, pid, writer, _, queued = _migrate_behind_a_report(cli, service, db, "200ms", age=0.5, hold=1.5)
    lines = [x for x in result.stdout.splitlines() if "retry " in x]
    assert lines and all("not queuing behind users held by pid" in x for x in lines), lines
    assert "open longer than 50ms; retry 1/30 in" in lines[0] and "or once it ends" in lines[0]
    assert "lock timeout after" not in result.stdout
    # Nobody ever waited for a lock on users: not the ALTER, so not the writer behind it. (Seen by the
    # server, not by the writer's latency, which a busy machine stretches without any lock involved.)
    assert not queued, queued


def test_attempts_run_out_exit_3_keeping_the_earlier_migrations(cli, service, db):
    _prepared(service, db)
    add_migration(service, "create_notes_table", "CREATE TABLE notes (id uuid PRIMARY KEY);\n", "DROP TABLE notes;\n")
    add_migration(service, "add_users_notes", "ALTER TABLE users ADD COLUMN notes text;\n",
                  "ALTER TABLE users DROP COLUMN notes;\n")
    with connect(db) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT count(*) FROM users")
        time.sleep(0.1)  # older than a quarter of the lock timeout: every attempt only looks
        started = time.monotonic()
        result = cli("migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", "100ms",
                     "--ddl-retries", "2", env={"IDENTITY_DATABASE_URL": db})
        elapsed = time.monotonic() - started
        pid = blocker.info.backend_pid
        blocker.execute("ROLLBACK")
    assert result.exit_code == 3 and isinstance(result.exception, SystemExit)
    assert f"006_add_users_notes: could not get its lock within 100ms in 3 attempt(s): waiting for users held by" \
           f" pid {pid}" in result.stderr
    assert "raise --ddl-lock-timeout or --ddl-retries" in result.stderr
    assert len(result.stdout.split("retry ")) == 3  # two retry lines
    assert elapsed < 10
    with connect(db) as conn:
        state = read_state(conn, load_tree(service))
        assert "005_create_notes_table" in state.applied and "006_add_users_notes" not in state.applied
        assert "notes" not in columns(conn, "users")
        assert conn.execute("SELECT to_regclass('notes')").fetchone()[0] == "notes"
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0


def test_a_file_directive_bounds_its_own_wait(cli, service, db):
    _prepared(service, db)
    add_migration(service, "add_users_notes",
                  "-- lock-timeout: 50ms\n-- retries: 0\nALTER TABLE users ADD COLUMN notes text;\n",
                  "ALTER TABLE users DROP COLUMN notes;\n")
    with connect(db) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT count(*) FROM users")
        result = cli("migrate", "identity", "--schemas-dir", service.parent, env={"IDENTITY_DATABASE_URL": db})
        blocker.execute("ROLLBACK")
    assert result.exit_code == 3
    assert "within 50ms in 1 attempt(s)" in result.stderr
    assert "005_add_users_notes.sql: -- lock-timeout" in result.stderr  # the setting to raise


def _build_behind_a_writer(cli, service, db, timeout, hold):
    """Migrate a concurrent index build while a transaction that updated a row of users stays open
    for `hold` seconds (a build waits for every writing transaction); the result and the writer's pid."""
    row_id = _prepared(service, db)
    add_migration(service, "add_users_name_index",
                  "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_name ON users (name);\n",
                  "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_users_name;\n")
    blocker = connect(db)
    pid = blocker.info.backend_pid
    blocker.execute("BEGIN")
    blocker.execute("UPDATE users SET name = 'B' WHERE id = %s", (row_id,))  # an open writing transaction
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(result=cli(
        "migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", timeout,
        env={"IDENTITY_DATABASE_URL": db})))
    run.start()
    time.sleep(hold)
    blocker.execute("COMMIT")
    run.join(30)
    blocker.close()
    result = outcome["result"]
    assert result.exit_code == 0, result.stderr
    return result, pid


def test_a_concurrent_build_waiting_for_a_writer_is_retried(cli, service, db):
    result, pid = _build_behind_a_writer(cli, service, db, "200ms", hold=1.0)
    assert "lock timeout after 200ms" in result.stdout and f"pid {pid}" in result.stdout
    with connect(db) as conn:
        valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_users_name'::regclass")
        assert valid.fetchone()[0] is True


def test_a_long_wait_is_reported_while_it_lasts(cli, service, db):
    """With no lock timeout a concurrent build waits for an old transaction; dbtool says on what."""
    result, pid = _build_behind_a_writer(cli, service, db, "0", hold=3.0)
    waits = [x for x in result.stdout.splitlines() if "005_add_users_name_index: waiting" in x]
    assert waits and f"held by pid {pid}" in waits[0] and "lock timeout" not in result.stdout


def test_blocker_queries_never_show_a_password():
    from dbtool.migrate.blockers import redacted_query

    shown = redacted_query("ALTER ROLE app PASSWORD 'hunter2'", ["s3cret"])
    assert "hunter2" not in shown and "PASSWORD ***" in shown
    assert redacted_query("SELECT 's3cret'", ["s3cret"]) == "SELECT '***'"


@pytest.mark.parametrize("statement, wanted", [
    ("ALTER TABLE courses ADD COLUMN notes text", {'"courses"': "AccessExclusiveLock"}),
    ("CREATE INDEX i ON public.courses (price)", {'"public"."courses"': "ShareLock"}),
    ("CREATE INDEX CONCURRENTLY i ON courses (price)", {'"courses"': "ShareUpdateExclusiveLock"}),
    ("ALTER TABLE enrollments VALIDATE CONSTRAINT fk", {'"enrollments"': "ShareUpdateExclusiveLock"}),
    ("ALTER TABLE e ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES courses (id) NOT VALID",
     {'"e"': "ShareRowExclusiveLock", '"courses"': "ShareRowExclusiveLock"}),
    ("INSERT INTO archive SELECT * FROM courses", {'"archive"': "RowExclusiveLock", '"courses"': "AccessShareLock"}),
    ("DROP INDEX CONCURRENTLY idx_a", {'"idx_a"': "ShareUpdateExclusiveLock"}),
    ("TRUNCATE a, b", {'"a"': "AccessExclusiveLock", '"b"': "AccessExclusiveLock"}),
    ("CREATE TRIGGER t BEFORE UPDATE ON courses FOR EACH ROW EXECUTE FUNCTION f()",
     {'"courses"': "ShareRowExclusiveLock"}),
])
def test_the_locks_a_statement_asks_for_are_read_from_its_parse(statement, wanted):
    from dbtool.migrate.queue import needs

    assert needs(statement) == wanted


def test_a_long_reader_does_not_hold_back_a_build_it_does_not_conflict_with(cli, service, db):
    # A plain CREATE INDEX asks for SHARE, which ACCESS SHARE does not block: no waiting for the report.
    _prepared(service, db)
    add_migration(service, "add_users_name_index", "CREATE INDEX idx_users_name ON users (name);\n",
                  "DROP INDEX idx_users_name;\n")
    with connect(db) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT count(*) FROM users")
        time.sleep(0.3)
        started = time.monotonic()
        result = cli("migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", "200ms",
                     env={"IDENTITY_DATABASE_URL": db})
        elapsed = time.monotonic() - started
        blocker.execute("ROLLBACK")
    assert result.exit_code == 0, result.stderr
    assert "retry " not in result.stdout and elapsed < 2.0


def test_the_lock_watcher_connects_only_for_an_attempt_that_lasts(db):
    # Most migrations take milliseconds: the run then never opens its second connection.
    from dbtool.migrate.blockers import Watcher

    with connect(db) as conn:
        with Watcher(conn, after=0.05) as watcher:
            for _ in range(20):  # back to back for 0.3 s, as a run of quick migrations is, none lasting 50 ms
                with watcher.attempt():
                    conn.execute("SELECT pg_sleep(0.015)")
            assert watcher._conn is None
            with watcher.attempt():
                time.sleep(0.3)
            assert watcher._conn is not None and not watcher._conn.closed
            seen = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbtool lock watcher'"
                                " AND datname = current_database()").fetchone()[0]
            assert seen == 1
        assert watcher._conn.closed


def test_a_migrator_that_cannot_see_other_sessions_stops_queueing_after_one_timeout(cli, service, db):
    # Least privilege: the migrating role sees no xact_start of another role's session. dbtool times
    # how long it has itself seen the report hold its lock, so it queues behind it once at most.
    import uuid

    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    role = f"blind_migrator_{uuid.uuid4().hex[:8]}"
    with connect(db) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    migrator = make_conninfo(db, user=role)
    try:
        with connect(migrator) as conn:
            seen = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE xact_start IS NOT NULL"
                                " AND usename <> current_user").fetchone()[0]
        assert seen == 0  # it really is blind to the others
        # The report has been open 0.5 s, old already, but the migrator cannot tell.
        result, pid, writer, _, _ = _migrate_behind_a_report(cli, service, db, "300ms", age=0.5, hold=2.0,
                                                          migrator=migrator)
        lines = [x for x in result.stdout.splitlines() if "retry " in x]
        assert "lock timeout after 300ms" in lines[0] and f"pid {pid}" in lines[0], lines
        assert len(lines) >= 2 and all(f"not queuing behind users held by pid {pid} (a session this role may"
                                       " not see into" in x for x in lines[1:]), lines
        assert writer.worst < 0.3 + 0.35, writer.worst  # one lock timeout, not the report's two seconds
    finally:
        with connect(db) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _signalled_while_waiting(service, db, hold_sql: str, needle: str, *args: str) -> tuple[int, list[str], float]:
    """Run migrate as a process while another session holds what it needs; SIGTERM it once its
    output shows it waiting; (exit code, stderr lines, seconds from the signal to the exit)."""
    import os
    import signal
    import subprocess
    import sys

    add_migration(service, "add_users_notes", "ALTER TABLE users ADD COLUMN notes text;\n",
                  "ALTER TABLE users DROP COLUMN notes;\n")
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL")}
    with connect(db) as holder:
        holder.execute("BEGIN")
        holder.execute(hold_sql)
        run = subprocess.Popen([sys.executable, "-m", "dbtool", "migrate", "identity", "--schemas-dir",
                                str(service.parent), *args], env={**clean, "IDENTITY_DATABASE_URL": db},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen, deadline = "", time.monotonic() + 30
        while needle not in seen:
            assert time.monotonic() < deadline and run.poll() is None, (seen, run.stderr.read())
            seen += run.stdout.readline()
        time.sleep(0.3)  # into the wait itself
        run.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = run.wait(timeout=30)
        took = time.monotonic() - sent
        holder.execute("ROLLBACK")
    return code, run.stderr.read().strip().splitlines(), took


def test_sigterm_during_a_retry_wait_stops_at_once_with_nothing_applied(service, db):
    _prepared(service, db)
    code, err, took = _signalled_while_waiting(
        service, db, "SELECT count(*) FROM users", "not queuing behind",
        "--ddl-lock-timeout", "200ms", "--ddl-retries", "30")
    assert code == 143 and len(err) == 1, err
    assert "005_add_users_notes: interrupted by SIGTERM while waiting to retry; nothing of this migration" \
           " was applied" in err[0], err
    assert took < 5, took  # not the report's whole transaction, nor the thirty retries
    with connect(db) as conn:
        assert "notes" not in columns(conn, "users")


def test_sigterm_while_another_run_holds_the_migration_lock_stops_at_once(service, db):
    from dbtool.migrate.tracking import LOCK_KEYS

    _prepared(service, db)
    code, err, took = _signalled_while_waiting(
        service, db, f"SELECT pg_advisory_lock({LOCK_KEYS[0]}, {LOCK_KEYS[1]})", "identity: ",
        "--lock-timeout", "60")
    assert code == 143 and len(err) == 1, err
    assert "interrupted by SIGTERM while waiting for another dbtool run's migration lock; nothing was applied" \
           in err[0], err
    assert took < 5, took


def test_a_service_cancelled_outside_a_step_still_gets_its_own_line(db):
    # What the server said when the signal cancelled the state read, named by the service.
    import psycopg

    from dbtool.migrate.commands import _where_left

    with connect(db) as conn:
        conn.execute("SET statement_timeout = '10ms'")
        with pytest.raises(psycopg.errors.QueryCanceled) as cancelled:
            conn.execute("SELECT pg_sleep(1)")
    line = _where_left("chat", cancelled.value, 2)
    assert line.startswith("chat: interrupted by ") and "canceling statement" in line, line
    assert "2 migration(s) applied before it, nothing half-done" in line, line


@pytest.mark.parametrize("statement, fails", [
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_name ON users (name);\n", False),
    ("CREATE INDEX CONCURRENTLY idx_users_name ON users (no_such_column);\n", True),
])
def test_a_non_transactional_migration_gives_the_session_its_timeouts_back(service, db, statement, fails):
    """Its statements run under the session's lock_timeout and statement_timeout (a transaction's
    SET LOCAL cannot hold them), which are reset afterwards, whether it succeeded or failed."""
    from dbtool.errors import BadInput

    _prepared(service, db)
    add_migration(service, "add_users_name_index", f"-- transactional: false\n{statement}",
                  "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_users_name;\n")
    policy = LockPolicy(lock_timeout=0.3, statement_timeout=7.0)
    with connect(db) as conn:
        before = conn.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')").fetchone()
        if fails:
            with pytest.raises(BadInput, match="no_such_column"):
                migrate_connection(conn, load_tree(service), policy=policy)
        else:
            assert [m.version for m in migrate_connection(conn, load_tree(service), policy=policy)] == [5]
        after = conn.execute("SELECT current_setting('lock_timeout'), current_setting('statement_timeout')").fetchone()
        assert after == before and after != ("300ms", "7s")

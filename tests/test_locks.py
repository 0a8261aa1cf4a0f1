"""Bounded lock waits: lock_timeout per migration, retries that let the queue drain, blockers named."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import connect

from dbtool.migrate.locks import LockPolicy, file_policy, parse_duration
from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.state import read_state
from dbtool.migrate.tree import load_tree


@pytest.fixture
def service(project):
    return project / "schemas" / "identity"


def add(folder, name, up, down):
    number = len(list(folder.glob("*.down.sql"))) + 1
    (folder / f"{number:03d}_{name}.sql").write_text(up)
    (folder / f"{number:03d}_{name}.down.sql").write_text(down)


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
    add(service, "add_users_notes", "-- lock-timeout: quick\nALTER TABLE users ADD COLUMN notes text;\n",
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


def test_a_held_lock_is_retried_until_released_and_writers_wait_at_most_one_timeout(cli, service, db):
    row_id = _prepared(service, db)
    add(service, "add_users_notes", "ALTER TABLE users ADD COLUMN notes text;\n",
        "ALTER TABLE users DROP COLUMN notes;\n")
    blocker = connect(db)
    pid = blocker.info.backend_pid
    blocker.execute("SELECT set_config('application_name', 'nightly report', false)")
    blocker.execute("BEGIN")
    blocker.execute("SELECT count(*) FROM users")  # ACCESS SHARE until the transaction ends
    writer = Writer(db, row_id)
    writer.start()
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(result=cli(
        "migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", "200ms",
        "--ddl-retries", "30", env={"IDENTITY_DATABASE_URL": db})))
    run.start()
    seen_as = set()
    with connect(db) as watch:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # the lock is held for two seconds, ten lock timeouts
            seen_as |= {r[0] for r in watch.execute(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'dbtool migrate%'")}
            time.sleep(0.05)
    blocker.execute("ROLLBACK")
    run.join(30)
    writer.done.set()
    writer.join()
    blocker.close()
    result = outcome["result"]
    assert result.exit_code == 0, result.stderr
    retries = [x for x in result.stdout.splitlines() if "lock timeout after 200ms" in x]
    assert len(retries) >= 3
    assert f"users held by pid {pid} (nightly report, idle in transaction" in retries[0]
    assert "SELECT count(*) FROM users" in retries[0] and "retry 1/30 in" in retries[0]
    assert "applied 005_add_users_notes" in result.stdout
    assert "dbtool migrate identity 005" in seen_as
    with connect(db) as conn:
        assert "notes" in columns(conn, "users")
    # The writer queued behind the waiting ALTER at most one lock timeout at a time, not two seconds.
    assert writer.writes > 20
    assert writer.worst < 0.2 + 0.35, writer.worst


def test_attempts_run_out_exit_3_keeping_the_earlier_migrations(cli, service, db):
    _prepared(service, db)
    add(service, "create_notes_table", "CREATE TABLE notes (id uuid PRIMARY KEY);\n", "DROP TABLE notes;\n")
    add(service, "add_users_notes", "ALTER TABLE users ADD COLUMN notes text;\n",
        "ALTER TABLE users DROP COLUMN notes;\n")
    with connect(db) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT count(*) FROM users")
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
    add(service, "add_users_notes", "-- lock-timeout: 50ms\n-- retries: 0\nALTER TABLE users ADD COLUMN notes text;\n",
        "ALTER TABLE users DROP COLUMN notes;\n")
    with connect(db) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("SELECT count(*) FROM users")
        result = cli("migrate", "identity", "--schemas-dir", service.parent, env={"IDENTITY_DATABASE_URL": db})
        blocker.execute("ROLLBACK")
    assert result.exit_code == 3
    assert "within 50ms in 1 attempt(s)" in result.stderr
    assert "005_add_users_notes.sql: -- lock-timeout" in result.stderr  # the setting to raise


def test_a_concurrent_build_waiting_for_a_writer_is_retried(cli, service, db):
    row_id = _prepared(service, db)
    add(service, "add_users_name_index",
        "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_name ON users (name);\n",
        "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_users_name;\n")
    blocker = connect(db)
    pid = blocker.info.backend_pid
    blocker.execute("BEGIN")
    blocker.execute("UPDATE users SET name = 'B' WHERE id = %s", (row_id,))  # an open writing transaction
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(result=cli(
        "migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", "200ms",
        env={"IDENTITY_DATABASE_URL": db})))
    run.start()
    time.sleep(1.0)
    blocker.execute("COMMIT")
    run.join(30)
    blocker.close()
    result = outcome["result"]
    assert result.exit_code == 0, result.stderr
    assert "lock timeout after 200ms" in result.stdout and f"pid {pid}" in result.stdout
    with connect(db) as conn:
        valid = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_users_name'::regclass")
        assert valid.fetchone()[0] is True


def test_a_long_wait_is_reported_while_it_lasts(cli, service, db):
    """With no lock timeout a concurrent build waits for an old transaction; dbtool says on what."""
    row_id = _prepared(service, db)
    add(service, "add_users_name_index",
        "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_name ON users (name);\n",
        "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_users_name;\n")
    blocker = connect(db)
    pid = blocker.info.backend_pid
    blocker.execute("BEGIN")
    blocker.execute("UPDATE users SET name = 'B' WHERE id = %s", (row_id,))
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(result=cli(
        "migrate", "identity", "--schemas-dir", service.parent, "--ddl-lock-timeout", "0",
        env={"IDENTITY_DATABASE_URL": db})))
    run.start()
    time.sleep(3.0)
    blocker.execute("COMMIT")
    run.join(30)
    blocker.close()
    result = outcome["result"]
    assert result.exit_code == 0, result.stderr
    waits = [x for x in result.stdout.splitlines() if "005_add_users_name_index: waiting" in x]
    assert waits and f"held by pid {pid}" in waits[0] and "lock timeout" not in result.stdout


def test_blocker_queries_never_show_a_password():
    from dbtool.migrate.locks import _redacted_query

    shown = _redacted_query("ALTER ROLE app PASSWORD 'hunter2'", ["s3cret"])
    assert "hunter2" not in shown and "PASSWORD ***" in shown
    assert _redacted_query("SELECT 's3cret'", ["s3cret"]) == "SELECT '***'"

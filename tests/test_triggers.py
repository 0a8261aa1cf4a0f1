"""updated_at triggers follow the live schema: created by migrate, dropped by rollback, idempotent."""

from __future__ import annotations

import json

import pytest
from conftest import assert_no_crash, connect

from dbtool.schemafile.snapshot import snapshot

# One row per table that has updated_at in the specification: (table, INSERT ... RETURNING id, UPDATE).
ROWS = {
    "users": (
        """INSERT INTO users (email, password_hash, role, name, created_at, updated_at)
           VALUES ('a@example.com', 'x', 'student', 'A', %(t)s, %(t)s) RETURNING id""",
        "UPDATE users SET bio = 'hello' WHERE id = %(id)s",
    ),
    "courses": (
        """INSERT INTO courses (name, price, instructor_id, instructor_name, duration_minutes, created_at, updated_at)
           VALUES ('Piano', 100, gen_random_uuid(), 'B', 60, %(t)s, %(t)s) RETURNING id""",
        "UPDATE courses SET price = 200 WHERE id = %(id)s",
    ),
    "chat_sessions": (
        """INSERT INTO chat_sessions (user_id, title, created_at, updated_at)
           VALUES (gen_random_uuid(), 'Hi', %(t)s, %(t)s) RETURNING id""",
        "UPDATE chat_sessions SET title = 'Hello' WHERE id = %(id)s",
    ),
}
LONG_AGO = "2000-01-01 00:00:00"


def trigger_names(conninfo: str) -> dict[str, str]:
    with connect(conninfo) as conn:
        rows = conn.execute(
            """SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
               WHERE NOT t.tgisinternal AND t.tgname LIKE 'update\\_%%'"""
        ).fetchall()
    return dict(rows)


def snap(conninfo: str) -> dict:
    with connect(conninfo) as conn:
        return snapshot(conn)


def has_function(conninfo: str) -> bool:
    with connect(conninfo) as conn:
        return conn.execute("SELECT to_regproc('update_updated_at_column') IS NOT NULL").fetchone()[0]


def test_migrate_gives_every_updated_at_table_a_working_trigger(migrated):
    dbs, _ = migrated
    found = {}
    for service, conninfo in dbs.items():
        found.update({table: service for table in trigger_names(conninfo).values()})
        with connect(conninfo) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'updated_at'"
                " AND table_schema = current_schema()").fetchall()]
            for table in tables:
                insert, update = ROWS[table]
                row_id = conn.execute(insert, {"t": LONG_AGO}).fetchone()[0]
                conn.execute(update, {"id": row_id})
                created, updated = conn.execute(
                    f"SELECT created_at::text, updated_at::text FROM {table} WHERE id = %s", (row_id,)
                ).fetchone()
                assert created == LONG_AGO, table
                assert updated > LONG_AGO, table
    assert sorted(found) == sorted(ROWS)
    assert {trigger for db in dbs.values() for trigger in trigger_names(db)} == {
        f"update_{table}_updated_at" for table in ROWS
    }


def test_triggers_is_idempotent_and_reports_nothing_to_do(cli, migrated, project):
    dbs, env = migrated
    before = {s: snap(c) for s, c in dbs.items()}
    result = cli("triggers", "--json", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["changes"] for r in report] == [[], [], []]
    assert sorted(t for r in report for t in r["tables"]) == sorted(ROWS)
    assert {s: snap(c) for s, c in dbs.items()} == before


def test_a_migrate_with_nothing_to_apply_still_puts_back_a_dropped_trigger(cli, migrated, project):
    # The no-op run reads the trigger catalog with the state; seeing a change, it takes the locked path.
    dbs, env = migrated
    with connect(dbs["chat"]) as conn:
        conn.execute("DROP TRIGGER update_chat_sessions_updated_at ON chat_sessions")
    result = cli("migrate", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    assert "chat: nothing to do" in result.stdout
    assert "created trigger update_chat_sessions_updated_at on chat_sessions" in result.stdout
    assert trigger_names(dbs["chat"]) == {"update_chat_sessions_updated_at": "chat_sessions"}


def test_a_table_that_loses_updated_at_loses_its_trigger_and_the_function_goes_last(cli, migrated, project):
    dbs, env = migrated
    identity = dbs["identity"]
    with connect(identity) as conn:
        conn.execute("ALTER TABLE users DROP COLUMN updated_at")
    result = cli("triggers", "identity", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    assert "dropped trigger update_users_updated_at on users" in result.stdout
    assert "dropped function update_updated_at_column()" in result.stdout
    assert trigger_names(identity) == {} and not has_function(identity)
    with connect(identity) as conn:  # the update that the stale trigger would have broken
        conn.execute("INSERT INTO users (email, password_hash, role, name) VALUES ('b@x.org', 'x', 'student', 'B')")
        conn.execute("UPDATE users SET name = 'C'")
        conn.execute("ALTER TABLE users ADD COLUMN updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP")
    result = cli("triggers", "identity", "--schemas-dir", project / "schemas", env=env)
    assert "created trigger update_users_updated_at on users" in result.stdout
    assert trigger_names(identity) == {"update_users_updated_at": "users"}


def test_tables_made_outside_migrations_count_and_odd_columns_do_not(cli, migrated, project):
    dbs, env = migrated
    chat = dbs["chat"]
    with connect(chat) as conn:
        conn.execute("CREATE TABLE notes (id INT PRIMARY KEY, updated_at TIMESTAMPTZ)")
        conn.execute("CREATE TABLE labels (id INT PRIMARY KEY, updated_at TEXT)")
    result = cli("triggers", "chat", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    assert trigger_names(chat) == {"update_chat_sessions_updated_at": "chat_sessions",
                                   "update_notes_updated_at": "notes"}


def test_a_wrong_trigger_or_function_under_our_names_is_replaced(cli, migrated, project):
    dbs, env = migrated
    course = dbs["course"]
    with connect(course) as conn:
        conn.execute("CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$")
        conn.execute("DROP TRIGGER update_courses_updated_at ON courses")
        conn.execute("CREATE TRIGGER update_courses_updated_at BEFORE UPDATE ON courses"
                     " FOR EACH ROW EXECUTE FUNCTION noop()")
    result = cli("triggers", "course", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    assert "replaced trigger update_courses_updated_at on courses" in result.stdout
    with connect(course) as conn:
        row_id = conn.execute(ROWS["courses"][0], {"t": LONG_AGO}).fetchone()[0]
        conn.execute(ROWS["courses"][1], {"id": row_id})
        assert conn.execute("SELECT updated_at::text FROM courses").fetchone()[0] > LONG_AGO


def test_dry_run_changes_nothing(cli, migrated, project):
    dbs, env = migrated
    with connect(dbs["chat"]) as conn:
        conn.execute("DROP TRIGGER update_chat_sessions_updated_at ON chat_sessions")
    result = cli("triggers", "chat", "--dry-run", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    assert "would have created trigger update_chat_sessions_updated_at" in result.stdout
    assert trigger_names(dbs["chat"]) == {}


def test_rollback_all_leaves_no_trigger_or_function(cli, migrated, project):
    dbs, env = migrated
    result = cli("rollback", "--all", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    for conninfo in dbs.values():
        assert trigger_names(conninfo) == {} and not has_function(conninfo)
        with connect(conninfo) as conn:
            assert conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal").fetchone()[0] == 0


@pytest.mark.parametrize("args, code, message", [
    (["nope"], 2, "no such service folder"),
    (["--env", "prod", "--dsn", "postgresql://localhost/x_db", "identity"], 4, "needs --yes"),
])
def test_bad_input(cli, project, args, code, message):
    result = cli("triggers", *args, "--schemas-dir", project / "schemas")
    assert result.exit_code == code
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert_no_crash(result)


def test_a_database_that_does_not_exist_is_not_created(cli, project, server):
    conninfo = server.conninfo("trig_missing_db")
    result = cli("triggers", "identity", "--dsn", conninfo, "--schemas-dir", project / "schemas")
    assert result.exit_code == 3
    assert "does not exist; run 'dbtool migrate identity' first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with connect(server.admin) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'trig_missing_db'").fetchone() is None


def _all_triggers(conninfo: str) -> list[tuple[str, str]]:
    with connect(conninfo) as conn:
        return conn.execute("""SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                               WHERE NOT t.tgisinternal ORDER BY 1, 2""").fetchall()


def test_a_table_renamed_away_and_back_keeps_one_trigger(cli, project, db):
    folder = project / "schemas" / "chat"
    n = len(list(folder.glob("0*.down.sql")))
    moves = [("rename_sessions_away", "ALTER TABLE chat_sessions RENAME TO chat_threads;",
              "ALTER TABLE chat_threads RENAME TO chat_sessions;"),
             ("rename_sessions_back", "ALTER TABLE chat_threads RENAME TO chat_sessions;",
              "ALTER TABLE chat_sessions RENAME TO chat_threads;")]
    for i, (name, up, down) in enumerate(moves, start=n + 1):
        (folder / f"{i:03d}_{name}.sql").write_text(up + "\n")
        (folder / f"{i:03d}_{name}.down.sql").write_text(down + "\n")
    env = {"CHAT_DATABASE_URL": db}
    for to in (n, n + 1, n + 2):  # one migrate each, so the sync runs while the table has its other name
        assert cli("migrate", "chat", "--to", str(to), "--schemas-dir", project / "schemas", env=env).exit_code == 0
    assert [t for t in _all_triggers(db) if t[0] == "chat_sessions"] == [
        ("chat_sessions", "update_chat_sessions_updated_at")]
    result = cli("triggers", "chat", "--schemas-dir", project / "schemas", env=env)
    assert "up to date" in result.stdout


def test_a_service_opts_out_of_the_trigger_sync_per_table_or_entirely(cli, project, new_db):
    db = new_db()
    config = project / "schemas" / "course" / "dbtool.toml"
    config.write_text('[triggers]\nskip = ["courses"]\n')
    env = {"COURSE_DATABASE_URL": db}
    assert cli("migrate", "course", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    assert not [t for t in _all_triggers(db) if t[1] == "update_courses_updated_at"]
    config.write_text("[triggers]\nsync = false\n")
    other = new_db()
    env = {"COURSE_DATABASE_URL": other}
    assert cli("migrate", "course", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    assert not [t for t in _all_triggers(other) if t[1].startswith("update_")]
    config.write_text("[triggers]\nsync = 'yes'\n")
    result = cli("triggers", "course", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 2
    assert_no_crash(result)
    assert "dbtool.toml: [triggers] takes sync = true|false" in result.stderr

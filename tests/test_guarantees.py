"""The guarantees dbtool adds to yoyo, each with a test that fails without it."""

from __future__ import annotations

import json
import re
import string
import time

import psycopg
import pytest
from conftest import PASSWORD, PASSWORD_ROLE, add_migration, connect, one_error_line, public_tables
from hypothesis import given
from hypothesis import strategies as st

from dbtool.migrate.guard import dropped_objects
from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.state import invalid_indexes, read_state
from dbtool.migrate.tree import FILE_NAME, load_tree, parse_file_name, sha256
from dbtool.schemafile.snapshot import snapshot

words = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
snake = st.builds(lambda first, rest: "_".join([first, *rest]),
                  st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=1).flatmap(
                      lambda c: words.map(lambda w: c + w)),
                  st.lists(words, max_size=4))


@given(st.integers(min_value=0, max_value=10**6), snake, st.booleans())
def test_file_names_round_trip(version, name, down):
    file_name = f"{version:03d}_{name}{'.down' if down else ''}.sql"
    assert parse_file_name(file_name) == (version, name, down)


@given(st.from_regex(FILE_NAME, fullmatch=True))
def test_parsed_names_rebuild_exactly(text):
    # Generated from the pattern itself, so every example reaches the assertions.
    version, name, down = parse_file_name(text)
    digits = text.split("_", 1)[0]
    assert text == f"{digits}_{name}{'.down' if down else ''}.sql"
    assert int(digits) == version and len(digits) >= 3
    assert name == name.lower() and "__" not in name and not name.endswith("_")


@pytest.mark.parametrize("bad", ["1_x.sql", "001-x.sql", "001_X.sql", "001_x.SQL", "001_.sql", "001__x.sql",
                                 "001_x_.sql", "001_x.up.sql", "001_1x.sql", "x_001.sql", "001_x.down.down.sql"])
def test_bad_file_names(bad):
    assert parse_file_name(bad) is None


@pytest.mark.parametrize("others, fix", [
    ((), "rename it 001_zero.sql and its down file 001_zero.down.sql"),
    (("001_one",), "renumber from 001: this one becomes 001_zero.sql (its down file too), each after it one up"),
])
def test_a_migration_numbered_000_is_told_numbers_start_at_001_not_a_gap(cli, project, others, fix):
    folder = project / "schemas" / "zero"
    folder.mkdir()
    for stem in ("000_zero", *others):
        (folder / f"{stem}.sql").write_text("CREATE TABLE t (id int);\n")
        (folder / f"{stem}.down.sql").write_text("DROP TABLE t;\n")
    result = cli("validate", "zero", "--schemas-dir", project / "schemas")
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert line == f"error: {folder / '000_zero.sql'}: migration numbers start at 001, not 000; {fix}", line
    assert "gap" not in result.output


def test_statement_lines(tmp_path):
    path = tmp_path / "001_x.sql"
    path.write_text("-- a comment\n\nCREATE TABLE a (id int);\n\n\nCREATE TABLE b (\n  id int\n);\n")
    down = tmp_path / "001_x.down.sql"
    down.write_text("DROP TABLE b;\nDROP TABLE a;\n")
    (m,) = load_tree(tmp_path)
    assert [s.line for s in m.statements()] == [3, 6]
    assert m.transactional()


@pytest.fixture
def service(project):
    return project / "schemas" / "identity"


def test_failed_concurrent_index_is_reported(cli, service, db):
    env = {"IDENTITY_DATABASE_URL": db}
    add_migration(service, "add_unique_name_index",
                  "-- transactional: false\nCREATE UNIQUE INDEX CONCURRENTLY idx_users_name ON users (name);\n",
                  "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_users_name;\n")
    tree = load_tree(service)
    assert not tree[-1].transactional("up")
    with connect(db) as conn:
        migrate_connection(conn, tree[:-1])
        conn.execute("INSERT INTO users (email, password_hash, role, name) VALUES "
                     "('a@x.io', 'h', 'student', 'Same'), ('b@x.io', 'h', 'student', 'Same')")
    result = cli("migrate", "identity", "--schemas-dir", service.parent, env=env)
    assert result.exit_code == 2
    assert "_add_unique_name_index.sql:2:" in result.stderr
    assert "non-transactional" in result.stderr
    status = cli("status", "identity", "--json", "--schemas-dir", service.parent, env=env)
    assert json.loads(status.stdout)[0]["invalid_indexes"] == ["idx_users_name"]
    assert json.loads(status.stdout)[0]["pending"] == [tree[-1].id]
    # Fix the data, drop the broken index, and the same migration applies outside a transaction.
    with connect(db) as conn:
        conn.execute("UPDATE users SET name = email")
        conn.execute("DROP INDEX idx_users_name")
    assert cli("migrate", "identity", "--schemas-dir", service.parent, env=env).exit_code == 0
    with connect(db) as conn:
        assert "idx_users_name" in snapshot(conn)["tables"]["users"]["indexes"]


def test_a_rerun_rebuilds_the_invalid_index_of_a_failed_concurrent_build(cli, service, db):
    """IF NOT EXISTS would pass over the invalid index a failed or killed build left: dbtool rebuilds it."""
    env = {"IDENTITY_DATABASE_URL": db}
    add_migration(service, "add_unique_name_index",
                  "-- transactional: false\n"
                  "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_users_name ON users (name);\n",
                  "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_users_name;\n")
    tree = load_tree(service)
    with connect(db) as conn:
        migrate_connection(conn, tree[:-1])
        conn.execute("INSERT INTO users (email, password_hash, role, name) VALUES "
                     "('a@x.io', 'h', 'student', 'Same'), ('b@x.io', 'h', 'student', 'Same')")
    assert cli("migrate", "identity", "--schemas-dir", service.parent, env=env).exit_code == 2
    with connect(db) as conn:
        assert invalid_indexes(conn) == ["idx_users_name"]
        assert tree[-1].id not in read_state(conn, tree).applied
    # The same failure again: still not recorded, and no second invalid index.
    assert cli("migrate", "identity", "--schemas-dir", service.parent, env=env).exit_code == 2
    with connect(db) as conn:
        assert invalid_indexes(conn) == ["idx_users_name"]
        conn.execute("UPDATE users SET name = email")  # the data is fixed; the invalid index stays
    assert cli("migrate", "identity", "--schemas-dir", service.parent, env=env).exit_code == 0
    with connect(db) as conn:
        assert invalid_indexes(conn) == []
        assert tree[-1].id in read_state(conn, tree).applied
        with pytest.raises(psycopg.errors.UniqueViolation):  # the rebuilt index is real and enforces
            conn.execute("UPDATE users SET name = 'Same'")


def test_edited_and_missing_show_in_status_and_repair_accepts_an_edit(cli, service, db):
    env = {"IDENTITY_DATABASE_URL": db}
    schemas = service.parent
    assert cli("migrate", "identity", "--schemas-dir", schemas, env=env).exit_code == 0
    first = next(p for p in service.glob("001_*.sql") if not p.name.endswith(".down.sql"))
    first.write_text(first.read_text() + "\n-- explains the index choice\n")
    result = cli("status", "identity", "--json", "--exit-code", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 1
    data = json.loads(result.stdout)[0]
    assert data["edited"] == [str(first)]
    assert cli("migrate", "identity", "--schemas-dir", schemas, env=env).exit_code == 4

    repaired = cli("repair", "identity", "--schemas-dir", schemas, env=env)
    assert repaired.exit_code == 0 and "001_create_users_table" in repaired.stdout
    assert cli("migrate", "identity", "--schemas-dir", schemas, env=env).exit_code == 0
    with connect(db) as conn:
        recorded = conn.execute("SELECT up_sha256 FROM _dbtool_checksum WHERE migration_id = %s",
                                (first.name[:-4],)).fetchone()[0]
    assert recorded == sha256(first.read_bytes())

    # From 002 on, so the tree keeps no gap: those applied migrations are now missing files.
    gone = sorted(p for p in service.glob("[0-9]*.sql") if not p.name.startswith("001_"))
    for path in gone:
        path.unlink()
    result = cli("status", "identity", "--json", "--schemas-dir", schemas, env=env)
    assert json.loads(result.stdout)[0]["missing"] == sorted(p.name[:-4] for p in gone if ".down." not in p.name)
    assert "002_create_refresh_tokens_table" in json.loads(result.stdout)[0]["missing"]
    shown = cli("status", "identity", "--schemas-dir", schemas, env=env).stdout.splitlines()
    assert any(re.match(r"002\s+create refresh tokens table\s+missing file", text) for text in shown), shown


def test_migrations_applied_by_plain_yoyo_are_unknown_until_repaired(service, db):
    tree = load_tree(service)
    with connect(db) as conn:
        migrate_connection(conn, tree)
        conn.execute("DELETE FROM _dbtool_checksum")
        state = read_state(conn, tree)
    assert [m.id for m in state.unknown] == [m.id for m in tree]
    assert all(state.state_of(m) == "unknown" for m in tree)


def test_rollback_force_drops_rows_the_guard_protects(cli, service, db):
    env = {"IDENTITY_DATABASE_URL": db}
    schemas = service.parent
    add_migration(service, "add_user_nickname", "ALTER TABLE users ADD COLUMN nickname TEXT;",
                  "ALTER TABLE users DROP COLUMN nickname;")
    assert cli("migrate", "identity", "--schemas-dir", schemas, env=env).exit_code == 0
    with connect(db) as conn:
        conn.execute("INSERT INTO users (email, password_hash, role, name) VALUES ('n@x.io', 'h', 'student', 'N')")
    # An empty column may go: nothing is lost.
    assert cli("rollback", "identity", "--schemas-dir", schemas, env=env).exit_code == 0
    assert cli("migrate", "identity", "--schemas-dir", schemas, env=env).exit_code == 0
    with connect(db) as conn:
        conn.execute("UPDATE users SET nickname = 'nick'")
    refused = cli("rollback", "identity", "--schemas-dir", schemas, env=env)
    assert refused.exit_code == 4 and "column users.nickname, which holds rows" in refused.stderr
    assert cli("rollback", "identity", "--force", "--schemas-dir", schemas, env=env).exit_code == 0
    with connect(db) as conn:
        assert "nickname" not in snapshot(conn)["tables"]["users"]["columns"]


def test_dropped_objects_are_parsed_not_matched():
    assert dropped_objects("DROP TABLE a, s.b CASCADE") == [("a", None), ("s.b", None)]
    assert dropped_objects("ALTER TABLE t DROP COLUMN c, ADD COLUMN d int") == [("t", "c")]
    assert dropped_objects("-- DROP TABLE x\nSELECT 'DROP TABLE y'") == []
    assert dropped_objects("DROP INDEX idx_t_c") == []


def test_prod_asks_for_yes(cli, service, db):
    env = {"IDENTITY_DATABASE_URL": db}
    refused = cli("migrate", "identity", "--env", "prod", "--schemas-dir", service.parent, env=env)
    assert refused.exit_code == 4
    result = cli("migrate", "identity", "--env", "prod", "--yes", "--schemas-dir", service.parent, env=env)
    assert result.exit_code == 0, result.output
    with connect(db) as conn:
        assert "users" in snapshot(conn)["tables"]


def test_prod_never_creates_a_database(cli, service, server):
    dsn = server.conninfo("never_created_db_prod")
    result = cli("migrate", "identity", "--env", "prod", "--yes", "--dsn", dsn, "--schemas-dir", service.parent)
    assert result.exit_code == 3 and "does not exist" in result.stderr
    with psycopg.connect(server.admin) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'never_created_db_prod'").fetchone() is None


def test_status_of_a_missing_database_is_exit_3_where_migrate_never_creates_it(cli, project, server):
    env = {"COURSE_DATABASE_URL": server.conninfo("status_missing_db")}
    result = cli("status", "course", "--env", "prod", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert "course: database status_missing_db does not exist, and --env prod never creates one" in line, line
    assert "check the database URL and --env (now prod)" in line, line
    assert "migrate creates it" not in result.output
    # In dev, migrate creates it: status still shows the migrations to come.
    dev = cli("status", "course", "--schemas-dir", project / "schemas", env=env)
    assert dev.exit_code == 0 and "database does not exist yet; migrate creates it" in dev.stdout, dev.output
    with psycopg.connect(server.admin) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'status_missing_db'").fetchone() is None


def test_wait_retries_then_reports_the_last_error(cli, service):
    started = time.monotonic()
    result = cli("status", "identity", "--wait", "1.5", "--dsn", "postgresql://u@127.0.0.1:1/x",
                 "--schemas-dir", service.parent)
    assert result.exit_code == 3 and "Connection refused" in result.stderr
    assert time.monotonic() - started >= 1.0, "it gave up without waiting"


def test_no_password_in_any_output(cli, service, db, server):
    """Every command, success or failure, with a known password: the password never shows."""
    if not server.checks_passwords:
        pytest.skip("this test server accepts any password; the role is still used below")
    from psycopg.conninfo import conninfo_to_dict

    dbname, admin = conninfo_to_dict(db)["dbname"], conninfo_to_dict(server.admin)
    good = server.conninfo(dbname, user=PASSWORD_ROLE, password=PASSWORD)
    bad = server.conninfo(dbname, user=PASSWORD_ROLE, password=PASSWORD + "x")
    schemas = ["--schemas-dir", str(service.parent)]
    runs = [
        cli("migrate", "identity", "--dsn", good, *schemas),
        cli("status", "identity", "--dsn", good, "--json", *schemas),
        cli("status", "identity", "--dsn", good, *schemas),
        cli("migrate", "identity", "--dry-run", "--dsn", good, *schemas),
        cli("rollback", "identity", "--all", "--dsn", good, *schemas),
        cli("migrate", "identity", "--dsn", bad, *schemas),
        cli("migrate", "identity", *schemas, env={"IDENTITY_DATABASE_URL": bad}),
        cli("status", "identity", *schemas, env={"DB_HOST": admin.get("host", "localhost"),
                                                 "DB_PORT": admin.get("port", "5432"),
                                                 "DB_USER": PASSWORD_ROLE, "DB_PASSWORD": PASSWORD + "x"}),
        cli("migrate", "identity", "--env", "prod", "--dsn", good, *schemas),
    ]
    assert [r.exit_code for r in runs] == [0, 0, 0, 0, 0, 3, 3, 3, 4]
    for run in runs:
        assert PASSWORD not in run.output


def test_no_password_in_the_output_of_the_other_commands(cli, service, db, server):
    """The reporting and checking commands, given the same known password in every way they take one."""
    if not server.checks_passwords:
        pytest.skip("this test server accepts any password; the role is still used below")
    from psycopg.conninfo import conninfo_to_dict

    dbname = conninfo_to_dict(db)["dbname"]
    good = server.conninfo(dbname, user=PASSWORD_ROLE, password=PASSWORD)
    bad = server.conninfo(dbname, user=PASSWORD_ROLE, password=PASSWORD + "x")
    scratch = server.conninfo("postgres", user=PASSWORD_ROLE, password=PASSWORD)
    bad_scratch = server.conninfo("postgres", user=PASSWORD_ROLE, password=PASSWORD + "x")
    schemas = ["--schemas-dir", str(service.parent)]
    assert cli("migrate", "identity", "--dsn", good, *schemas).exit_code == 0
    seeded = cli("seed", "identity", "--dsn", good, *schemas)
    with connect(db) as conn:
        conn.execute("ANALYZE")  # explain refuses tables without statistics
    runs = {
        "seed": seeded,
        "audit": cli("audit-indexes", "identity", "--dsn", good, *schemas),
        "audit json": cli("audit-indexes", "--dsn", good, "--json", *schemas),
        "audit bad": cli("audit-indexes", "identity", "--dsn", bad, *schemas),
        "triggers": cli("triggers", "identity", "--dsn", good, *schemas),
        "explain": cli("explain", "identity", "--dsn", good, "--json", *schemas),
        "explain bad": cli("explain", "identity", "--dsn", bad, *schemas),
        "schema check": cli("schema", "check", "identity", "--dsn", good, "--scratch-dsn", scratch, *schemas),
        "verify": cli("verify", "identity", "--scratch-dsn", scratch, *schemas),
        "verify bad": cli("verify", "identity", "--scratch-dsn", bad_scratch, *schemas),
    }
    codes = {name: r.exit_code for name, r in runs.items()}
    # explain: on a few seed rows a sequential scan is the right plan, which no_seq_scan leaves alone.
    assert codes == {"audit": 0, "audit json": 0, "audit bad": 3, "triggers": 0, "seed": 0, "explain": 0,
                     "explain bad": 3, "schema check": 0, "verify": 0, "verify bad": 3}, \
        {name: r.output for name, r in runs.items()}
    for name, run in runs.items():
        assert PASSWORD not in run.output, name
    assert PASSWORD_ROLE in runs["verify"].output  # the role is named, its password never


def _yoyo(tree, db: str, folder):
    """yoyo itself on `db`, with `tree` copied into `folder` in yoyo's layout (<id>.sql and
    <id>.rollback.sql): its backend and the migrations it reads there."""
    import shutil
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict
    from yoyo import get_backend, read_migrations

    for m in tree:
        shutil.copy(m.up, folder / m.up.name)
        shutil.copy(m.down, folder / f"{m.id}.rollback.sql")
    parts = conninfo_to_dict(db)
    auth = quote(parts.get("user", "postgres")) + (f":{quote(parts['password'])}" if parts.get("password") else "")
    host = parts.get("host", "localhost")
    url = (f"postgresql+psycopg://{auth}@/{parts['dbname']}?host={host}" if host.startswith("/") else
           f"postgresql+psycopg://{auth}@{host}:{parts.get('port', 5432)}/{parts['dbname']}")
    return get_backend(url), read_migrations(str(folder))


def test_yoyo_reads_a_dbtool_database(service, db, tmp_path):
    """dbtool records migrations in yoyo's own tables under yoyo's ids, so yoyo sees them applied."""
    tree = load_tree(service)
    with connect(db) as conn:
        migrate_connection(conn, tree[:-1])
    backend, migrations = _yoyo(tree, db, tmp_path)
    try:
        pending = backend.to_apply(migrations)
        assert [m.id for m in pending] == [tree[-1].id]
    finally:
        backend.connection.close()


def _apply_with_yoyo(tree, db: str, folder) -> None:
    """Every migration of `tree` applied by yoyo itself, as a team that used plain yoyo has them."""
    backend, migrations = _yoyo(tree, db, folder)
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations))
    finally:
        backend.connection.close()


def test_a_no_op_migrate_of_a_database_yoyo_alone_migrated_keeps_checksums_from_then_on(cli, service, db,
                                                                                          tmp_path, monkeypatch):
    from dbtool.migrate import state as state_module
    from dbtool.migrate.state import read_state

    tree = load_tree(service)
    _apply_with_yoyo(tree, db, tmp_path)
    assert "_dbtool_checksum" not in public_tables(db)
    env = {"IDENTITY_DATABASE_URL": db}
    result = cli("migrate", "identity", "--schemas-dir", service.parent, env=env)
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "nothing to do" in result.output, result.output
    assert "_dbtool_checksum" in public_tables(db)

    def second_try(*args):
        raise AssertionError("the state was read the long way: the one-round-trip read failed")

    # From now on the optimistic read holds: no failed first try, no ERROR in the server's log.
    monkeypatch.setattr(state_module, "_read_state", second_try)
    with connect(db) as conn:
        state = read_state(conn, tree)
    assert not state.pending and state.applied_migrations == tree
    again = cli("migrate", "identity", "--schemas-dir", service.parent, env=env)
    assert again.exit_code == 0 and "nothing to do" in again.output, again.output


def test_a_role_that_may_not_create_leaves_a_yoyo_database_as_it_is_and_the_no_op_succeeds(cli, service, db,
                                                                                              tmp_path):
    import uuid

    from conftest import SERVER
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    _apply_with_yoyo(load_tree(service), db, tmp_path)
    env = {"IDENTITY_DATABASE_URL": db}
    assert cli("triggers", "identity", "--schemas-dir", service.parent, env=env).exit_code == 0
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    with connect(SERVER.admin) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(reader)))
    try:
        with connect(db) as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(reader)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {0}; GRANT SELECT ON ALL TABLES IN SCHEMA public"
                                 " TO {0}").format(sql.Identifier(reader)))
        as_reader = {"IDENTITY_DATABASE_URL": make_conninfo(db, user=reader)}
        result = cli("migrate", "identity", "--schemas-dir", service.parent, env=as_reader)
        assert result.exit_code == 0 and result.exception is None, result.output
        assert "nothing to do" in result.output and "_dbtool_checksum" not in public_tables(db), result.output
    finally:
        with connect(db) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
        with connect(SERVER.admin) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))

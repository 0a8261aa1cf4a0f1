"""Holes a corpus of bad inputs found: transaction control in a migration, stray errors, signals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import sqlparse
from hypothesis import example, given, settings
from hypothesis import strategies as st
from conftest import add_migration, assert_no_crash, connect, one_error_line

from dbtool.errors import BadInput
from dbtool.migrate.runner import _run
from dbtool.migrate.sqltext import (
    Statement,
    _split_plainly,
    batches,
    may_control_transaction,
    split_sql,
    transaction_control,
    transactional,
)


def tables(conninfo: str) -> set[str]:
    with connect(conninfo) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows if not r[0].startswith(("_yoyo", "yoyo", "_dbtool"))}


def service(project, up: str, down: str = "DROP TABLE IF EXISTS a_items; DROP TABLE IF EXISTS b_items;"):
    folder = project / "schemas" / "svc"
    folder.mkdir()
    (folder / "001_make_items.sql").write_text(up)
    (folder / "001_make_items.down.sql").write_text(down)
    return project / "schemas"


@pytest.mark.parametrize("sql, word", [
    ("BEGIN", "begin"), ("begin transaction", "begin"), ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "begin"),
    ("COMMIT", "commit"), ("commit work", "commit"), ("END", "commit"), ("COMMIT PREPARED 'x'", "commit"),
    ("PREPARE TRANSACTION 'x'", "commit"), ("ROLLBACK", "rollback"), ("ABORT", "rollback"),
    ("-- a comment\n/* and another */ COMMIT", "commit"),
    ("ROLLBACK TO SAVEPOINT s", None), ("rollback to s", None), ("SAVEPOINT s", None),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$", None),
    ("DO $$ BEGIN PERFORM 1; END $$", None), ("SELECT 'COMMIT'", None), ("ENDPOINT", None),
])
def test_transaction_control_is_told_by_the_first_word(sql, word):
    assert transaction_control(sql) == word


@pytest.mark.parametrize("text, may", [
    ("CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN NEW.x = 1; RETURN NEW; END; $$ LANGUAGE plpgsql;", False),
    ("SELECT 'a; COMMIT';", False), ("/* ; COMMIT */ SELECT 1;", False), ("SELECT 1; COMMIT;", True),
    ("-- x\nBEGIN;\nSELECT 1;", True), ("SELECT E'it\\'s; COMMIT';", False),
    ("/* a /* b */ ; COMMIT */ SELECT 1;", False), ("SELECT $tag$ x; $tag$; COMMIT;", True),
    ('SELECT "a;""commit"; SELECT 1', False), ("SELECT $1; COMMIT", True), ("SELECT 'x'';COMMIT';", False),
    ("ROLLBACK TO SAVEPOINT a;", False), ("SELECT 1; -- c\n END;", True), ("SELECT CASE WHEN true THEN 1 END;", False),
])
def test_the_cheap_scan_sees_a_transaction_statement_only_where_one_can_be(text, may):
    # validate splits a file with sqlparse only when this scan says it may end its transaction.
    assert may_control_transaction(text) is may


def test_the_cheap_scan_agrees_with_the_split_on_every_shipped_file():
    files = sorted((Path(__file__).resolve().parent.parent / "schemas").glob("*/*.sql"))
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        assert may_control_transaction(text) == any(transaction_control(st.sql) for st in split_sql(text)[1]), path


def test_every_shipped_migration_splits_without_sqlparse_and_as_sqlparse_does(monkeypatch):
    root = Path(__file__).resolve().parent.parent / "schemas"
    migrations = sorted(root.glob("*/0*.sql"))
    assert len(migrations) > 20
    for path in sorted(root.rglob("*.sql")):
        text = path.read_text()
        plain = _split_plainly(text)
        assert plain is not None or path not in migrations, path
        assert plain is None or plain == sqlparse.split(text), path

    def refuse(text: str) -> list[str]:
        raise AssertionError("sqlparse split a shipped migration")

    # What the runner sends, read afresh: not one shipped migration waits for sqlparse's lexer.
    monkeypatch.setattr(sqlparse, "split", refuse)
    split_sql.cache_clear()
    for path in migrations:
        assert batches(path.read_text(), transactional(path.read_text())), path


# Pieces of SQL text: what a plain scan reads as sqlparse does...
_WORD = st.sampled_from(["CREATE", "INDEX", "CONCURRENTLY", "IF", "NOT", "EXISTS", "ON", "t", "x_1", "AS", "SELECT",
                         "CASE", "WHEN", "THEN", "LOOP", "FOR", "endpoint", "begins", "tag", "é", "1", "1.5", "::",
                         "=", "<>", "||", ",", ".", "-", "*", "%s"])
_STRING = st.text(st.sampled_from("a; --$'\n\t"), max_size=6).map(lambda s: "'" + s.replace("'", "''") + "'")
_NAME = st.text(st.sampled_from("a; -'"), min_size=1, max_size=5).map(lambda s: '"' + s + '"')
_BODY = st.builds(lambda tag, s: f"${tag}${s}${tag}$", st.sampled_from(["", "fn", "Q"]),
                  st.text(st.sampled_from("ab;$' \nBEGIN END"), max_size=12).filter(lambda s: "$" not in s))
_COMMENT = st.text(st.sampled_from("a; '$("), max_size=6).map(lambda s: "--" + s)
_SPACE = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\r", "\x0c", " \n\n"])
_ATOM = st.one_of(_WORD, _STRING, _NAME, _BODY)
_PARENS = st.lists(_ATOM, max_size=3).map(lambda xs: "(" + " ".join(xs) + ")")
_PLAIN = st.lists(st.one_of(_ATOM, _PARENS, _COMMENT.map(lambda c: c + "\n"), st.just(";"), _SPACE), max_size=25)
# ...and what sqlparse reads by rules of its own, where the plain scan must step aside.
_TRICKY = st.sampled_from(["BEGIN x; y;", "begin", "CREATE f DECLARE a; b;", "declare", "a GO b", "/* ; */", "#",
                           "\\", "`a;`", "[a;b]", "$", "'", '"', "(;)", ")", "$x$ ;", "E'\\';'", "# x;\n"])


@settings(max_examples=400, deadline=None)
@given(_PLAIN)
def test_the_plain_split_is_sqlparse_s_on_plain_text(pieces):
    text = "".join(p if p in (";",) or p.isspace() else f" {p} " for p in pieces)
    assert _split_plainly(text) == sqlparse.split(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_PLAIN.map("".join), _TRICKY), max_size=6))
@example([") x ;", "(;)"])  # sqlparse counts each statement's parentheses afresh
def test_the_plain_split_steps_aside_for_what_sqlparse_reads_otherwise(pieces):
    text = " ".join(pieces)
    plain = _split_plainly(text)
    assert plain is None or plain == sqlparse.split(text)


def test_migrations_read_their_head_and_ids_as_yoyo_does():
    # dbtool reads directives and computes tracking keys itself, so that reading state needs no yoyo.
    from yoyo.migrations import get_migration_hash, parse_metadata_from_sql_comments

    from dbtool.migrate.sqltext import leading_directives
    from dbtool.migrate.tree import load_tree

    heads = ["-- transactional: false\n-- depends: a\n-- depends: b\nSELECT 1;", "-- a comment\r\n\r\nSELECT 1;\r\nSELECT 2",
             "SELECT 1", "-- only comments\n-- transactional: true", "  --transactional:false\n\nCREATE INDEX x ON t (a)"]
    root = Path(__file__).resolve().parent.parent / "schemas"
    for service in sorted(p for p in root.iterdir() if p.is_dir()):
        for m in load_tree(service):
            assert m.hash == get_migration_hash(m.id)
            heads.append(m.text("up"))
    for head in heads:
        directives, _, sql = parse_metadata_from_sql_comments(head)
        assert leading_directives(head) == (directives, sql), head


@pytest.mark.parametrize("up, line", [
    ("CREATE TABLE a_items (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b_items (id int);\nSELECT 1/0;\n", 2),
    ("CREATE TABLE a_items (id int);\nROLLBACK;\n", 2),
])
def test_validate_and_migrate_refuse_a_migration_that_ends_its_own_transaction(cli, project, db, up, line):
    schemas = service(project, up)
    env = {"SVC_DATABASE_URL": db}
    for command in ("validate", "migrate"):
        result = cli(command, "svc", "--schemas-dir", schemas, env=env)
        assert result.exit_code == 2, result.output
        assert_no_crash(result)
        assert f"001_make_items.sql:{line}:" in result.stderr and "'-- transactional: false'" in result.stderr
    assert tables(db) == set()  # refused before any connection: nothing ran


def test_the_same_statements_are_fine_in_a_non_transactional_migration(cli, project, db):
    schemas = service(project, "-- transactional: false\nCREATE TABLE IF NOT EXISTS a_items (id int);\nCOMMIT;\n")
    result = cli("migrate", "svc", "--schemas-dir", schemas, env={"SVC_DATABASE_URL": db})
    assert result.exit_code == 0, result.output
    assert tables(db) == {"a_items"}


@pytest.mark.parametrize("ender, committed", [("COMMIT", True), ("ROLLBACK", False)])
def test_a_statement_that_ends_the_transaction_anyway_stops_the_run_and_says_what_was_committed(db, ender,
                                                                                               committed):
    # The second guard, which does not depend on parsing: the transaction must still be open after
    # every statement of a transactional migration.
    statements = [Statement("CREATE TABLE a_items (id int)", 1), Statement(ender, 2),
                  Statement("CREATE TABLE b_items (id int)", 3)]
    with psycopg.connect(db, autocommit=True) as conn:
        with pytest.raises(BadInput) as caught:
            with conn.transaction():
                _run(conn, "x.sql", statements, True)
    message = str(caught.value)
    assert message.startswith("x.sql:2: this statement ended the migration's transaction")
    assert ("committed (lines 1, 2)" in message) is committed
    assert ("nothing of this migration was applied" in message) is not committed
    assert tables(db) == ({"a_items"} if committed else set())  # b_items never ran


def test_a_deferred_foreign_key_that_fails_at_commit_is_bad_input_naming_the_file(cli, project, db):
    schemas = service(project, """CREATE TABLE a_items (id int PRIMARY KEY);
CREATE TABLE b_items (a_id int REFERENCES a_items (id) DEFERRABLE INITIALLY DEFERRED);
INSERT INTO b_items VALUES (42);
""")
    result = cli("migrate", "svc", "--schemas-dir", schemas, env={"SVC_DATABASE_URL": db})
    assert result.exit_code == 2, result.output
    assert_no_crash(result)
    line = one_error_line(result)
    assert "001_make_items.sql: refused at COMMIT" in line and "nothing of this migration was applied" in line
    assert tables(db) == set()


@pytest.mark.parametrize("directive", ["", "-- transactional: false\n"])
def test_a_migration_that_empties_search_path_like_a_pg_dump_file_applies_and_rolls_back(cli, project, db,
                                                                                         directive):
    # The next migration's unqualified name lands in public: the search_path was put back after it.
    schemas = service(project, f"""{directive}SELECT pg_catalog.set_config('search_path', '', false);
CREATE TABLE public.a_items (id int);
""", f"{directive}SELECT pg_catalog.set_config('search_path', '', false);\nDROP TABLE public.a_items;\n")
    (schemas / "svc" / "002_make_more.sql").write_text("CREATE TABLE b_items (id int);\n")  # unqualified
    (schemas / "svc" / "002_make_more.down.sql").write_text("DROP TABLE b_items;\n")
    env = {"SVC_DATABASE_URL": db}
    result = cli("migrate", "svc", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    assert tables(db) == {"a_items", "b_items"}
    assert cli("status", "svc", "--exit-code", "--schemas-dir", schemas, env=env).exit_code == 0
    result = cli("rollback", "svc", "--all", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    assert tables(db) == set()


def test_a_backend_terminated_mid_migration_is_the_unreachable_code_and_leaves_nothing(cli, project, db):
    schemas = service(project, """CREATE TABLE a_items (id int);
SELECT pg_terminate_backend(pg_backend_pid());
CREATE TABLE b_items (id int);
""")
    result = cli("migrate", "svc", "--schemas-dir", schemas, env={"SVC_DATABASE_URL": db})
    assert result.exit_code == 3, result.output
    assert_no_crash(result)
    assert "001_make_items.sql:2: the server ended the connection" in one_error_line(result)
    assert tables(db) == set()


def test_an_unwritable_explain_output_is_bad_input_before_any_query_runs(cli, project, migrated, tmp_path):
    _, env = migrated
    target = tmp_path / "missing" / "report.md"
    result = cli("explain", "course", "--output", target, "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 2, result.output
    assert_no_crash(result)
    assert str(target.parent) in one_error_line(result)
    assert not target.exists()


def test_a_schema_file_that_is_not_utf8_is_bad_input(cli, project, migrated):
    _, env = migrated
    (project / "schemas" / "identity" / "schema.sql").write_bytes(b"-- \xff\xfe broken\n")
    result = cli("schema", "check", "identity", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 2, result.output
    assert_no_crash(result)
    assert "schema.sql" in one_error_line(result)


def test_an_unexpected_error_is_one_line_with_the_internal_code_and_a_traceback_only_when_asked(
        cli, project, monkeypatch):
    import dbtool.migrate.tree as tree

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(tree, "load_tree", broken)
    schemas = project / "schemas"
    result = cli("validate", "--schemas-dir", schemas)
    assert result.exit_code == 70
    assert_no_crash(result)
    assert one_error_line(result) == ("error: internal error: ZeroDivisionError: a bug; rerun with --traceback"
                                " and report it")
    result = cli("validate", "--traceback", "--schemas-dir", schemas)
    assert result.exit_code == 70
    assert "Traceback (most recent call last)" in result.stderr


def test_a_service_folder_that_is_no_identifier_is_refused(cli, project):
    (project / "schemas" / "Bad-Svc").mkdir()
    result = cli("validate", "Bad-Svc", "--schemas-dir", project / "schemas")
    assert result.exit_code == 2
    assert_no_crash(result)
    assert "Bad-Svc: a service folder name must be a lower-case identifier" in one_error_line(result)
    assert "e.g. bad_svc" in one_error_line(result)
    assert cli("migrate", "--schemas-dir", project / "schemas").exit_code == 2  # every service: refused too


def test_a_failing_down_file_says_rolling_back_not_applied(cli, project, db):
    schemas = service(project, "CREATE TABLE a_items (id int);\n", "DROP TABLE no_such_table;\n")
    env = {"SVC_DATABASE_URL": db}
    assert cli("migrate", "svc", "--schemas-dir", schemas, env=env).exit_code == 0
    result = cli("rollback", "svc", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "001_make_items.down.sql:1:" in line and "nothing of this rollback took effect" in line
    assert "applied;" not in line.replace("stays applied", "")


def test_a_damaged_embedded_data_folder_is_one_line_naming_it(project, tmp_path):
    # Separate processes, as a user runs them: the server package keeps state within one.
    env = {**os.environ, "DBTOOL_DATA_DIR": str(tmp_path / "data")}

    def dbtool(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dbtool", *args, "--schemas-dir", str(project / "schemas")],
                              env=env, capture_output=True, text=True, timeout=120)

    assert dbtool("server", "start").returncode == 0
    assert dbtool("server", "stop").returncode == 0
    (tmp_path / "data" / "pgdata" / "global" / "pg_control").unlink()
    done = dbtool("status")
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "data folder is damaged (global/pg_control is missing)" in lines[0] and str(tmp_path) in lines[0]


def test_migrate_on_the_embedded_server_says_it_is_left_running(cli, project, tmp_path):
    data = tmp_path / "data"
    try:
        result = cli("migrate", "identity", "--schemas-dir", project / "schemas", env={"DBTOOL_DATA_DIR": str(data)})
        assert result.exit_code == 0, result.output
        assert "'dbtool server stop' stops it" in result.stdout.splitlines()[-1]
    finally:
        from dbtool import server

        server.stop(data)


def test_a_down_file_the_guard_cannot_parse_refuses_the_rollback_unless_forced(cli, project, db):
    schemas = service(project, "CREATE TABLE a_items (id int);\n", "DROP TABLE a_items;\nDROPP TABLE nothing;\n")
    env = {"SVC_DATABASE_URL": db}
    assert cli("migrate", "svc", "--schemas-dir", schemas, env=env).exit_code == 0
    result = cli("rollback", "svc", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 4
    assert_no_crash(result)
    assert "001_make_items.down.sql:2: the data-loss guard cannot parse this statement" in one_error_line(result)
    assert tables(db) == {"a_items"}
    forced = cli("rollback", "svc", "--force", "--schemas-dir", schemas, env=env)
    assert forced.exit_code == 2  # forced past the guard, the server refuses the typo: nothing rolled back
    assert tables(db) == {"a_items"}


LEGACY = """
CREATE TYPE mood AS ENUM ('calm', 'busy');
CREATE TABLE authors (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL, state mood);
CREATE TABLE books (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    author_id uuid NOT NULL REFERENCES authors (id), title text NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX idx_books_author_id ON books (author_id);
CREATE VIEW book_titles AS SELECT title FROM books;
"""


def test_baseline_adopts_a_live_database_and_the_same_folder_builds_it_again(cli, project, new_db):
    live, empty = new_db("legacy"), new_db("rebuilt")
    with connect(live) as conn:
        conn.execute(LEGACY)
        conn.execute("INSERT INTO authors (name) VALUES ('Ada')")
    (project / "schemas" / "legacy").mkdir()
    schemas = project / "schemas"
    result = cli("baseline", "legacy", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": live})
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "001_baseline.sql" in result.stdout
    assert "would add: created trigger update_books_updated_at on books" in result.stdout  # shown, not done
    down = (schemas / "legacy" / "001_baseline.down.sql").read_text()
    assert down.startswith("-- dbtool: irreversible")
    status = cli("status", "legacy", "--exit-code", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": live})
    assert status.exit_code == 0, status.output
    with connect(live) as conn:  # the data stayed, nothing was rebuilt, no trigger was added yet
        assert conn.execute("SELECT name FROM authors").fetchall() == [("Ada",)]
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal").fetchone()[0] == 0
    rebuilt = cli("migrate", "legacy", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": empty})
    assert rebuilt.exit_code == 0, rebuilt.output
    assert cli("migrate", "legacy", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": live}).exit_code == 0
    assert cli("schema", "dump", "legacy", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": live}).exit_code == 0
    check = cli("schema", "check", "legacy", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": live})
    assert check.exit_code == 0, check.output
    again = cli("baseline", "legacy", "--schemas-dir", schemas, env={"LEGACY_DATABASE_URL": live})
    assert again.exit_code == 4
    assert_no_crash(again)
    assert "already has migrations" in one_error_line(again)


def test_baseline_refuses_a_database_that_dbtool_already_manages(cli, project, migrated):
    dbs, _ = migrated
    (project / "schemas" / "legacy").mkdir()
    result = cli("baseline", "legacy", "--schemas-dir", project / "schemas",
                 env={"LEGACY_DATABASE_URL": dbs["course"]})
    assert result.exit_code == 4
    assert "already records applied migrations" in one_error_line(result)
    assert not list((project / "schemas" / "legacy").iterdir())


@pytest.fixture
def weak_role(server):
    """A login role with no rights on anything it did not create; dropped afterwards."""
    name = f"weak_{os.getpid()}"
    with psycopg.connect(server.admin, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {name}")
        conn.execute(f"CREATE ROLE {name} LOGIN")
    yield name
    with psycopg.connect(server.admin, autocommit=True) as conn:
        for (db,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 't\\_%%'").fetchall():
            with psycopg.connect(server.conninfo(db), autocommit=True) as other:
                other.execute(f"DROP OWNED BY {name}")
        conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.mark.parametrize("command", [["status", "course"], ["audit-indexes", "course"], ["seed", "course"],
                                     ["migrate", "course"], ["triggers", "course"], ["explain", "course"]])
def test_a_role_without_rights_gets_one_line_naming_the_privilege(cli, project, migrated, server, weak_role,
                                                                   command):
    dbs, _ = migrated
    dsn = server.conninfo(psycopg.conninfo.conninfo_to_dict(dbs["course"])["dbname"], user=weak_role)
    with connect(dbs["course"]) as conn:  # PostgreSQL 15's default: no CREATE on public for others
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    folder = project / "schemas" / "course"
    n = len(list(folder.glob("0*.down.sql"))) + 1
    (folder / f"{n:03d}_add_notes.sql").write_text("CREATE TABLE course_notes (id int);\n")
    (folder / f"{n:03d}_add_notes.down.sql").write_text("DROP TABLE course_notes;\n")
    env = {"COURSE_DATABASE_URL": dsn, "IDENTITY_DATABASE_URL": dsn}
    result = cli(*command, "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code in (3, 4), result.output
    assert_no_crash(result)
    line = one_error_line(result)
    assert "permission denied" in line or "not allowed" in line, line
    assert "GRANT " in line or "owner" in line, line


@pytest.mark.parametrize("up, needle", [
    # No position from the server: the count of statements that completed names the one that failed.
    ("CREATE TABLE a_items (id int);\nINSERT INTO a_items VALUES (-1);\n\nALTER TABLE a_items\n"
     "  ADD CONSTRAINT a_items_positive CHECK (id > 0);\n", "001_make_items.sql:4: check constraint"),
    ("-- statement-timeout: 200ms\nCREATE TABLE a_items (id int);\nSELECT pg_sleep(5);\n",
     "001_make_items.sql:3: canceling statement due to statement timeout"),  # exit 3: not the statement's fault
    # A position, in the whole file the server was sent.
    ("CREATE TABLE a_items (id int);\n/* a; comment */\nCREATE TABLE b_items (\n  id nosuchtype);\n",
     "001_make_items.sql:4: type \"nosuchtype\" does not exist"),
])
def test_a_file_sent_whole_still_names_the_line_of_the_statement_that_failed(cli, project, db, up, needle):
    schemas = service(project, up)
    result = cli("migrate", "svc", "--schemas-dir", schemas, env={"SVC_DATABASE_URL": db})
    assert result.exit_code == (3 if "timeout" in needle else 2), result.output
    assert_no_crash(result)
    line = one_error_line(result)
    assert needle in line and "nothing of this migration was applied" in line, line
    assert tables(db) == set()


def test_a_transactional_file_goes_in_one_message_and_a_lone_statement_as_it_is():
    from dbtool.migrate.tree import Migration

    def migration(up: str) -> Migration:
        return Migration("svc", 1, "x", Path("001_x.sql"), Path("001_x.down.sql"), up.encode(), b"SELECT 1;")

    text = "-- a head\nCREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
    assert migration(text).batches() == [Statement(text, 0)]
    lone = "-- transactional: false\n-- why\n\nCREATE INDEX CONCURRENTLY i ON a (id);\n-- after\n"
    assert migration(lone).batches() == [Statement("CREATE INDEX CONCURRENTLY i ON a (id);\n-- after\n", 4)]
    two = "-- transactional: false\nDROP INDEX CONCURRENTLY i;\nDROP INDEX CONCURRENTLY j;\n"
    assert [st.line for st in migration(two).batches()] == [2, 3]
    ends = "CREATE TABLE a (id int);\nCOMMIT;\n"
    assert [st.line for st in migration(ends).batches()] == [1, 2]  # split, so the guard can name line 2


def yoyo_schema(conninfo: str) -> tuple[list, list]:
    with connect(conninfo) as conn:
        columns = conn.execute(
            """SELECT table_name, column_name, data_type, character_maximum_length, is_nullable
               FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, ordinal_position"""
        ).fetchall()
        keys = conn.execute(
            """SELECT conrelid::regclass::text, contype, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE connamespace = 'public'::regnamespace ORDER BY 1, 3"""
        ).fetchall()
        versions = conn.execute("SELECT version FROM _yoyo_version").fetchall()
    return columns + versions, keys


def test_a_fresh_database_gets_the_tables_yoyo_itself_would_make(new_db):
    from dbtool.migrate.tracking import Tracking, tracking

    ours, theirs = new_db(), new_db()
    with connect(ours) as conn:
        tracking(conn)
    with connect(theirs) as conn:  # yoyo's own path: its lock row, v1, then the upgrade to v2
        backend = Tracking(conn)
        backend.create_lock_table()
        backend.ensure_internal_schema_updated()
        tracking(conn)  # adds only dbtool's checksum table
    assert yoyo_schema(ours) == yoyo_schema(theirs)
    with connect(ours) as conn:
        from yoyo import internalmigrations

        assert not internalmigrations.needs_upgrading(Tracking(conn))


def test_tables_of_an_older_yoyo_are_upgraded_by_yoyo_keeping_what_was_applied(db):
    from dbtool.migrate.tracking import tracking

    with connect(db) as conn:  # yoyo before 6.0: one table of ids
        conn.execute("CREATE TABLE _yoyo_migration (id VARCHAR(191) NOT NULL PRIMARY KEY, ctime TIMESTAMP)")
        conn.execute("INSERT INTO _yoyo_migration VALUES ('001_old', now())")
        tracking(conn)
        assert conn.execute("SELECT max(version) FROM _yoyo_version").fetchone()[0] == 2
        assert conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall() == [("001_old",)]


@pytest.mark.parametrize("text, line", [
    ("CREATE TABLE t (id int);\ncopy t (id) from stdin;\n", 2), ("COPY (SELECT 1) TO STDOUT WITH CSV;", 1),
    ("-- COPY t FROM STDIN;\nSELECT 'COPY t FROM STDIN';", None), ("COPY t FROM '/srv/rows.csv';", None),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ COPY t FROM STDIN $$;", None),
])
def test_a_copy_through_psqls_stream_is_found_only_where_it_is_a_statement(text, line):
    from dbtool.migrate.sqltext import client_copy_line

    assert client_copy_line(text) == line


def test_a_tracking_table_changed_by_hand_that_refuses_the_record_leaves_nothing_applied(cli, project, db):
    schemas = service(project, "CREATE TABLE a_items (id int);\n")
    with connect(db) as conn:  # dbtool's checksum table, with a constraint no checksum meets
        conn.execute("""CREATE TABLE _dbtool_checksum (migration_id TEXT PRIMARY KEY,
            up_sha256 TEXT NOT NULL CHECK (up_sha256 = 'x'), down_sha256 TEXT NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
    result = cli("migrate", "svc", "--schemas-dir", schemas, env={"SVC_DATABASE_URL": db})
    assert result.exit_code == 4, result.output
    line = one_error_line(result)
    assert "the tracking table _dbtool_checksum refused its record" in line, line
    assert "nothing of this migration was applied" in line
    assert tables(db) == set()
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0] == 0


def test_without_pipeline_support_the_record_goes_statement_by_statement_and_the_same_is_recorded(
        cli, project, db, monkeypatch):
    # libpq before 14 (psycopg[c] or a system libpq) has no pipeline mode: same rows, more round trips.
    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    schemas = service(project, "CREATE TABLE a_items (id int);\n")
    (schemas / "svc" / "002_index_items.sql").write_text(
        "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS a_items_id ON a_items (id);\n")
    (schemas / "svc" / "002_index_items.down.sql").write_text("-- transactional: false\nDROP INDEX CONCURRENTLY a_items_id;\n")
    env = {"SVC_DATABASE_URL": db}
    result = cli("migrate", "svc", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    with connect(db) as conn:
        ids = conn.execute("SELECT m.migration_id FROM _yoyo_migration m JOIN _dbtool_checksum c"
                           " USING (migration_id) ORDER BY 1").fetchall()
        assert ids == [("001_make_items",), ("002_index_items",)]
        assert conn.execute("SELECT count(*) FROM _yoyo_log WHERE operation = 'apply'").fetchone()[0] == 2
    assert cli("rollback", "svc", "--all", "--schemas-dir", schemas, env=env).exit_code == 0
    assert tables(db) == set()


@pytest.mark.parametrize("password", ["e", "o", "on"])
def test_a_short_password_is_hidden_where_it_stands_and_nowhere_else(cli, project, password):
    # Masked as a whole token only: "e" hidden in "x:e@", not in every word holding an e.
    env = {"COURSE_DATABASE_URL": f"postgresql://x:{password}@127.0.0.1:1/db"}
    line = one_error_line(cli("status", "course", "--schemas-dir", project / "schemas", env=env), 3)
    assert "cannot connect to x@127.0.0.1:1/db" in line, line
    assert "refused" in line and "check that" in line and "server" in line, line
    assert "***" not in line.replace(":***@", ""), line


@pytest.mark.parametrize("args, option", [
    (["explain", "course", "--timeout", "nan"], "--timeout nan"),
    (["explain", "course", "--timeout", "inf"], "--timeout inf"),
    (["explain", "course", "--timeout", "1e300"], "--timeout 1e+300"),
    (["migrate", "course", "--lock-timeout", "nan"], "--lock-timeout nan"),
    (["migrate", "course", "--wait", "inf"], "--wait inf"),
    (["migrate", "course", "--statement-timeout", "9999999999h"], "--statement-timeout: '9999999999h'"),
    (["migrate", "course", "--ddl-lock-timeout", "25d"], "--ddl-lock-timeout: '25d'"),
])
def test_a_number_no_timeout_can_be_is_bad_input_before_the_database(cli, project, migrated, args, option):
    dbs, env = migrated
    folder = project / "schemas" / "course"
    n = len(list(folder.glob("0*.down.sql"))) + 1
    (folder / f"{n:03d}_add_notes.sql").write_text("CREATE TABLE course_notes (id int);\n")
    (folder / f"{n:03d}_add_notes.down.sql").write_text("DROP TABLE course_notes;\n")
    line = one_error_line(cli(*args, "--schemas-dir", project / "schemas", env=env), 2)
    assert line.startswith(f"error: {option}"), line
    assert len(line) < 200, line
    assert "course_notes" not in tables(dbs["course"])


def test_an_unlock_refused_on_the_way_out_does_not_hide_the_error_that_ended_the_run(db):
    from dbtool.migrate.tracking import advisory_lock

    with connect(db) as conn:
        conn.autocommit = True
        with pytest.raises(psycopg.errors.DivisionByZero):
            with advisory_lock(conn, 1.0, "t"):
                conn.execute("BEGIN")
                conn.execute("SELECT 1 / 0")  # the transaction is aborted: the unlock after it fails


@pytest.mark.parametrize("command", [["migrate"], ["lint", "--format", "json"], ["lint"]])
def test_a_server_message_quoting_sql_across_lines_is_still_one_error_line(cli, project, db, command):
    schemas = service(project, "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1;\n\nCREATE TABLE a_items (id int);\n")
    args = [*command, schemas / "svc"] if command[0] == "lint" else [*command, "svc", "--schemas-dir", schemas]
    result = cli(*args, env={"SVC_DATABASE_URL": db})
    line = one_error_line(result, 2)
    assert "unterminated dollar-quoted string" in line, line
    assert tables(db) == set()


def test_a_statement_a_signal_cancelled_is_reported_as_the_interruption(db, capsys):
    # Whatever command ran it: the cancelled statement's error is the signal's doing, exit 130.
    import signal
    import threading

    import typer

    from dbtool import server as servers
    from dbtool.cli import boundary

    with pytest.raises(typer.Exit) as stopped:
        with boundary(False, []), servers.connect(db) as conn:
            threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
            conn.execute("SELECT pg_sleep(20)")
    assert stopped.value.exit_code == 130
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: interrupted by SIGINT; the running statement was cancelled"), line
    assert "canceling statement due to user request" in line, line


def test_a_service_folder_too_long_for_its_database_name_is_refused(cli, project):
    name = "s" * 56  # s..._db_prod would be 64 bytes: PostgreSQL would cut it
    (project / "schemas" / name).mkdir()
    line = one_error_line(cli("validate", name, "--schemas-dir", project / "schemas"), 2)
    assert f"{name}: a service folder name may have at most 55 characters" in line, line
    (project / "schemas" / name).rename(project / "schemas" / name[:55])
    assert "at most" not in cli("validate", name[:55], "--schemas-dir", project / "schemas").output


def test_a_migration_with_a_byte_order_mark_fails_validate_not_migrate(cli, project):
    schemas = service(project, "\ufeffCREATE TABLE a_items (id int);\n")
    line = one_error_line(cli("validate", "svc", "--schemas-dir", schemas), 2)
    assert "001_make_items.sql: starts with a byte order mark; save the file as UTF-8 without BOM" in line, line


def _database_name(conninfo: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(conninfo)["dbname"]


def test_a_read_only_database_is_a_server_condition_naming_the_setting_not_a_bad_statement(cli, project, db, server):
    with connect(server.admin) as conn:
        conn.execute(f'ALTER DATABASE "{_database_name(db)}" SET default_transaction_read_only = on')
    schemas = service(project, "CREATE TABLE a_items (id int);")
    line = one_error_line(cli("migrate", "svc", "--schemas-dir", schemas, env={"SVC_DATABASE_URL": db}), 3)
    assert "read-only" in line and "default_transaction_read_only" in line and "primary" in line, line
    assert "fix the statement" not in line and "went away" not in line, line
    assert tables(db) == set()


def test_a_migration_statement_that_outlives_the_statement_timeout_is_exit_3_and_applies_nothing(cli, project,
                                                                                                    db):
    schemas = service(project, "CREATE TABLE a_items (id int);\nSELECT pg_sleep(2);\n")
    result = cli("migrate", "svc", "--statement-timeout", "100ms", "--schemas-dir", schemas,
                 env={"SVC_DATABASE_URL": db})
    line = one_error_line(result, 3)
    assert "001_make_items.sql:2:" in line and "statement_timeout" in line, line
    assert "nothing of this migration was applied" in line and "fix the statement" not in line, line
    assert tables(db) == set()


def test_a_seed_cut_short_by_the_databases_statement_timeout_is_exit_3_and_writes_nothing(cli, project, migrated,
                                                                                           server):
    dbs, env = migrated
    with connect(server.admin) as conn:
        conn.execute(f"ALTER DATABASE \"{_database_name(dbs['course'])}\" SET statement_timeout = '2ms'")
    line = one_error_line(cli("seed", "course", "--scale", "20", "--schemas-dir", project / "schemas", env=env), 3)
    assert line.startswith("error: course: ") and "statement_timeout" in line, line
    # On a busy machine even the read of the migration state before the load can run out of time.
    assert "synthetic.toml" not in line, line
    assert "nothing of course was written" in line or ": reading its migration state: " in line, line
    with connect(dbs["course"]) as conn:
        conn.execute("SET statement_timeout = 0")  # the check itself must not run out of the 2 ms
        assert conn.execute("SELECT count(*) FROM courses").fetchone()[0] == 0


@pytest.mark.parametrize("args", [["validate"], ["lint"], ["lint", "{folder}"], ["lint", "{fifo}"]])
def test_a_fifo_among_the_migrations_is_refused_naming_it_instead_of_hanging(project, args):
    # A subprocess with a timeout: reading a FIFO waits for a writer forever, so the old failure was a hang.
    folder = project / "schemas" / "course"
    fifo = folder / "009_pipe.sql"
    os.mkfifo(fifo)
    argv = [a.format(folder=folder, fifo=fifo) for a in args]
    result = subprocess.run([sys.executable, "-m", "dbtool", *argv, "--schemas-dir", str(project / "schemas")],
                            capture_output=True, text=True, timeout=60, cwd=project)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert any(line.startswith(f"error: {fifo}: not a regular file") for line in result.stderr.splitlines()), \
        result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("search_path", ["nosuchschema", "app"])
def test_a_search_path_set_since_the_last_migrate_is_refused_not_read_as_a_database_that_applied_nothing(
        cli, project, migrated, server, search_path):
    dbs, env = migrated
    with connect(dbs["course"]) as conn:
        conn.execute("CREATE SCHEMA app")
        conn.execute(f'ALTER DATABASE "{_database_name(dbs["course"])}" SET search_path = {search_path}')
    schemas = project / "schemas"
    for command in (["status", "course"], ["migrate", "course"]):
        line = one_error_line(cli(*command, "--schemas-dir", schemas, env=env), 4)
        assert "public._yoyo_migration records this database's migrations" in line, line
        assert f"search_path ({search_path})" in line and "RESET search_path" in line, line
    with connect(dbs["course"]) as conn:  # nothing made in the schema the search_path points at
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'app'").fetchone()[0] == 0
    with connect(server.admin) as conn:
        conn.execute(f'ALTER DATABASE "{_database_name(dbs["course"])}" RESET search_path')
    assert cli("status", "course", "--exit-code", "--schemas-dir", schemas, env=env).exit_code == 0


@pytest.mark.parametrize("dropped", ["_yoyo_log", "_yoyo_version"])
def test_a_tracking_table_dropped_by_hand_is_refused_naming_it_before_anything_is_applied(cli, project, migrated,
                                                                                         dropped):
    dbs, env = migrated
    with connect(dbs["chat"]) as conn:
        conn.execute(f"DROP TABLE {dropped}")
    add_migration(project / "schemas" / "chat", "add_chat_extra", "CREATE TABLE chat_extra (id int);",
                  "DROP TABLE chat_extra;")
    line = one_error_line(cli("migrate", "chat", "--schemas-dir", project / "schemas", env=env), 4)
    assert f"yoyo's tracking tables are incomplete: {dropped} missing" in line and "backup" in line, line
    with connect(dbs["chat"]) as conn:
        assert conn.execute("SELECT to_regclass('chat_extra')").fetchone()[0] is None


def test_an_interrupted_concurrent_index_build_says_it_left_an_invalid_index_and_the_rerun_builds_it(project, db):
    import signal
    import time

    folder = project / "schemas" / "svc"
    folder.mkdir()
    # The build calls slow() once per row; slowness says how long, so the rerun can be quick.
    add_migration(folder, "make_items", """CREATE TABLE slowness (s float8);
INSERT INTO slowness VALUES (0.5);
CREATE FUNCTION slow(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1 FROM pg_sleep((SELECT s FROM public.slowness))';
CREATE TABLE items (id int);
INSERT INTO items SELECT generate_series(1, 60);""", "DROP TABLE items; DROP FUNCTION slow(int); DROP TABLE slowness;")
    add_migration(folder, "index_items", "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS"
                  " idx_items_slow ON items (slow(id));", "DROP INDEX CONCURRENTLY IF EXISTS idx_items_slow;")
    command = [sys.executable, "-m", "dbtool", "migrate", "svc", "--schemas-dir", str(project / "schemas")]
    env = {**os.environ, "SVC_DATABASE_URL": db}
    running = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    invalid = "SELECT count(*) FROM pg_index WHERE NOT indisvalid AND indexrelid = to_regclass('idx_items_slow')"
    with connect(db) as conn:
        deadline = time.monotonic() + 30
        while conn.execute(invalid).fetchone()[0] == 0:  # the build has started: its index exists, invalid
            assert running.poll() is None and time.monotonic() < deadline, running.communicate()
            time.sleep(0.05)
        running.send_signal(signal.SIGINT)
        _, err = running.communicate(timeout=30)
        assert running.returncode == 130, err
        assert len(err.strip().splitlines()) == 1 and "002_index_items.sql" in err, err
        assert "left an invalid index, which the rerun drops and builds again" in err, err
        assert conn.execute(invalid).fetchone()[0] == 1  # as the line says
        conn.execute("UPDATE slowness SET s = 0")
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    with connect(db) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_items_slow'::regclass"
                            ).fetchone()[0] is True


def test_a_record_refused_inside_the_pipeline_is_one_stderr_line_from_the_real_command(project, db):
    # psycopg may log a second error while leaving the failed pipeline (seen now and then, not every
    # run); in-process runs do not show it, so the real command is run.
    schemas = service(project, "CREATE TABLE a_items (id int);\n")
    with connect(db) as conn:
        conn.execute("""CREATE TABLE _dbtool_checksum (migration_id TEXT PRIMARY KEY,
            up_sha256 TEXT NOT NULL CHECK (up_sha256 = 'x'), down_sha256 TEXT NOT NULL,
            recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
    result = subprocess.run([sys.executable, "-m", "dbtool", "migrate", "svc", "--schemas-dir", str(schemas)],
                            env={**os.environ, "SVC_DATABASE_URL": db}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 4, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: 001_make_items: the tracking table"), result.stderr


def test_a_connection_a_worker_closes_while_the_signal_cancels_does_not_make_it_nothing_running(db):
    # The handler decided "nothing was running" after cancelling, when a worker thread could have
    # closed its connection meanwhile: that line then hid what the worker was still doing.
    import signal

    from dbtool import signals

    conn = psycopg.connect(db, autocommit=True)
    cancel = conn.cancel_safe

    def cancel_then_close(timeout: float) -> None:  # what a worker's close in between looks like
        cancel(timeout=timeout)
        conn.close()

    conn.cancel_safe = cancel_then_close
    signals.track(conn)
    try:
        signals._handle(signal.SIGTERM, None)  # returns: a connection was open when the signal came
        assert signals.received() == signal.SIGTERM and conn.closed
        with pytest.raises(signals.Interrupted, match="nothing was running"):
            signals._handle(signal.SIGTERM, None)  # now nothing is open: stop at once
    finally:
        signals._stopping.clear()
        conn.close()

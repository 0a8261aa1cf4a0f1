"""dbtool verify and dbtool schema dump|check, through the command line, on the test server."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCHEMAS, connect, one_error_line, public_tables
from fleet import SERVICES
from psycopg import sql

from dbtool.migrate.tree import load_tree
from dbtool.schemafile.dump import SCHEMA_FILE
from dbtool.schemafile.verify import (
    VerifyEvents,
    VerifyReport,
    _updates_keep_updated_at,
)


@pytest.fixture(autouse=True)
def no_outside_settings(monkeypatch):
    """A scratch server or pg_dump set in the shell must not change what these tests see."""
    monkeypatch.delenv("DBTOOL_SCRATCH_DSN", raising=False)
    monkeypatch.delenv("DBTOOL_PG_DUMP", raising=False)


def scratch_databases(server) -> list[str]:
    with connect(server.admin) as conn:
        return [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%\\_scratch\\_%'")]


def verify(cli, project: Path, server, *args: str, env: dict[str, str] | None = None):
    return cli("verify", *args, "--scratch-dsn", server.admin, "--schemas-dir", project / "schemas", env=env)


def shipped(service: str) -> list[str]:
    """The ids of a service's shipped migrations, oldest first."""
    return [m.id for m in load_tree(SCHEMAS / service)]


def next_number(service: str) -> str:
    return f"{len(shipped(service)) + 1:03d}"


def failed(report: dict) -> list[dict]:
    return [c for c in report["checks"] if not c["ok"]]


def test_every_service_verifies_and_no_scratch_database_is_left(cli, project, server):
    before = scratch_databases(server)
    result = verify(cli, project, server, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and failed(report) == []
    assert sorted(report["services"]) == SERVICES
    for service in SERVICES:
        names = [c["check"] for c in report["checks"] if c["service"] == service]
        for m in load_tree(SCHEMAS / service):
            assert f"up {m.id}" in names
            assert f"down {m.id} restores the schema from before its up" in names
        assert "schema.sql matches the migrations" in names
        assert "triggers: a second sync changes nothing" in names
        assert "triggers: an UPDATE sets updated_at" in names
        seeds = next(c for c in report["checks"] if c["service"] == service and c["check"].startswith("seeds"))
        assert re.match(r"[1-9]\d* row\(s\) from", seeds["detail"]), seeds
    assert scratch_databases(server) == before == []


def test_human_output_is_a_line_per_check(cli, project, server):
    result = verify(cli, project, server, "identity")
    assert result.exit_code == 0, result.output
    assert "  ok      down 002_create_refresh_tokens_table restores the schema from before its up" in result.stdout
    assert "all hold; scratch databases dropped" in result.stdout


def test_without_scratch_dsn_it_builds_beside_the_service_database_and_leaves_that_alone(cli, project, new_db, server):
    live = new_db("identity")
    result = cli("verify", "identity", "--schemas-dir", project / "schemas", env={"IDENTITY_DATABASE_URL": live})
    assert result.exit_code == 0, result.output
    assert public_tables(live) == set()  # verify never migrates the service's own database
    assert scratch_databases(server) == []


def test_a_down_file_that_does_not_undo_its_up_fails_naming_the_migration(cli, project, server):
    folder, n = project / "schemas" / "identity", next_number("identity")
    (folder / f"{n}_add_users_name_index.sql").write_text("CREATE INDEX idx_users_name ON users (name);\n")
    (folder / f"{n}_add_users_name_index.down.sql").write_text("-- forgot the index\nSELECT 1;\n")
    result = verify(cli, project, server, "identity", "--json")
    assert result.exit_code == 1, result.output
    checks = failed(json.loads(result.stdout))
    down = next(c for c in checks if c["check"].startswith(f"down {n}_add_users_name_index"))
    assert f"{n}_add_users_name_index.down.sql does not undo {n}_add_users_name_index.sql" in down["detail"]
    assert any(o.startswith("INDEX idx_users_name: only in the schema after") for o in down["objects"])
    assert "+CREATE INDEX idx_users_name ON public.users USING btree (name);" in down["diff"]
    assert scratch_databases(server) == []

    human = verify(cli, project, server, "identity")
    assert human.exit_code == 1
    assert f"FAILED  down {n}_add_users_name_index restores the schema from before its up" in human.stdout
    assert "identity: INDEX idx_users_name: only in the schema after" in human.stdout


def test_a_failing_statement_fails_the_service_and_the_others_still_run(cli, project, server):
    folder, n = project / "schemas" / "chat", next_number("chat")
    (folder / f"{n}_broken.sql").write_text("ALTER TABLE chat_sessions ADD COLUMN x nosuchtype;\n")
    (folder / f"{n}_broken.down.sql").write_text("ALTER TABLE chat_sessions DROP COLUMN x;\n")
    result = verify(cli, project, server, "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    [bad] = failed(report)
    assert bad["service"] == "chat" and bad["check"] == f"up {n}_broken"
    assert f"{n}_broken.sql:1: type \"nosuchtype\" does not exist" in bad["detail"]
    assert {c["service"] for c in report["checks"] if c["ok"]} == set(SERVICES)
    assert scratch_databases(server) == []


def test_an_irreversible_migration_stops_the_walk_down_without_failing(cli, project, server):
    folder, n = project / "schemas" / "identity", next_number("identity")
    (folder / f"{n}_add_users_name_index.sql").write_text("CREATE INDEX idx_users_name ON users (name);\n")
    (folder / f"{n}_add_users_name_index.down.sql").write_text("-- dbtool: irreversible kept for good\n")
    assert cli("schema", "dump", "identity", "--scratch-dsn", server.admin,
               "--schemas-dir", project / "schemas").exit_code == 0
    result = verify(cli, project, server, "identity", "--json")
    assert result.exit_code == 0, result.output
    names = [c["check"] for c in json.loads(result.stdout)["checks"]]
    assert f"down {n}_add_users_name_index" in names
    assert not any(name.startswith(f"down {shipped('identity')[-1]}") for name in names)


def test_a_stale_schema_file_fails_verify_and_check_until_dumped_again(cli, project, server):
    path = project / "schemas" / "identity" / SCHEMA_FILE
    committed = path.read_text()
    block = "--\n-- Name: idx_users_role; Type: INDEX; Schema: public; Owner: -\n--\n\n" \
            "CREATE INDEX idx_users_role ON public.users USING btree (role);\n\n\n"
    assert block in committed
    path.write_text(committed.replace(block, ""))

    result = verify(cli, project, server, "identity", "--json")
    assert result.exit_code == 1, result.output
    [bad] = failed(json.loads(result.stdout))
    assert bad["check"] == "schema.sql matches the migrations"
    assert "is stale or was edited by hand; run 'dbtool schema dump identity'" in bad["detail"]
    assert bad["objects"] == ["INDEX idx_users_role: only in what the migrations build, not in " + str(path)]

    check = cli("schema", "check", "identity", "--scratch-dsn", server.admin, "--schemas-dir", project / "schemas",
                "--json", env={"IDENTITY_DATABASE_URL": server.conninfo("verify_no_such_db")})
    assert check.exit_code == 1, check.output
    [data] = json.loads(check.stdout)
    assert data["schema_file"]["state"] == "stale" and data["live"]["state"] == "not compared"
    assert "does not exist yet" in data["notes"][0]

    dump = cli("schema", "dump", "identity", "--scratch-dsn", server.admin,
               "--schemas-dir", project / "schemas")
    assert dump.exit_code == 0, dump.output
    assert path.read_text() == committed  # the same bytes as the committed file: the dump is deterministic
    assert verify(cli, project, server, "identity").exit_code == 0
    assert scratch_databases(server) == []


def test_a_missing_schema_file_fails(cli, project, server):
    (project / "schemas" / "chat" / SCHEMA_FILE).unlink()
    result = verify(cli, project, server, "chat", "--json")
    assert result.exit_code == 1
    [bad] = failed(json.loads(result.stdout))
    assert "schema.sql does not exist; run 'dbtool schema dump chat'" in bad["detail"]


@pytest.fixture
def live_course(cli, project, new_db):
    conninfo = new_db("course")
    env = {"COURSE_DATABASE_URL": conninfo}
    assert cli("migrate", "course", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    return conninfo, env


def test_hand_made_drift_is_reported_object_by_object(cli, project, server, live_course):
    conninfo, env = live_course
    args = ("schema", "check", "course", "--scratch-dsn", server.admin, "--schemas-dir", project / "schemas")
    clean = cli(*args, env=env)
    assert clean.exit_code == 0, clean.output
    assert "the live database" in clean.stdout and "matches the migrations" in clean.stdout
    with connect(conninfo) as conn:
        conn.execute("DROP INDEX idx_courses_price")
        conn.execute("ALTER TABLE courses ADD COLUMN notes TEXT")
    before = public_tables(conninfo)

    result = cli(*args, env=env)
    assert result.exit_code == 1, result.output
    assert "course: INDEX idx_courses_price: missing from the live database" in result.stdout
    assert "course: TABLE courses: column notes only in the live database (text)" in result.stdout
    assert "-CREATE INDEX idx_courses_price ON public.courses USING btree (price);" in result.stdout

    data = json.loads(cli(*args, "--json", env=env).stdout)[0]
    assert data["schema_file"]["state"] == "ok"
    assert data["live"]["state"] == "drift" and data["live"]["compared_version"] == len(shipped("course"))
    assert sorted(data["live"]["objects"]) == [
        "INDEX idx_courses_price: missing from the live database",
        "TABLE courses: column notes only in the live database (text)",
    ]
    with connect(conninfo) as conn:  # check only reads the live database
        assert conn.execute("SELECT to_regclass('idx_courses_price')").fetchone()[0] is None
    assert public_tables(conninfo) == before
    assert scratch_databases(server) == []


def test_a_live_database_behind_is_compared_at_its_own_version(cli, project, server, live_course):
    conninfo, env = live_course
    assert cli("rollback", "course", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = cli("schema", "check", "course", "--json", "--scratch-dsn", server.admin,
                 "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)[0]
    *kept, last = shipped("course")
    assert data["live"] == {"database": data["live"]["database"], "state": "ok", "compared_version": len(kept),
                            "objects": [], "diff": ""}
    assert data["notes"] == [f"the live database is behind: 1 pending migration(s) ({last});"
                             f" compared with the migrations up to {len(kept):03d}; 'dbtool migrate' applies the rest"]
    with connect(conninfo) as conn:
        conn.execute("DROP INDEX idx_enrollments_status")
    again = cli("schema", "check", "course", "--scratch-dsn", server.admin,
                "--schemas-dir", project / "schemas", env=env)
    assert again.exit_code == 1
    assert "course: INDEX idx_enrollments_status: missing from the live database" in again.stdout


def test_dump_of_the_live_database_is_deterministic_and_equals_the_migrations(cli, project, server, live_course):
    conninfo, env = live_course
    path = project / "schemas" / "course" / SCHEMA_FILE
    path.unlink()
    args = ("schema", "dump", "course", "--live", "--schemas-dir", project / "schemas")
    first = cli(*args, env=env)
    assert first.exit_code == 0, first.output
    assert "course: wrote" in first.stdout
    text = path.read_bytes()
    second = cli(*args, "--json", env=env)
    assert json.loads(second.stdout) == [{"service": "course", "file": str(path), "source": json.loads(
        second.stdout)[0]["source"], "changed": False}]
    assert path.read_bytes() == text
    assert text == (SCHEMAS / "course" / SCHEMA_FILE).read_bytes()  # live dump == committed file
    body = text.decode()
    for volatile in (r"^\\restrict", r"^\\unrestrict", r"^-- Dumped", r"^SET ", r"Owner: (?!-$)", r"GRANT ",
                     r"OWNER TO", r"set_config", r"_yoyo", r"_dbtool_checksum"):
        assert not re.search(volatile, body, re.MULTILINE), volatile
    assert "CREATE TRIGGER update_courses_updated_at" in body


def test_dump_refuses_a_database_that_is_not_fully_migrated(cli, project, new_db):
    conninfo = new_db("identity")
    path = project / "schemas" / "identity" / SCHEMA_FILE
    committed = path.read_text()
    env = {"IDENTITY_DATABASE_URL": conninfo}
    assert cli("migrate", "identity", "--to", "1", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = cli("schema", "dump", "identity", "--live", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 4
    pending = shipped("identity")[1:]
    assert f"{len(pending)} pending migration(s) ({', '.join(pending)}); run 'dbtool migrate identity' first" \
        in one_error_line(result)
    assert path.read_text() == committed


def test_committed_schema_files_do_not_confuse_validate_or_new(cli, project):
    schemas = project / "schemas"
    assert all((schemas / s / SCHEMA_FILE).exists() for s in SERVICES)
    assert cli("validate", "--schemas-dir", schemas).exit_code == 0
    result = cli("new", "identity", "add_user_bio", "--schemas-dir", schemas)
    assert result.exit_code == 0, result.output
    assert (schemas / "identity" / f"{next_number('identity')}_add_user_bio.sql").exists()


# ---------------------------------------------------------------- bad input: one line, its exit code


def test_a_role_without_createdb_cannot_make_scratch_databases(cli, project, server):
    role, password = f"dbtool_nocreatedb_{secrets.token_hex(4)}", f"pw-{secrets.token_hex(6)}"
    with connect(server.admin) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEDB PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)))
    try:
        scratch = server.conninfo("postgres", user=role, password=password)
        result = cli("verify", "identity", "--scratch-dsn", scratch, "--schemas-dir", project / "schemas")
        assert result.exit_code == 3, result.output
        message = one_error_line(result)
        assert f"cannot create a scratch database on {role}@" in message
        assert "permission denied to create database" in message and "CREATEDB" in message
        assert "--scratch-dsn" in message and password not in result.output
    finally:
        with connect(server.admin) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    assert scratch_databases(server) == []


@pytest.mark.parametrize("command", [("verify",), ("schema", "check"), ("schema", "dump")])
def test_an_unreachable_scratch_server(cli, project, command):
    result = cli(*command, "identity", "--scratch-dsn", "postgresql://someone:hush-hush@127.0.0.1:1/postgres",
                 "--schemas-dir", project / "schemas", env={"IDENTITY_DATABASE_URL": "postgresql://127.0.0.1:1/x"})
    assert result.exit_code == 3, result.output
    message = one_error_line(result)
    assert message.startswith("error: scratch server: cannot connect to someone@127.0.0.1:1/postgres")
    assert "--scratch-dsn" in message and "hush-hush" not in result.output


@pytest.mark.parametrize("command", [("verify",), ("schema", "check"), ("schema", "dump")])
def test_prod_needs_a_scratch_server(cli, project, command):
    result = cli(*command, "identity", "--env", "prod", "--dsn", "postgresql://127.0.0.1:1/identity_db",
                 "--schemas-dir", project / "schemas")
    assert result.exit_code == 4, result.output
    assert "scratch databases are never made on a prod server; pass --scratch-dsn" in one_error_line(result)


def test_a_pg_dump_older_than_the_server(cli, project, server, tmp_path):
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    result = verify(cli, project, server, "identity", env={"DBTOOL_PG_DUMP": str(old)})
    assert result.exit_code == 2, result.output
    message = one_error_line(result)
    assert f"found: {old} (9)" in message and "DBTOOL_PG_DUMP" in message
    assert scratch_databases(server) == []


def test_a_malformed_scratch_dsn(cli, project):
    result = cli("verify", "--scratch-dsn", "not a url", "--schemas-dir", project / "schemas")
    assert result.exit_code == 2
    assert "--scratch-dsn: not a PostgreSQL connection string" in one_error_line(result)


def test_an_update_that_does_not_touch_updated_at_is_caught(cli, project, new_db):
    from dbtool.config import Settings

    conninfo = new_db("identity")
    env = {"IDENTITY_DATABASE_URL": conninfo}
    assert cli("migrate", "identity", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    assert cli("seed", "identity", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    report = VerifyReport(["identity"])
    _updates_keep_updated_at(conninfo, "identity", Settings(), report, VerifyEvents())
    assert [(c.ok, c.detail) for c in report.checks] == [(True, "on users")]
    with connect(conninfo) as conn:
        conn.execute("DROP TRIGGER update_users_updated_at ON users")
        updated = conn.execute("SELECT max(updated_at) FROM users").fetchone()[0]
    _updates_keep_updated_at(conninfo, "identity", Settings(), report, VerifyEvents())
    assert not report.checks[-1].ok and "UPDATE left updated_at as written on users" in report.checks[-1].detail
    with connect(conninfo) as conn:  # the check rolled its UPDATE back
        assert conn.execute("SELECT max(updated_at) FROM users").fetchone()[0] == updated


def test_the_scratch_server_can_come_from_the_environment(cli, project, server):
    result = cli("verify", "chat", "--json", "--schemas-dir", project / "schemas",
                 env={"DBTOOL_SCRATCH_DSN": server.admin})
    assert result.exit_code == 0, result.output
    scratch = json.loads(result.stdout)["scratch"]
    assert sorted(scratch) == ["chat", "identity"]  # chat's seeds point at identity's users
    assert all(where.startswith("chat_db_dev_scratch_") or where.startswith("identity_db_dev_scratch_")
               for where in scratch.values())
    assert all(where.endswith("(--scratch-dsn)") for where in scratch.values())
    assert scratch_databases(server) == []


def test_a_difference_is_reported_once_where_it_began_and_column_order_is_not_compared(cli, project, server):
    folder, n = project / "schemas" / "identity", int(next_number("identity"))
    steps = [
        # Leaves its column behind: every step below it would show it again.
        ("add_users_nickname", "ALTER TABLE users ADD COLUMN nickname text;", "SELECT 1;"),
        ("add_users_motto", "ALTER TABLE users ADD COLUMN motto text;", "ALTER TABLE users DROP COLUMN motto;"),
        # Drops a column and its down file adds it back: it returns last, in another order.
        ("drop_users_bio", "ALTER TABLE users DROP COLUMN bio;", "ALTER TABLE users ADD COLUMN bio TEXT;"),
    ]
    for i, (name, up, down) in enumerate(steps, start=n):
        (folder / f"{i:03d}_{name}.sql").write_text(up + "\n")
        (folder / f"{i:03d}_{name}.down.sql").write_text(down + "\n")
    result = verify(cli, project, server, "identity", "--json")
    assert result.exit_code == 1, result.output
    bad = failed(json.loads(result.stdout))
    nickname = [c for c in bad if c["check"].startswith("down") and any("nickname" in o for o in c["objects"] or [])]
    assert [c["check"] for c in nickname] == [f"down {n:03d}_add_users_nickname restores the schema from before its up"]
    assert not any(c["check"].startswith(f"down {n + 2:03d}_drop_users_bio") for c in bad)  # order only
    carried = [c for c in bad if c["check"] == f"differences of down {n:03d}_add_users_nickname"]
    # 004, 003 and 002 still show the column; 001 drops the users table and the column with it.
    assert carried and f"in {n - 2} later step(s)" in carried[0]["detail"]
    strict = verify(cli, project, server, "identity", "--json", "--strict-column-order")
    assert any(c["check"].startswith(f"down {n + 2:03d}_drop_users_bio") for c in failed(json.loads(strict.stdout)))


def test_sigint_stops_verify_as_interrupted_not_as_failed_checks_and_drops_the_scratch_databases(project, server):
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    run = subprocess.Popen([sys.executable, "-m", "dbtool", "verify", "--scratch-dsn", server.admin,
                            "--schemas-dir", str(project / "schemas")],
                           env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not scratch_databases(server):
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    time.sleep(1)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 130, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted by SIGINT" in lines[0] and "run the command again" in lines[0], lines[0]
    assert "FAILED" not in out and "verified" not in out, out
    assert scratch_databases(server) == []


def _activity(conn, query: str, *params) -> list[tuple]:
    return conn.execute(f"SELECT pid, query_start FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND {query}",
                        params).fetchall()


def _until(condition, run: subprocess.Popen, what: str):
    """Wait on the server's state (never a fixed sleep) while the command still runs."""
    deadline = time.monotonic() + 60
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert run.poll() is None, (what, run.communicate())
        time.sleep(0.02)
    return found


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_that_cancels_the_scratch_drop_of_a_fleet_check_still_drops_it(cli, project, new_db, server,
                                                                                 signum, code):
    # The signal cancels the statement of every open connection, the DROP DATABASE of a scratch
    # database on its way out too. To have the signal land on that DROP every time, the test holds
    # it: the live database's tracking table is locked until the scratch database exists, then the
    # scratch database itself (COMMENT ON DATABASE takes a lock DROP DATABASE waits for).
    import psycopg

    tenant = new_db("tenant")
    fleet = project / "fleet.toml"
    fleet.write_text(f'[[wave]]\nname = "all"\ntargets = [{json.dumps(tenant)}]\n')
    schemas = str(project / "schemas")
    assert cli("migrate", "course", "--fleet", fleet, "--schemas-dir", schemas).exit_code == 0
    before = set(scratch_databases(server))
    live = psycopg.connect(tenant)  # a transaction each: their locks last until rolled back
    held = psycopg.connect(server.admin)
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    run = None
    try:
        live.execute("LOCK TABLE _yoyo_migration IN ACCESS EXCLUSIVE MODE")
        run = subprocess.Popen([sys.executable, "-m", "dbtool", "schema", "check", "course", "--fleet", str(fleet),
                                "--schemas-dir", schemas], env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        with connect(server.admin) as watch:
            # The check made its scratch database, then waits to read the live database's state.
            _until(lambda: _activity(watch, "datname = %s AND wait_event_type = 'Lock'", live.info.dbname),
                   run, "the check to wait on the live database")
            [name] = set(scratch_databases(server)) - before
            held.execute(sql.SQL("COMMENT ON DATABASE {} IS 'held by the test'").format(sql.Identifier(name)))
            live.rollback()
            [(pid, started)] = _until(lambda: _activity(
                watch, "query LIKE 'DROP DATABASE%%' AND query LIKE %s AND wait_event_type = 'Lock'", f"%{name}%"),
                run, "the DROP of the scratch database")
            run.send_signal(signum)
            # The signal cancelled that DROP (the backend runs another statement, or none).
            _until(lambda: run.poll() is not None or not _activity(
                watch, "pid = %s AND state = 'active' AND query_start = %s", pid, started), run, "the cancellation")
            held.rollback()
        out, err = run.communicate(timeout=60)
        assert run.returncode == code, (out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert f"interrupted by {signal.Signals(signum).name}" in lines[0], lines[0]
        assert set(scratch_databases(server)) == before, lines[0]
    finally:
        live.close()
        held.close()
        if run is not None and run.poll() is None:
            run.kill()
            run.communicate()
        with connect(server.admin) as conn:  # what a failure left, so the next tests start clean
            for leftover in set(scratch_databases(server)) - before:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(leftover)))


def test_a_scratch_database_that_cannot_be_dropped_after_a_failure_is_named_with_the_failure(cli, project, server):
    """The check's own error keeps its exit code, and the same line names the database it left behind,
    which nobody would learn of otherwise."""
    folder, n = project / "schemas" / "identity", next_number("identity")
    # A template database cannot be dropped; the migration fails after making its database one.
    (folder / f"{n}_undroppable.sql").write_text(
        "-- transactional: false\n"
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I IS_TEMPLATE true', current_database()); END $$;\n"
        "SELECT no_such_column FROM users;\n")
    (folder / f"{n}_undroppable.down.sql").write_text("SELECT 1;\n")
    try:
        result = cli("schema", "dump", "identity", "--scratch-dsn", server.admin, "--schemas-dir", project / "schemas")
        assert result.exit_code == 2 and result.exception is not None, result.output
        [left] = scratch_databases(server)
        line = one_error_line(result)
        assert f"{n}_undroppable.sql:3" in line and "no_such_column" in line, line
        assert f"and scratch database {left} on " in line and "was not dropped: cannot drop a template database" in line
        assert f"DROP DATABASE {left} WITH (FORCE)" in line
    finally:
        with connect(server.admin) as conn:
            for name in scratch_databases(server):
                conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name)))
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_raw_database_error_beside_an_undroppable_scratch_database_names_both(server):
    from dbtool import config
    from dbtool.errors import BadInput
    from dbtool.schemafile.scratch import scratch_database, scratch_name, scratch_server

    settings = config.make_settings(SCHEMAS)
    place, name = scratch_server(settings, "identity", server.admin), scratch_name("identity", settings)
    try:
        with pytest.raises(BadInput) as caught:  # an undefined column: the statement's fault, exit 2
            with scratch_database(place, name) as conninfo, connect(conninfo) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(name)))
                conn.execute("SELECT no_such_column")
        line = str(caught.value)
        assert "no_such_column" in line and f"; and scratch database {name} on " in line, line
        assert f"DROP DATABASE {name} WITH (FORCE)" in line, line
    finally:
        with connect(server.admin) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

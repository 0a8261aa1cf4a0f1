"""dbtool rehearse: the pending migrations under writer load on a scratch database, measured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SERVER, add_migration, connect

from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.state import read_state
from dbtool.migrate.tree import load_tree

# The course migrations the project ships: the rehearsed ones come after them.
SHIPPED = len(list((Path(__file__).resolve().parent.parent / "schemas" / "course").glob("0*.down.sql")))


def scratch_databases() -> set[str]:
    with connect(SERVER.admin) as conn:
        return {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE '%\\_scratch\\_%'")}


@pytest.fixture
def course(project):
    folder = project / "schemas" / "course"
    # A plain build that holds its SHARE lock as long as a big table's build would (the sleep stands
    # for the build time a small table does not take), and the same as a concurrent build.
    add_migration(folder, "add_courses_duration_index",
                  "CREATE INDEX idx_courses_duration ON courses (duration_minutes);\nSELECT pg_sleep(1.0);\n",
                  "DROP INDEX idx_courses_duration;\n")
    # Its build reads each row through a function that takes 2 ms, so the build itself holds its SHARE
    # UPDATE EXCLUSIVE lock long enough for the 10 ms lock sampler to see it every time.
    add_migration(folder, "add_courses_instructor_name_index",
                  "-- transactional: false\nCREATE OR REPLACE FUNCTION slow_name(name text) RETURNS text IMMUTABLE"
                  " LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN name; END $$;\n"
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_instructor_name"
                  " ON courses (slow_name(instructor_name));\n"
                  "SELECT pg_sleep(1.0);\n",
                  "-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS idx_courses_instructor_name;\n"
                  "DROP FUNCTION IF EXISTS slow_name(text);\n")
    add_migration(folder, "add_courses_token", "ALTER TABLE courses ADD COLUMN token uuid DEFAULT gen_random_uuid();\n",
                  "ALTER TABLE courses DROP COLUMN token;\n")
    add_migration(folder, "add_courses_notes", "ALTER TABLE courses ADD COLUMN notes text;\n",
                  "ALTER TABLE courses DROP COLUMN notes;\n")
    return folder


def test_a_plain_index_build_stalls_writers_and_a_concurrent_one_does_not(cli, course, new_db):
    own = new_db()
    with connect(own) as conn:
        migrate_connection(conn, load_tree(course)[:SHIPPED])
    before = scratch_databases()
    result = cli("rehearse", "course", "--schemas-dir", course.parent, "--scale", "2", "--writers", "2",
                 "--max-stall", "400", "--json", env={"COURSE_DATABASE_URL": own})
    assert result.exit_code == 1, result.stderr  # the plain build broke --max-stall
    report = json.loads(result.stdout)
    assert report["from"] == SHIPPED and report["tables"] == ["courses"]
    plain, concurrent, token, notes = report["migrations"]
    assert plain["migration"] == f"{SHIPPED + 1:03d}_add_courses_duration_index"
    assert plain["max_stall_ms"] >= 700 and not plain["ok"]
    assert "SHARE on courses" in plain["locks"]
    assert concurrent["max_stall_ms"] < 400 and concurrent["ok"] and concurrent["writes"] > 20
    assert "SHARE UPDATE EXCLUSIVE on courses" in concurrent["locks"]
    assert concurrent["duration_ms"] >= 1000
    assert plain["rewrote"] == [] and notes["rewrote"] == []
    assert "courses" in token["rewrote"] and "courses_pkey" in token["rewrote"]  # a volatile default
    for m in report["migrations"]:
        assert {"migration", "duration_ms", "max_stall_ms", "p99_ms", "writes", "locks", "rewrote"} <= set(m)
        assert m["p99_ms"] <= m["max_stall_ms"]
    assert scratch_databases() == before
    with connect(own) as conn:  # the service's own database: still at 005, nothing of the rehearsal
        state = read_state(conn, load_tree(course))
        assert [m.version for m in state.pending] == [SHIPPED + i for i in range(1, 5)]
        assert conn.execute("SELECT to_regclass('idx_courses_duration')").fetchone()[0] is None


def test_the_shipped_migrations_pass_at_the_default_max_stall(cli, project, server):
    before = scratch_databases()
    result = cli("rehearse", "course", "--schemas-dir", project / "schemas", "--from", "3", "--scale", "2",
                 "--writers", "2", env={"COURSE_DATABASE_URL": server.conninfo("course_db_never_made")})
    assert result.exit_code == 0, result.stderr
    assert "004_add_courses_live_created_at_index" in result.stdout
    assert "every write within 500 ms" in result.stdout
    table = [x for x in result.stdout.splitlines() if x.startswith(("migration ", "004_", "005_")) and not x.endswith(":")]
    assert len(table) == 3 and all(len(x) <= 80 for x in table)
    assert scratch_databases() == before
    with connect(server.admin) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'course_db_never_made'").fetchone() is None


def test_sigterm_mid_migration_stops_at_once_exits_143_and_drops_the_scratch_database(project, new_db):
    folder = project / "schemas" / "course"
    own = new_db()
    with connect(own) as conn:
        migrate_connection(conn, load_tree(folder))
    # Holds its SHARE lock on courses for 30 s, so the writers are blocked when the signal comes.
    add_migration(folder, "slow_index", "CREATE INDEX idx_courses_slow ON courses (duration_minutes);\n"
                  "SELECT pg_sleep(30);\n", "DROP INDEX idx_courses_slow;\n")
    add_migration(folder, "after_it", "ALTER TABLE courses ADD COLUMN never text;\n",
                  "ALTER TABLE courses DROP COLUMN never;\n")
    before = scratch_databases()
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    run = subprocess.Popen([sys.executable, "-m", "dbtool", "rehearse", "course", "--schemas-dir", str(folder.parent),
                            "--scale", "1", "--writers", "2"], env={**clean, "COURSE_DATABASE_URL": own},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    with connect(SERVER.admin) as conn:  # the rehearsed migration is running on the scratch database
        while not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%'"
                               " AND pid <> pg_backend_pid()").fetchone()[0]:
            assert time.monotonic() < deadline and run.poll() is None, run.communicate()
            time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=20)
    lines = err.strip().splitlines()
    assert run.returncode == 143, (run.returncode, out, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "interrupted by SIGTERM" in lines[0] and "scratch database" in lines[0], lines[0]
    assert "FAILED" not in out and "after_it" not in out  # stopped at once: no verdict, nothing after it
    assert scratch_databases() == before
    with connect(own) as conn:  # the service's own database: untouched
        assert read_state(conn, load_tree(folder)).applied_migrations[-1].version == SHIPPED
        assert conn.execute("SELECT to_regclass('idx_courses_slow')").fetchone()[0] is None


@pytest.mark.parametrize("args, named", [
    (["--max-stall", "0"], "--max-stall"),
    (["--max-stall", "-5"], "--max-stall"),
    (["--scale", "0"], "--scale"),
    (["--scale", "6000"], "--scale"),
    (["--writers", "0"], "--writers"),
    (["--duration-limit", "0"], "--duration-limit"),
    (["--from", "99"], "--from 99"),
    (["--ddl-lock-timeout", "later"], "--ddl-lock-timeout"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(cli, project, db, args, named):
    before = scratch_databases()
    result = cli("rehearse", "course", "--schemas-dir", project / "schemas", *args, env={"COURSE_DATABASE_URL": db})
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert scratch_databases() == before


def test_nothing_pending_is_bad_input(cli, project, migrated):
    _, env = migrated
    before = scratch_databases()
    result = cli("rehearse", "identity", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "identity: nothing pending after version 004; pass --from VERSION" in result.stderr
    assert scratch_databases() == before

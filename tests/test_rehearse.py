"""dbtool rehearse: the pending migrations under writer load on a scratch database, measured."""

from __future__ import annotations

import json
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

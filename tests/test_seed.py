"""dbtool seed: development rows and synthetic data, consistent across the three databases."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import assert_no_crash, connect
from fleet import databases, env_for

from dbtool.data.bulkload import defer, rebuild
from dbtool.data.groups import Row
from dbtool.data.seed import MAX_SCALE, SEED_LOCK_KEYS
from dbtool.data.synthetic import Catalog
from dbtool.schemafile.snapshot import snapshot

SPEC_CATEGORIES = {"guitar", "piano", "vocal"}
SPEC_LEVELS = {"beginner", "intermediate", "advanced"}
TABLES = {"identity": ["users"], "course": ["courses", "enrollments"], "chat": ["chat_sessions", "chat_messages"]}


@pytest.fixture
def fleet(cli, project, new_db):
    """Three migrated databases and the environment that points dbtool at them."""
    dbs = databases(new_db)
    env = env_for(dbs)
    assert cli("migrate", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    return dbs, env


def seed(cli, project, env, *args):
    return cli("seed", *args, "--schemas-dir", project / "schemas", env=env)


def counts(dbs: dict[str, str]) -> dict[str, int]:
    found = {}
    for service, tables in TABLES.items():
        with connect(dbs[service]) as conn:
            for table in tables:
                found[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return found


def assert_consistent(dbs: dict[str, str]) -> None:
    """Every soft reference names a user of identity_db, with that user's name and role; seats add up."""
    with connect(dbs["identity"]) as conn:
        users = {str(i): (name, role) for i, name, role in conn.execute("SELECT id, name, role FROM users")}
    with connect(dbs["course"]) as conn:
        for instructor_id, name in conn.execute("SELECT instructor_id, instructor_name FROM courses"):
            assert users[str(instructor_id)] == (name, "instructor")
        for student_id, name in conn.execute("SELECT student_id, student_name FROM enrollments"):
            assert users[str(student_id)] == (name, "student")
        bad_seats = conn.execute(
            """SELECT count(*) FROM courses c
               WHERE current_students <> (SELECT count(*) FROM enrollments e
                                          WHERE e.course_id = c.id AND e.status = 'enrolled')
                  OR current_students > max_students""").fetchone()[0]
        assert bad_seats == 0
        assert conn.execute("SELECT count(*) FROM enrollments WHERE status <> 'enrolled'").fetchone()[0] == 0
    with connect(dbs["chat"]) as conn:
        for (user_id,) in conn.execute("SELECT user_id FROM chat_sessions"):
            assert str(user_id) in users


def test_seed_files_load_consistent_rows_and_a_second_run_adds_nothing(cli, project, fleet):
    dbs, env = fleet
    result = seed(cli, project, env)
    assert result.exit_code == 0, result.stderr
    first = counts(dbs)
    assert first == {"users": 8, "courses": 6, "enrollments": 10, "chat_sessions": 3, "chat_messages": 8}
    assert_consistent(dbs)
    with connect(dbs["course"]) as conn:
        assert {r[0] for r in conn.execute("SELECT DISTINCT category FROM courses")} == SPEC_CATEGORIES
        assert {r[0] for r in conn.execute("SELECT DISTINCT level FROM courses")} == SPEC_LEVELS

    again = seed(cli, project, env)
    assert again.exit_code == 0, again.stderr
    assert counts(dbs) == first
    assert "seeded 0 rows" in again.stdout
    assert cli("check-references", "--schemas-dir", project / "schemas", env=env).exit_code == 0


def test_scale_one_is_small_consistent_reported_and_idempotent(cli, project, fleet):
    dbs, env = fleet
    result = seed(cli, project, env, "--scale", "1", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)  # nothing but JSON on stdout
    loaded = {row["table"]: 0 for row in report["tables"]}
    for row in report["tables"]:
        loaded[row["table"]] += row["rows"]
    assert loaded == counts(dbs)
    assert counts(dbs)["courses"] == 200 and counts(dbs)["chat_sessions"] == 50
    assert 0 < report["rows"] < 5000 and report["rows_per_second"] > 0
    # A table's rate counts until it is ready (indexes, keys, statistics), so it is never faster than the copy.
    assert all(0 < row["copy_seconds"] < row["seconds"] for row in report["tables"] if row["table"] == "courses")
    assert_consistent(dbs)

    again = seed(cli, project, env, "--scale", "1", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["rows"] == 0
    checked = cli("check-references", "--json", "--schemas-dir", project / "schemas", env=env)
    assert checked.exit_code == 0, checked.stdout
    assert all(r["dangling"]["rows"] == 0 and r["rows"] > 0 for r in json.loads(checked.stdout))


def test_scale_output_has_a_progress_line_per_table_and_a_rate(cli, project, fleet):
    _, env = fleet
    result = seed(cli, project, env, "--scale", "1")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    bars = {line.split("━")[0].strip(): line for line in lines if "━" in line}
    assert {"course courses", "chat chat_messages", "identity users (students)"} <= set(bars)
    # Each table's last bar says when it was ready to read, and at what rate; a first group, that its rows were in.
    assert re.search(r"ready, [\d,]+ rows/s", bars["course courses"]), bars["course courses"]
    assert re.search(r"copied, [\d,]+ rows/s", bars["identity users (instructors)"])
    assert all(len(line) <= 80 for line in bars.values()), bars
    assert lines[-1].startswith("seeded ") and "rows/s" in lines[-1]


def fingerprint(dbs: dict[str, str]) -> dict[str, str]:
    prints = {}
    for service, tables in TABLES.items():
        with connect(dbs[service]) as conn:
            for table in tables:
                prints[table] = conn.execute(
                    f"SELECT md5(string_agg(t::text, ',' ORDER BY t.id::text)) FROM {table} t").fetchone()[0]
    return prints


def test_synthetic_data_is_the_same_everywhere_and_a_larger_scale_extends_it(cli, project, new_db, fleet):
    dbs, env = fleet
    other = databases(new_db)
    other_env = env_for(other)
    assert cli("migrate", "--schemas-dir", project / "schemas", env=other_env).exit_code == 0
    assert seed(cli, project, env, "--scale", "2").exit_code == 0
    # The same scale in other databases, reached in two steps: row for row the same data.
    assert seed(cli, project, other_env, "--scale", "1").exit_code == 0
    assert seed(cli, project, other_env, "--scale", "2").exit_code == 0
    assert counts(other)["courses"] == 400
    assert_consistent(other)
    assert fingerprint(other) == fingerprint(dbs)


def test_seeding_one_service_seeds_what_it_points_at_first(cli, project, fleet):
    dbs, env = fleet
    result = seed(cli, project, env, "course")
    assert result.exit_code == 0, result.stderr
    assert counts(dbs) == {"users": 8, "courses": 6, "enrollments": 10, "chat_sessions": 0, "chat_messages": 0}
    assert result.stdout.index("identity") < result.stdout.index("course:")


def assert_one_line(result, code: int, message: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert_no_crash(result)


@pytest.mark.parametrize("scale", ["0", "-3", "5001", "1000000000"])
def test_a_scale_out_of_range_writes_nothing(cli, project, fleet, scale):
    dbs, env = fleet
    assert_one_line(seed(cli, project, env, f"--scale={scale}"), 2, f"--scale {scale}: give a whole number")
    assert set(counts(dbs).values()) == {0}


def test_prod_is_refused_before_any_connection(cli, project):
    # Nothing listens on port 1: a connection attempt would exit 3, not 4.
    env = {f"{s.upper()}_DATABASE_URL": f"postgresql://u@127.0.0.1:1/{s}_db_prod" for s in TABLES}
    assert_one_line(seed(cli, project, env, "--env", "prod"), 4, "never runs on prod")
    assert_one_line(seed(cli, project, env, "--env", "prod", "--scale", "1"), 4, "never runs on prod")


def test_an_unmigrated_database_is_refused_and_nothing_is_written(cli, project, new_db):
    dbs = databases(new_db)
    env = env_for(dbs)
    assert cli("migrate", "identity", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    assert cli("migrate", "course", "--to", "2", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = seed(cli, project, env, "course")
    assert_one_line(result, 4, "course: database")
    pending = sorted(p.name[:-4] for p in (project / "schemas" / "course").glob("[0-9]*.sql")
                     if ".down." not in p.name and not p.name.startswith(("001_", "002_")))
    assert (f"{len(pending)} pending migration(s) ({', '.join(pending)}); run 'dbtool migrate course' first"
            in result.stderr)
    with connect(dbs["identity"]) as conn:  # identity was ready, but seeding stopped before any write
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0
    assert_one_line(seed(cli, project, env, "chat", "--scale", "1"), 4, "run 'dbtool migrate chat' first")


def test_a_database_that_does_not_exist_is_refused_not_created(cli, project, server, fleet):
    _, env = fleet
    env = {**env, "CHAT_DATABASE_URL": server.conninfo("seed_missing_db")}
    assert_one_line(seed(cli, project, env), 3, "database seed_missing_db does not exist")
    with connect(server.admin) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'seed_missing_db'").fetchone() is None


def test_a_broken_seed_file_names_its_line_and_writes_nothing(cli, project, fleet):
    dbs, env = fleet
    path = project / "schemas" / "chat" / "seeds" / "002_broken.sql"
    path.write_text("INSERT INTO chat_sessions (id, user_id) VALUES\n  ('not-a-uuid', gen_random_uuid());\n")
    assert_one_line(seed(cli, project, env, "chat"), 2, f"{path}:2: invalid input syntax for type uuid")
    assert counts(dbs)["chat_sessions"] == 0 and counts(dbs)["users"] == 8  # identity had committed first


def test_a_seed_file_that_copies_from_psqls_stream_is_refused_naming_its_line(cli, project, fleet):
    dbs, env = fleet
    path = project / "schemas" / "chat" / "seeds" / "002_dumped.sql"
    path.write_text("-- from pg_dump\nCOPY public.chat_sessions (id, user_id) FROM stdin;\n")
    assert_one_line(seed(cli, project, env, "chat"), 2, f"{path}:2: COPY with STDIN or STDOUT streams rows")
    assert counts(dbs)["chat_sessions"] == 0


def test_a_broken_synthetic_declaration_names_the_file_and_writes_nothing(cli, project, fleet):
    dbs, env = fleet
    path = project / "schemas" / "course" / "seeds" / "synthetic.toml"
    path.write_text(path.read_text().replace('{ int = [0, "max_students"] }', '{ int = [0, "no_such"] }'))
    result = seed(cli, project, env, "--scale", "1")
    assert_one_line(result, 2, f"{path}: [courses] column current_students: int bound 'no_such'")
    assert set(counts(dbs).values()) == {0}


def test_check_references_reports_dangling_and_stale_rows(cli, project, fleet):
    dbs, env = fleet
    assert seed(cli, project, env).exit_code == 0
    with connect(dbs["course"]) as conn:
        conn.execute(
            """INSERT INTO courses (id, name, price, instructor_id, instructor_name, duration_minutes)
               VALUES ('00000000-0000-4000-8000-00000000ffff', 'Ghost', 1,
                       '11111111-1111-4111-8111-111111111111', 'Nobody', 30)""")
        conn.execute("UPDATE enrollments SET student_name = 'Renamed' WHERE id = '00000000-0000-4000-8000-000000000401'")
    result = cli("check-references", "--json", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 1
    report = {r["column"]: r for r in json.loads(result.stdout)}
    assert report["courses.instructor_id"]["dangling"] == {
        "rows": 1, "examples": ["11111111-1111-4111-8111-111111111111"]}
    assert report["enrollments.student_id"]["stale_copies"]["student_name"]["rows"] == 1
    assert report["chat_sessions.user_id"]["dangling"]["rows"] == 0

    text = cli("check-references", "course", "--schemas-dir", project / "schemas", env=env)
    assert text.exit_code == 1
    assert "courses.instructor_id: 1 row(s) point at no identity users.id" in text.stdout


def test_a_malformed_reference_declaration_is_bad_input(cli, project, fleet):
    _, env = fleet
    path = project / "schemas" / "chat" / "references.toml"
    path.write_text('[[reference]]\ncolumn = "chat_sessions.user_id"\npoints_at = "nowhere.users.id"\n')
    result = cli("check-references", "--schemas-dir", project / "schemas", env=env)
    assert_one_line(result, 2, f"{path}: reference 1: points at service 'nowhere'")


def test_the_largest_scale_puts_a_million_rows_in_courses_and_chat_messages(project):
    """Counted from the declarations without loading them: --scale MAX_SCALE is what the README promises."""
    from dbtool import config

    catalog = Catalog(config.make_settings(project / "schemas"))
    courses = next(g for g in catalog.service("course") if g.table == "courses")
    messages = next(g for g in catalog.service("chat") if g.table == "chat_messages")
    assert courses.planned(MAX_SCALE) == 1_000_000
    sessions = messages.parent.planned(MAX_SCALE)
    assert sum(int(messages.count(Row(i))) for i in range(sessions)) == 1_249_484


def _structure(conninfo: str) -> dict:
    with connect(conninfo) as conn:
        return {t: {k: v[k] for k in ("indexes", "constraints")} for t, v in snapshot(conn)["tables"].items()}


def test_scale_into_empty_tables_builds_their_indexes_after_the_rows_exactly_as_they_were(cli, project, fleet):
    dbs, env = fleet
    before = {s: _structure(dbs[s]) for s in ("course", "chat")}
    with connect(dbs["course"]) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'courses'").fetchone()[0] > 3
    result = seed(cli, project, env, "course", "chat", "--scale", "1")
    assert result.exit_code == 0, result.output
    assert {s: _structure(dbs[s]) for s in ("course", "chat")} == before
    with connect(dbs["course"]) as conn:  # the rebuilt indexes are valid and in use
        assert conn.execute("SELECT bool_and(indisvalid) FROM pg_index").fetchone()[0]


def test_a_failing_bulk_load_leaves_the_tables_and_their_indexes_as_they_were(cli, project, fleet):
    dbs, env = fleet
    with connect(dbs["course"]) as conn:  # enrollments load after courses, whose indexes are gone by then
        conn.execute("""CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                        $$ BEGIN RAISE EXCEPTION 'no enrollments today'; END $$""")
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON enrollments FOR EACH ROW EXECUTE FUNCTION refuse()")
    before = _structure(dbs["course"])
    result = seed(cli, project, env, "course", "--scale", "1")
    assert result.exit_code == 2, result.output
    assert_no_crash(result)
    assert "no enrollments today" in result.stderr
    assert _structure(dbs["course"]) == before
    assert counts(dbs)["courses"] == 0 and counts(dbs)["enrollments"] == 0


def test_only_empty_tables_lose_their_indexes_during_a_load(fleet):
    dbs, _ = fleet
    with connect(dbs["course"]) as conn:
        conn.execute("INSERT INTO courses (instructor_id, instructor_name, name, price, duration_minutes)"
                     " VALUES (gen_random_uuid(), 'Ann', 'One', 10, 60)")
        with conn.transaction(force_rollback=True):
            deferred = defer(conn, ["courses", "enrollments"])
            assert [d.table for d in deferred] == ["enrollments"]  # courses holds a row: kept whole
            assert deferred[0].foreign_keys and deferred[0].indexes
            left = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'enrollments'").fetchone()[0]
            rebuild(conn, deferred)
            back = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'enrollments'").fetchone()[0]
            assert back == left + len(deferred[0].indexes)


def _copying(conninfo: str) -> bool:
    with connect(conninfo) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%%'"
                                 " AND pid <> pg_backend_pid()").fetchone()[0])


def test_sigint_during_a_load_exits_130_leaves_the_tables_as_they_were_and_a_rerun_finishes(project, fleet):
    dbs, env = fleet
    before = _structure(dbs["identity"])
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    command = [sys.executable, "-m", "dbtool", "seed", "--scale", "1000", "--schemas-dir", str(project / "schemas")]
    run = subprocess.Popen(command, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _copying(dbs["identity"]):  # identity loads first: the others refer to its users
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "identity: interrupted by SIGINT while loading users" in lines[0], lines[0]
    assert "left as they were" in lines[0] and "run the command again" in lines[0], lines[0]
    assert counts(dbs) == dict.fromkeys(counts(dbs), 0)  # rolled back, and nothing after it started
    assert _structure(dbs["identity"]) == before  # the indexes dropped for the load are back
    # Nothing half-done is in the way: a rerun (smaller, to stay quick) seeds every service.
    rerun = subprocess.run([*command[:5], "20", *command[6:]], env={**clean, **env}, capture_output=True,
                           text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert counts(dbs)["users"] > 0 and counts(dbs)["chat_messages"] > 0
    assert _structure(dbs["identity"]) == before


def test_two_seeds_at_once_on_the_same_databases_both_succeed_and_load_one_runs_rows(project, fleet):
    dbs, env = fleet
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    command = [sys.executable, "-m", "dbtool", "seed", "--scale", "50", "--schemas-dir", str(project / "schemas")]
    runs = [subprocess.Popen(command, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    loaded = counts(dbs)
    assert loaded["courses"] == 50 * 200
    assert_consistent(dbs)
    # Exactly one run's rows: a third run at the same scale finds nothing missing.
    again = subprocess.run([*command, "--json"], env={**clean, **env}, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rows"] == 0 and counts(dbs) == loaded


def test_a_seed_waits_for_the_seed_lock_and_writes_nothing_until_it_is_released(project, fleet):
    """The lock itself, not its effect on a race (two runs often come out right without it): while
    another session holds this database's seed lock, seed waits for it with nothing written."""
    dbs, env = fleet
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    command = [sys.executable, "-m", "dbtool", "seed", "identity", "--scale", "1",
               "--schemas-dir", str(project / "schemas")]
    with connect(dbs["identity"]) as holder, connect(dbs["identity"]) as watcher:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", SEED_LOCK_KEYS)
        run = subprocess.Popen(command, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        try:
            deadline = time.monotonic() + 30
            while not watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = %s AND objid = %s", SEED_LOCK_KEYS).fetchone()[0]:
                assert time.monotonic() < deadline and run.poll() is None, run.communicate()
                time.sleep(0.05)
            assert watcher.execute("SELECT count(*) FROM users").fetchone()[0] == 0
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s, %s)", SEED_LOCK_KEYS)
        _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert counts(dbs)["users"] > 0

"""dbtool explain: key query files, EXPLAIN ANALYZE that never writes, budgets, reports, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCHEMAS, assert_one_line, connect

from dbtool.errors import BadInput
from dbtool.inspect.plans import plan_nodes, plan_warnings
from dbtool.inspect.queries import parse_query_file

# Key queries that find their rows through an index of this table on --scale 10 data (point
# lookups). At --scale 1 a 50-row chat_sessions is cheaper to read whole, so the planner rightly does.
INDEXED_AT_SMALL_SCALE = {"user_by_email": "users", "courses_by_instructor": "courses",
                          "enrollments_of_student": "enrollments", "enrollments_of_course": "enrollments",
                          "messages_of_session": "chat_messages", "sessions_of_user": "chat_sessions"}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sql"
    path.write_text(text, encoding="utf-8")
    return path


def explain(cli, project, env, *args):
    return cli("explain", *args, "--schemas-dir", project / "schemas", env=env)


# ---------------------------------------------------------------- query files, no database


def test_every_shipped_query_file_parses():
    files = sorted(SCHEMAS.glob("*/queries/*.sql"))
    assert {p.stem for p in files} >= set(INDEXED_AT_SMALL_SCALE) | {"course_list_page", "course_list_count",
                                                                "course_list_keyset", "course_search_common",
                                                                "courses_by_category_level"}
    for path in files:
        query = parse_query_file(path)
        assert query.service == path.parent.parent.name and query.description and query.tables


def test_named_parameters_become_psycopg_placeholders_and_casts_strings_comments_stay(tmp_path):
    path = write(tmp_path / "svc" / "queries", "q", (
        "-- Says what it is for.\n"
        "-- param a: SELECT 1\n"
        "-- budget: max_ms=5 no_seq_scan\n"
        "SELECT :a::int AS x, ':b' AS y, 'é%' AS z -- a :comment\n"
        "FROM t WHERE c = :a;\n"))
    query = parse_query_file(path)
    assert query.sql == ("SELECT %(a)s::int AS x, ':b' AS y, 'é%%' AS z -- a :comment\n"
                         "FROM t WHERE c = %(a)s")
    assert query.params == {"a": "SELECT 1"}
    assert query.budget.max_ms == 5 and query.budget.no_seq_scan
    assert query.description == "Says what it is for." and query.tables == ("t",)


BAD_FILES = [
    ("SELEC 1;", "syntax error"),
    ("SELECT 1; SELECT 2;", "holds 2 statements"),
    ("-- only a comment\n", "holds no statement"),
    ("DELETE FROM courses;", "is a DELETE, not a SELECT"),
    ("WITH gone AS (DELETE FROM courses RETURNING id) SELECT count(*) FROM gone;", "data-modifying DELETE"),
    ("SELECT * INTO copied FROM courses;", "SELECT INTO"),
    ("SELECT * FROM courses FOR UPDATE;", "locks rows"),
    ("SELECT * FROM courses WHERE id = :course_id;", "parameter :course_id has no value"),
    ("-- param course_id:\nSELECT * FROM courses WHERE id = :course_id;", "parameter course_id has no value"),
    ("-- param x: SELECT 1\nSELECT 1;", "'-- param x' is not used"),
    ("-- param x: DELETE FROM courses\nSELECT :x;", "-- param x is a DELETE"),
    ("SELECT * FROM courses WHERE id = $1;", "positional parameter $1"),
    ("-- budget: max_ms=fast\nSELECT 1;", "max_ms=fast"),
    ("-- budget: no_index\nSELECT 1;", "unknown budget 'no_index'"),
    ("-- budget: no_seq_scan>=lots\nSELECT 1;", "no_seq_scan>=lots: give a row count"),
    ("SELECT 'unterminated;", "fix the SQL"),
]


@pytest.mark.parametrize("text, message", BAD_FILES, ids=[m for _, m in BAD_FILES])
def test_a_bad_query_file_is_bad_input_naming_the_file(tmp_path, text, message):
    path = write(tmp_path / "svc" / "queries", "bad", text)
    with pytest.raises(BadInput) as caught:
        parse_query_file(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_warnings_read_the_plan():
    plan = {"Node Type": "Limit", "Plan Rows": 10, "Actual Rows": 10, "Actual Loops": 1, "Plans": [
        {"Node Type": "Sort", "Plan Rows": 20, "Actual Rows": 5010, "Actual Loops": 1,
         "Sort Space Type": "Disk", "Sort Space Used": 9000, "Plans": [
             {"Node Type": "Seq Scan", "Relation Name": "courses", "Plan Rows": 100000, "Actual Rows": 100000,
              "Actual Loops": 1}]}]}
    found = plan_warnings(plan, 10_000, {"courses": 100_000})
    assert any(w.startswith("sequential scan on courses (100,000 rows)") for w in found)
    assert any("sort spilled to disk (9000 kB)" in w for w in found)
    assert any(w.startswith("deep OFFSET: 5,000 rows") for w in found)
    assert any("estimated 20 rows, got 5,010" in w for w in found)
    assert plan_warnings(plan, 1_000_000, {"courses": 100_000}) == [w for w in found if "sequential" not in w]
    assert [n.depth for n in plan_nodes(plan)] == [0, 1, 2]


def test_a_limit_that_never_filled_its_page_hides_no_misestimate_or_discarded_rows():
    # A search term that matches nothing: the date-ordered index scan reads the whole table.
    plan = {"Node Type": "Limit", "Plan Rows": 20, "Actual Rows": 0, "Actual Loops": 1, "Plans": [
        {"Node Type": "Index Scan", "Scan Direction": "Backward", "Index Name": "idx_courses_created_at",
         "Relation Name": "courses", "Plan Rows": 9975, "Actual Rows": 0, "Actual Loops": 1,
         "Rows Removed by Filter": 1_000_000}]}
    found = plan_warnings(plan, 10_000, {"courses": 1_000_000})
    assert any("estimated 9,975 rows, got 0" in w for w in found)
    assert any("read and discarded 1,000,000 rows with its filter" in w for w in found)
    # The same scan stopped early by a Limit that got its page is no misestimate.
    plan["Actual Rows"], plan["Plans"][0]["Actual Rows"], plan["Plans"][0]["Rows Removed by Filter"] = 20, 20, 3
    assert plan_warnings(plan, 10_000, {"courses": 1_000_000}) == []


# ---------------------------------------------------------------- on a real server


def test_explain_on_small_data_reports_index_use_and_changes_nothing(cli, project, migrated):
    dbs, env = migrated
    assert cli("seed", "--scale", "10", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = explain(cli, project, env, "--json")
    assert result.exit_code in (0, 1), result.stderr
    data = json.loads(result.stdout)
    assert sorted(s["service"] for s in data) == ["chat", "course", "identity"]
    queries = {q["name"]: q for s in data for q in s["queries"]}
    assert set(queries) == {p.stem for p in (project / "schemas").glob("*/queries/*.sql")}
    for name, table in INDEXED_AT_SMALL_SCALE.items():
        q = queries[name]
        assert any(" using idx_" + table in step or f" using {table}_" in step for step in q["shape"]), q["shape"]
        assert not any(step.endswith(f"Seq Scan on {table}") for step in q["shape"]), q["shape"]
        assert q["plan"]["Node Type"] and q["buffers"]["shared_hit"] + q["buffers"]["shared_read"] > 0
        assert q["rows"]["actual"] >= 1 and q["params"]
    # The exit code follows the budgets the report shows.
    assert result.exit_code == (1 if any(q["broken"] for q in queries.values()) else 0)
    with connect(dbs["course"]) as conn:
        assert conn.execute("SELECT count(*) FROM courses").fetchone()[0] == 2000


def test_a_writing_query_is_refused_and_the_table_is_unchanged(cli, project, seeded):
    dbs, env = seeded
    folder = project / "schemas" / "course" / "queries"
    with connect(dbs["course"]) as conn:
        before = conn.execute("SELECT count(*), sum(current_students) FROM courses").fetchone()
    write(folder, "zz_delete", "DELETE FROM courses;")
    assert_one_line(explain(cli, project, env, "course"), 2, "zz_delete.sql", "not a SELECT")
    (folder / "zz_delete.sql").unlink()
    write(folder, "zz_cte", "WITH gone AS (DELETE FROM courses RETURNING id) SELECT count(*) FROM gone;")
    assert_one_line(explain(cli, project, env, "course"), 2, "zz_cte.sql", "data-modifying DELETE")
    (folder / "zz_cte.sql").unlink()
    # A SELECT can still write through a function: the READ ONLY transaction stops it.
    write(folder, "zz_enroll", (
        "-- param course_id: SELECT id FROM courses WHERE current_students < max_students ORDER BY id LIMIT 1\n"
        "SELECT enroll_student(:course_id, gen_random_uuid(), 'Mallory');"))
    assert_one_line(explain(cli, project, env, "course", "--query", "zz_enroll"), 2, "zz_enroll.sql",
                    "tried to write", "nothing was changed")
    with connect(dbs["course"]) as conn:
        assert conn.execute("SELECT count(*), sum(current_students) FROM courses").fetchone() == before
        assert conn.execute("SELECT count(*) FROM enrollments WHERE student_name = 'Mallory'").fetchone()[0] == 0


def test_budgets_break_with_exit_one(cli, project, seeded):
    _, env = seeded
    folder = project / "schemas" / "chat" / "queries"
    write(folder, "zz_no_time", "-- param session_id: SELECT id FROM chat_sessions ORDER BY id LIMIT 1\n"
                                "-- budget: max_ms=0\n"
                                "SELECT * FROM chat_messages WHERE session_id = :session_id;")
    write(folder, "zz_seq", "-- budget: no_seq_scan>=100\nSELECT count(*) FROM chat_messages WHERE tokens_used > 0;")
    result = explain(cli, project, env, "chat", "--query", "zz_no_time", "--query", "zz_seq", "--json")
    assert result.exit_code == 1, result.stderr
    queries = {q["name"]: q for q in json.loads(result.stdout)[0]["queries"]}
    assert set(queries) == {"zz_no_time", "zz_seq"}
    assert "over its budget max_ms=0" in queries["zz_no_time"]["broken"][0]
    assert queries["zz_seq"]["broken"] == ["sequential scan on chat_messages (202 rows), against its budget"
                                           " no_seq_scan (tables of 100 rows or more)"]
    human = explain(cli, project, env, "chat", "--query", "zz_seq")
    assert human.exit_code == 1 and "budget" in human.stdout and "1 over budget" in human.stdout


def test_no_seq_scan_is_fine_on_a_table_below_its_size(cli, project, seeded):
    _, env = seeded
    write(project / "schemas" / "chat" / "queries", "zz_seq",
          "-- budget: no_seq_scan\nSELECT count(*) FROM chat_messages WHERE tokens_used > 0;")
    result = explain(cli, project, env, "chat", "--query", "zz_seq", "--json")
    assert result.exit_code == 0, result.stdout
    (query,) = json.loads(result.stdout)[0]["queries"]
    assert query["broken"] == [] and "sequential scan on chat_messages (202 rows) is fine" in query["budget_notes"][0]
    # --large-rows sets the size a plain no_seq_scan judges.
    result = explain(cli, project, env, "chat", "--query", "zz_seq", "--large-rows", "200")
    assert result.exit_code == 1 and "tables of 200 rows or more" in result.stdout


def test_output_writes_markdown_with_the_plans(cli, project, seeded, tmp_path):
    _, env = seeded
    report = tmp_path / "report.md"
    result = explain(cli, project, env, "identity", "chat", "--output", report)
    assert result.exit_code in (0, 1), result.stderr
    text = report.read_text()
    assert text.startswith("# dbtool explain")
    for name in ("user_by_email", "messages_of_session", "sessions_of_user"):
        assert f"### {name}" in text
    assert "Index Scan" in text and "rows est" in text and "```sql" in text
    missing = explain(cli, project, env, "identity", "--output", tmp_path / "no" / "report.md")
    assert_one_line(missing, 2, "--output", "does not exist")


def test_a_statement_timeout_cancels_the_query_and_breaks_the_run(cli, project, seeded):
    _, env = seeded
    write(project / "schemas" / "identity" / "queries", "zz_slow",
          "SELECT count(*) FROM users, generate_series(1, 100000000) g;")
    result = explain(cli, project, env, "identity", "--timeout", "0.2", "--json")
    assert result.exit_code == 1, result.stderr
    slow = {q["name"]: q for q in json.loads(result.stdout)[0]["queries"]}["zz_slow"]
    assert "statement timeout" in slow["error"] and slow["broken"]


def test_prod_refuses_a_database_without_statistics_before_anything_runs(cli, project, migrated):
    dbs, env = migrated
    assert_one_line(explain(cli, project, env, "course", "--env", "prod"), 4, "no statistics on", "courses",
                    "ANALYZE")
    with connect(dbs["course"]) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'courses'").fetchone()[0] == 0


def test_dev_analyses_tables_never_analysed_and_says_so(cli, project, migrated):
    """A new user's first run: migrate, the development seed rows, explain: exit 0."""
    dbs, env = migrated
    assert cli("seed", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = explain(cli, project, env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "course: analysed courses, enrollments first (never analysed" in result.stdout
    assert all(len(text) <= 80 for text in result.stdout.splitlines()), result.stdout
    with connect(dbs["course"]) as conn:
        assert conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'courses'").fetchone()[0] > 0
    again = explain(cli, project, env)
    assert again.exit_code == 0 and "analysed" not in again.stdout


def test_a_parameter_without_a_row_says_to_seed(cli, project, migrated):
    dbs, env = migrated
    with connect(dbs["chat"]) as conn:
        conn.execute("ANALYZE")
    assert_one_line(explain(cli, project, env, "chat"), 4, "-- param", "found no row", "dbtool seed")


def test_a_parameter_that_picks_null_is_bad_input(cli, project, seeded):
    _, env = seeded
    write(project / "schemas" / "course" / "queries", "zz_null",
          "-- param gone: SELECT deleted_at FROM courses ORDER BY id LIMIT 1\n"
          "SELECT id FROM courses WHERE deleted_at = :gone;")
    assert_one_line(explain(cli, project, env, "course"), 2, "zz_null.sql", "-- param gone picked NULL")


def test_unknown_query_and_bad_options_are_bad_input(cli, project, migrated):
    _, env = migrated
    assert_one_line(explain(cli, project, env, "--query", "nope"), 2, "--query nope", "user_by_email")
    assert_one_line(explain(cli, project, env, "--timeout", "0"), 2, "--timeout 0")
    write(project / "schemas" / "chat" / "queries", "zz_bad", "SELECT * FROM chat_messages WHERE id = :id;")
    assert_one_line(explain(cli, project, env), 2, "zz_bad.sql", ":id has no value")


def test_a_missing_database_is_refused(cli, project, server):
    env = {"CHAT_DATABASE_URL": server.conninfo("explain_missing_db")}
    assert_one_line(explain(cli, project, env, "chat"), 3, "explain_missing_db does not exist", "dbtool migrate")


def _sleeping(conninfo: str) -> bool:
    with connect(conninfo) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%pg_sleep%%'"
                                 " AND pid <> pg_backend_pid()").fetchone()[0])


@pytest.mark.parametrize("command, signum, code", [("explain", signal.SIGINT, 130), ("report", signal.SIGTERM, 143)])
def test_a_signal_during_a_key_query_stops_the_run_as_interrupted_not_as_a_timeout(project, seeded, tmp_path,
                                                                                   command, signum, code):
    dbs, env = seeded
    write(project / "schemas" / "identity" / "queries", "aa_slow", "-- Sleeps.\nSELECT pg_sleep(5);")
    out = tmp_path / "out.html"
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and not k.startswith("DB_")}
    run = subprocess.Popen([sys.executable, "-m", "dbtool", command, "identity", "--output", str(out),
                            "--schemas-dir", str(project / "schemas")],
                           env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not _sleeping(dbs["identity"]):
        assert time.monotonic() < deadline and run.poll() is None, run.communicate()
        time.sleep(0.05)
    run.send_signal(signum)
    _, err = run.communicate(timeout=30)
    assert run.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"interrupted by {signal.Signals(signum).name}" in lines[0] and "--timeout" not in lines[0], lines[0]
    assert not out.exists()

"""dbtool advise: candidates from the parsed query, priced by the planner, merged, written as a migration."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import (
    PASSWORD,
    PASSWORD_ROLE,
    SCHEMAS,
    assert_one_line,
    connect,
)
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dbtool.advise.candidates import derive
from dbtool.inspect.queries import parse_query_file, parse_statement

RECALL_SCALE = 20  # the benchmark runs the full --scale 100; this keeps the suite quick

COURSES = {"id": 16, "instructor_id": 16, "created_at": 8, "deleted_at": 8, "name": 30, "category": 12,
           "level": 10, "is_published": 1, "description": 200, "price": 8}


def candidates(service: str, name: str, columns: dict) -> list:
    return derive(parse_statement(parse_query_file(SCHEMAS / service / "queries" / f"{name}.sql")), columns)


# ---------------------------------------------------------------- candidates, no database


def test_equality_then_order_with_the_partial_predicate_the_query_always_has():
    found = candidates("course", "courses_by_instructor", {"courses": COURSES})
    first = found[0]
    assert (first.table, first.keys, first.predicate) == ("courses", ("instructor_id", "created_at"),
                                                          "deleted_at IS NULL")
    assert first.definition() == ("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_live_instructor_id_created_at"
                                  " ON courses (instructor_id, created_at) WHERE deleted_at IS NULL")
    assert any(c.keys == ("instructor_id",) and c.predicate is None for c in found)


def test_keyset_row_comparison_full_text_expression_and_join_columns(tmp_path):
    keyset = candidates("course", "course_list_keyset", {"courses": COURSES})
    assert keyset[0].keys == ("created_at", "id") and keyset[0].predicate == "deleted_at IS NULL"
    # The specification's own search (the shipped key query reads the newest courses first, in CTEs).
    folder = tmp_path / "course" / "queries"
    folder.mkdir(parents=True)
    (folder / "course_search.sql").write_text(
        "-- search\n-- param term: SELECT 'piano'\nSELECT id, name FROM courses WHERE deleted_at IS NULL AND"
        " (to_tsvector('english', name) @@ plainto_tsquery('english', :term) OR to_tsvector('english', description)"
        " @@ plainto_tsquery('english', :term)) ORDER BY created_at DESC LIMIT 20;\n")
    search = derive(parse_statement(parse_query_file(folder / "course_search.sql")), {"courses": COURSES})
    gins = [c for c in search if c.method == "gin"]
    name, description = "to_tsvector('english', name)", "to_tsvector('english', description)"
    # Each side alone, and both in one multicolumn GIN index, which serves either side of the OR.
    assert {c.keys for c in gins} == {(name,), (description,), (name, description)}
    joined = candidates("course", "enrollments_of_student",
                        {"enrollments": {"student_id": 16, "enrolled_at": 8, "course_id": 16},
                         "courses": {"id": 16, "name": 30}})
    assert joined[0].table == "enrollments" and joined[0].keys == ("student_id", "enrolled_at")


def test_small_covering_columns_become_include_and_mixed_directions_stay(tmp_path):
    folder = tmp_path / "svc" / "queries"
    folder.mkdir(parents=True)
    path = folder / "q.sql"
    path.write_text("-- q\n-- param a: SELECT 1\nSELECT price FROM courses WHERE category = :a"
                    " ORDER BY level, created_at DESC;\n")
    found = derive(parse_statement(parse_query_file(path)), {"courses": COURSES})
    assert found[0].keys == ("category", "level", "created_at DESC")
    assert any(c.include == ("price",) for c in found)


def test_a_query_with_nothing_to_index_has_no_candidate(tmp_path):
    folder = tmp_path / "svc" / "queries"
    folder.mkdir(parents=True)
    (folder / "q.sql").write_text("-- everything\nSELECT * FROM courses;\n")
    assert derive(parse_statement(parse_query_file(folder / "q.sql")), {"courses": COURSES}) == []


def test_the_shipped_search_is_read_through_its_ctes_subqueries_and_union():
    found = candidates("course", "course_search_common", {"courses": COURSES})
    assert {c.table for c in found} == {"courses"}  # newest, matches, recent, older and page are no tables
    definitions = {c.definition() for c in found}
    # The CTE matches: the search document as the query writes it, as GIN, partial and whole.
    gin = "ON courses USING gin (course_search_document(name, description))"
    assert f"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_course_search_document_name_description_gin {gin}" \
        in definitions
    assert any(d.endswith(f"{gin} WHERE deleted_at IS NULL") for d in definitions), definitions
    # The subquery recent, inside the CTE newest: the newest live courses in date order.
    assert any(c.keys == ("created_at", "id") and c.predicate == "deleted_at IS NULL" for c in found)


def test_a_cte_name_is_no_table_and_each_side_of_a_union_is_read(tmp_path):
    folder = tmp_path / "course" / "queries"
    folder.mkdir(parents=True)
    path = folder / "q.sql"
    # The CTE is called courses: inside its body courses is the table, after it the CTE.
    path.write_text(
        "-- q\n-- param i: SELECT 1\n-- param n: SELECT 'x'\n-- param s: SELECT 1\n"
        "WITH courses AS (SELECT id, name FROM courses WHERE instructor_id = :i AND deleted_at IS NULL)\n"
        "SELECT id, name FROM courses WHERE name = :n\n"
        "UNION ALL\n"
        "SELECT e.course_id, e.student_name FROM (SELECT * FROM enrollments WHERE student_id = :s) e\n"
        "WHERE e.course_id IN (SELECT id FROM courses WHERE price < 10);\n")
    columns = {"courses": COURSES, "enrollments": {"course_id": 16, "student_id": 16, "student_name": 20}}
    found = derive(parse_statement(parse_query_file(path)), columns)
    keys = {(c.table, c.keys, c.predicate) for c in found}
    assert ("courses", ("instructor_id",), "deleted_at IS NULL") in keys
    assert ("enrollments", ("student_id",), None) in keys
    assert not any("name" in c.keys or "price" in c.keys for c in found), keys  # both read the CTE


# ---------------------------------------------------------------- on a real server


def indexes(conninfo: str) -> set[str]:
    with connect(conninfo) as conn:
        return {r[0] for r in conn.execute("SELECT indexname || ' ' || indexdef FROM pg_indexes"
                                           " WHERE schemaname = 'public'")}


def drop_secondary_indexes(conninfo: str) -> None:
    """Every index that backs no constraint (primary keys and UNIQUE stay: they are rules, not speed)."""
    with connect(conninfo) as conn:
        names = [r[0] for r in conn.execute(
            """SELECT quote_ident(c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
               WHERE n.nspname = 'public' AND t.relname NOT LIKE '%yoyo%' AND t.relname NOT LIKE '_dbtool%'
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""")]
        for name in names:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("ANALYZE")


@pytest.fixture
def bare(cli, project, migrated):
    """Course and chat with every secondary index dropped, on --scale data."""
    dbs, env = migrated
    result = cli("seed", "--scale", RECALL_SCALE, "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    for service in ("course", "chat"):
        drop_secondary_indexes(dbs[service])
    return dbs, env


def advise(cli, project, env, *args):
    return cli("advise", *args, "--schemas-dir", project / "schemas", env=env)


def test_recall_every_budget_met_with_one_new_index_per_query_at_most(cli, project, bare):
    dbs, env = bare
    broken = cli("explain", "course", "chat", "--schemas-dir", project / "schemas", env=env)
    assert broken.exit_code == 1, broken.stdout  # without indexes, budgets break
    result = advise(cli, project, env, "course", "chat", "--json", "--write")
    assert result.exit_code == 0, result.stderr
    data = {s["service"]: s for s in json.loads(result.stdout)}
    for service in data.values():
        per_query: dict[str, int] = {}
        for s in service["suggestions"]:
            per_query[s["query"]] = per_query.get(s["query"], 0) + 1
            assert s["cost_after"] <= s["cost_before"] / 2 and s["estimated_size_bytes"] > 0
            assert s["index_sql"].startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
            assert {"plan_before", "plan_after"} <= set(s)
        assert max(per_query.values()) == 1
    sqls = {s["index_sql"] for service in data.values() for s in service["suggestions"]}
    # Rediscovered: the spec's instructor_id index, with the order that spares the sort.
    assert any("ON courses (instructor_id, created_at) WHERE deleted_at IS NULL" in s for s in sqls), sqls
    assert any("ON chat_messages (session_id, created_at)" in s for s in sqls), sqls
    # The CTE searches: the search document's GIN index (course 006), one index for the three.
    [search] = [s for s in data["course"]["suggestions"] if s["query"] == "course_search_common"]
    assert "USING gin (course_search_document(name, description))" in search["index_sql"], search
    written = [p for service in data.values() for p in service["written"]]
    assert written and all(p.endswith(".sql") for p in written)
    lint = cli("lint", *written, "--schemas-dir", project / "schemas")
    assert lint.exit_code == 0, lint.stdout
    applied = cli("migrate", "course", "chat", "--schemas-dir", project / "schemas", env=env)
    assert applied.exit_code == 0, applied.stderr
    # Every key query, the CTE searches included: their GIN index is found inside the CTE.
    met = cli("explain", "course", "chat", "--schemas-dir", project / "schemas", env=env)
    assert met.exit_code == 0, met.stdout


def test_advise_leaves_the_database_as_it_was_and_prints_the_proof(cli, project, bare):
    dbs, env = bare
    before = indexes(dbs["course"])
    result = advise(cli, project, env, "course", "--query", "courses_by_instructor")
    assert result.exit_code == 0, result.stderr
    assert indexes(dbs["course"]) == before
    assert "courses_by_instructor: cost" in result.stdout and "Seq Scan on courses" in result.stdout
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_live_instructor_id_created_at" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines() if not line.startswith("    CREATE"))


def test_an_index_a_cte_needs_is_found_through_the_cte(cli, project, migrated):
    dbs, env = migrated
    assert cli("seed", "--scale", 5, "--schemas-dir", project / "schemas", env=env).exit_code == 0
    with connect(dbs["course"]) as conn:
        conn.execute("DROP INDEX idx_courses_instructor_id")
        conn.execute("ANALYZE courses")
    (project / "schemas" / "course" / "queries" / "instructor_page.sql").write_text(
        "-- An instructor's newest live courses, each with its enrollment count, through a CTE.\n"
        "-- param instructor_id: SELECT instructor_id FROM courses WHERE deleted_at IS NULL ORDER BY id LIMIT 1\n"
        "WITH mine AS (\n"
        "    SELECT id, name, created_at FROM courses\n"
        "    WHERE instructor_id = :instructor_id AND deleted_at IS NULL\n"
        "    ORDER BY created_at DESC LIMIT 20\n"
        ")\n"
        "SELECT m.id, m.name, (SELECT count(*) FROM enrollments e WHERE e.course_id = m.id) AS enrolled\n"
        "FROM mine m ORDER BY m.created_at DESC;\n")
    before = indexes(dbs["course"])
    result = advise(cli, project, env, "course", "--query", "instructor_page", "--json")
    assert result.exit_code == 0, result.stderr
    [suggestion] = json.loads(result.stdout)[0]["suggestions"]
    assert suggestion["query"] == "instructor_page"
    sql = suggestion["index_sql"]
    assert "ON courses (instructor_id, created_at)" in sql and sql.endswith(" WHERE deleted_at IS NULL;"), sql
    # The predicate implies deleted_at IS NULL, so an index-only scan needs no copy of deleted_at.
    assert "deleted_at," not in sql.split("INCLUDE")[-1], sql
    assert "Seq Scan on courses" in suggestion["shape_before"]
    assert suggestion["cost_after"] <= suggestion["cost_before"] / 2
    assert indexes(dbs["course"]) == before


def test_an_index_already_there_is_never_suggested_again(cli, project, migrated):
    dbs, env = migrated
    assert cli("seed", "--scale", 5, "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = advise(cli, project, env, "chat", "--query", "messages_of_session", "--json")
    assert result.exit_code == 0, result.stderr
    service = json.loads(result.stdout)[0]
    assert service["suggestions"] == []
    assert "already there: idx_chat_messages_session_id_created_at" in service["queries"][0]["note"]


def test_outside_dev_it_builds_on_a_scratch_copy_and_drops_it(cli, project, bare, server):
    dbs, env = bare
    result = advise(cli, project, env, "chat", "--env", "test", "--query", "sessions_of_user", "--json")
    assert result.exit_code == 0, result.stderr
    service = json.loads(result.stdout)[0]
    assert "scratch copy" in service["method"] and service["suggestions"]
    assert_no_scratch_left(server)


def assert_no_scratch_left(server) -> None:
    with connect(server.admin) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_scratch\\_%'").fetchone()[0] == 0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("gain", ["-1", "100.5"])
def test_min_gain_outside_0_to_100(cli, project, gain):
    result = advise(cli, project, {}, "--min-gain", gain)
    assert_one_line(result, 2, f"--min-gain {float(gain):g}", "0 to 100")


def test_unknown_query(cli, project):
    assert_one_line(advise(cli, project, {}, "--query", "nope"), 2, "--query nope")


def test_prod_without_hypopg_refuses_the_real_build_and_names_scratch_dsn(cli, project, bare, server):
    dbs, env = bare
    before = indexes(dbs["chat"])
    result = advise(cli, project, env, "chat", "--env", "prod")
    assert_one_line(result, 4, "hypopg", "--scratch-dsn", "nothing was built")
    assert indexes(dbs["chat"]) == before
    assert_no_scratch_left(server)


def test_write_with_an_invalid_tree_writes_nothing(cli, project, bare):
    dbs, env = bare
    folder = project / "schemas" / "chat"
    (folder / "009_orphan.sql").write_text("SELECT 1;\n")
    files = sorted(p.name for p in folder.iterdir())
    result = advise(cli, project, env, "chat", "--write")
    assert_one_line(result, 2, "--write", "chat", "dbtool validate chat", "nothing was written")
    assert sorted(p.name for p in folder.iterdir()) == files


def test_a_query_without_candidate_is_said_not_an_error(cli, project, bare):
    dbs, env = bare
    folder = project / "schemas" / "chat" / "queries"
    (folder / "all_sessions.sql").write_text("-- Every session.\nSELECT * FROM chat_sessions;\n")
    result = advise(cli, project, env, "chat", "--query", "all_sessions")
    assert result.exit_code == 0, result.stderr
    assert "all_sessions" in result.stdout and "no candidate" in result.stdout


def test_a_database_without_the_query_tables_analysed_is_refused(cli, project, migrated):
    dbs, env = migrated
    result = advise(cli, project, env, "chat")
    assert result.exit_code == 4 and isinstance(result.exception, SystemExit), result.stderr
    with psycopg.connect(dbs["chat"]) as conn:
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%advise%'").fetchone()[0] == 0


# ---------------------------------------------------------------- the hypothetical path (hypopg)

HYPOPG_ADMIN = os.environ.get("DBTOOL_HYPOPG_DSN")  # admin URL of a server with hypopg installed


@pytest.fixture
def hypopg_dbs():
    """identity and course databases on the hypopg server, course with the extension; dropped after."""
    if not HYPOPG_ADMIN:
        pytest.skip("DBTOOL_HYPOPG_DSN names no server with hypopg (the embedded server has none)")
    names = {s: f"{s}_{uuid.uuid4().hex[:8]}" for s in ("identity", "course")}
    with connect(HYPOPG_ADMIN) as conn:
        for name in names.values():
            conn.execute(f"CREATE DATABASE {name}")
    try:
        yield {s: make_conninfo(HYPOPG_ADMIN, dbname=n) for s, n in names.items()}
    finally:
        with connect(HYPOPG_ADMIN) as conn:
            for name in names.values():
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_hypothetical_indexes_give_the_same_advice_and_work_on_prod(cli, project, hypopg_dbs):
    env = {f"{s.upper()}_DATABASE_URL": url for s, url in hypopg_dbs.items()}
    schemas = project / "schemas"
    assert cli("migrate", "identity", "course", "--schemas-dir", schemas, env=env).exit_code == 0
    assert cli("seed", "course", "--scale", RECALL_SCALE, "--schemas-dir", schemas, env=env).exit_code == 0
    with connect(hypopg_dbs["course"]) as conn:
        conn.execute("DROP INDEX idx_courses_instructor_id")
    before = indexes(hypopg_dbs["course"])
    real = advise(cli, project, env, "course", "--query", "courses_by_instructor", "--json")
    assert real.exit_code == 0, real.stderr
    with connect(hypopg_dbs["course"]) as conn:
        conn.execute("CREATE EXTENSION hypopg")
    hypo = advise(cli, project, env, "course", "--query", "courses_by_instructor", "--json", "--env", "prod")
    assert hypo.exit_code == 0, hypo.stderr
    [r], [h] = json.loads(real.stdout), json.loads(hypo.stdout)
    assert r["method"].startswith("real build") and h["method"] == "hypothetical (hypopg)"
    assert [s["index_sql"] for s in h["suggestions"]] == [s["index_sql"] for s in r["suggestions"]]
    assert h["suggestions"][0]["estimated_size_bytes"] > 0
    assert indexes(hypopg_dbs["course"]) == before
    # An index already there is recognised from hypopg's own catalog row too.
    with connect(hypopg_dbs["course"]) as conn:
        conn.execute(h["suggestions"][0]["index_sql"])
    again = advise(cli, project, env, "course", "--query", "courses_by_instructor", "--json", "--env", "prod")
    [a] = json.loads(again.stdout)
    assert a["suggestions"] == [] and "already there" in a["queries"][0]["note"], a


def test_the_password_never_shows_and_the_scratch_copy_reads_with_it(cli, project, bare, server):
    dbs, env = bare
    if not server.checks_passwords:
        pytest.skip("this server does not check passwords")
    dbname = conninfo_to_dict(dbs["chat"])["dbname"]
    url = server.conninfo(dbname, user=PASSWORD_ROLE, password=PASSWORD)
    result = advise(cli, project, {**env, "CHAT_DATABASE_URL": url}, "chat", "--env", "test",
                    "--query", "sessions_of_user")
    assert result.exit_code == 0, result.stderr
    assert PASSWORD not in result.output and "scratch copy" in result.output
    assert_no_scratch_left(server)


# ---------------------------------------------------------------- --from-stats: pg_stat_statements


@pytest.fixture
def stats_seeded(cli, project, stats_db):
    """Every service migrated and seeded on the server that preloads pg_stat_statements."""
    from fleet import databases, env_for

    dbs = databases(stats_db)
    env = env_for(dbs)
    assert cli("migrate", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = cli("seed", "course", "--scale", RECALL_SCALE, "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    return dbs, env


LOOKUP = "SELECT id, name, price FROM courses WHERE instructor_name = %s AND deleted_at IS NULL"


def run_the_application(conninfo: str) -> None:
    """What the service's traffic leaves in pg_stat_statements: a lookup no index serves, many calls;
    beside it a catalog query, a read of yoyo's table, a view and a write, none of them the advisor's."""
    with connect(conninfo) as conn:
        names = [r[0] for r in conn.execute("SELECT DISTINCT instructor_name FROM courses ORDER BY 1 LIMIT 20")]
        for n in range(300):
            conn.execute(LOOKUP, (names[n % len(names)],))
        conn.execute("CREATE VIEW live_courses AS SELECT * FROM courses WHERE deleted_at IS NULL")
        for _ in range(300):
            conn.execute("SELECT count(*) FROM pg_class WHERE relkind = %s", ("r",))
            conn.execute("SELECT count(*) FROM _yoyo_migration WHERE migration_id <> %s", ("x",))
            conn.execute("SELECT count(*) FROM live_courses WHERE price > %s", (1,))
        conn.execute("UPDATE courses SET price = price WHERE instructor_name = %s", (names[0],))
        # The key query courses_by_instructor as the service sends it: advised as the key query only.
        for _ in range(300):
            conn.execute("select * from courses where instructor_id = %s and deleted_at is null"
                         " order by created_at desc limit 10", (uuid.uuid4(),))


def test_from_stats_advises_the_statement_the_application_runs_most(cli, project, stats_seeded):
    dbs, env = stats_seeded
    with connect(dbs["course"]) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
    run_the_application(dbs["course"])
    before = indexes(dbs["course"])
    result = advise(cli, project, env, "course", "--from-stats", "--json")
    assert result.exit_code == 0, result.stderr
    [service] = json.loads(result.stdout)
    assert service["stats_problem"] is None
    stats = [q for q in service["queries"] if q["query"].startswith("stats:")]
    assert 1 <= len(stats) <= 10
    for q in stats:  # only the service's own reads
        text = q["statement"]
        assert text.lstrip().upper().startswith(("SELECT", "WITH")), text
        assert "pg_class" not in text and "_yoyo" not in text and "live_courses" not in text, text
        assert "instructor_id = $1" not in text, text
    [lookup] = [s for s in service["suggestions"] if "instructor_name = $1" in s.get("statement", "")]
    assert lookup["query"] == f"stats:{lookup['query'].split(':')[1]}" and lookup["calls"] >= 300
    assert lookup["total_exec_ms"] > 0
    assert "ON courses (instructor_name)" in lookup["index_sql"], lookup["index_sql"]
    assert lookup["cost_after"] <= lookup["cost_before"] / 2
    assert "Seq Scan on courses" in lookup["shape_before"]
    assert lookup["plan_before"]["Node Type"] and lookup["plan_after"] and lookup["estimated_size_bytes"] > 0
    # The key queries are advised beside the statements, as without --from-stats.
    assert {q.stem for q in (project / "schemas" / "course" / "queries").glob("*.sql")} <= {
        q["query"] for q in service["queries"]}
    assert indexes(dbs["course"]) == before
    # In text, --top 1: the one statement, named with its first line, and its migration written.
    text = advise(cli, project, env, "course", "--from-stats", "--top", "1", "--write")
    assert text.exit_code == 0, text.stderr
    assert f"{lookup['query']}: cost" in text.stdout and f"\n    {LOOKUP.replace('%s', '$1')[:70]}" in text.stdout
    flat = " ".join(text.stdout.split())  # prose wraps at 80 columns
    assert "300 calls" in flat and "11 key queries and 1 statement(s) from pg_stat_statements" in flat
    # 80 columns but for the SQL and the paths written, printed whole to be copied.
    assert all(len(line) <= 80 for line in text.stdout.splitlines()
               if not line.startswith("    CREATE") and not line.endswith(".sql"))
    [up, down] = [Path(p) for p in text.stdout.split() if p.endswith(".sql") and "instructor_name" in p]
    assert f"-- {lookup['query']} (300 calls" in up.read_text() and "instructor_name = $1" in up.read_text()
    assert "DROP INDEX CONCURRENTLY IF EXISTS idx_courses_live_instructor_name" in down.read_text()
    assert cli("lint", up, down, "--schemas-dir", project / "schemas").exit_code == 0
    # Outside dev: the statements read on the live database, priced on a scratch copy, dropped after.
    scratch = advise(cli, project, env, "course", "--env", "test", "--from-stats", "--top", "1", "--json")
    assert scratch.exit_code == 0, scratch.stderr
    [tested] = json.loads(scratch.stdout)
    assert "scratch copy" in tested["method"]
    assert [s["index_sql"] for s in tested["suggestions"] if s["query"] == lookup["query"]] == [up_sql(up)]
    with connect(make_conninfo(dbs["course"], dbname="postgres")) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_scratch\\_%'").fetchone()[0] == 0
    # A service without key query files: its statements alone.
    shutil.rmtree(project / "schemas" / "course" / "queries")
    alone = advise(cli, project, env, "course", "--from-stats", "--top", "2", "--json")
    assert alone.exit_code == 0, alone.stderr
    assert [q["query"][:6] for q in json.loads(alone.stdout)[0]["queries"]] == ["stats:", "stats:"]


def up_sql(path: Path) -> str:
    return path.read_text().splitlines()[-1]


def test_from_stats_without_the_extension_in_the_database_says_create_extension(cli, project, stats_seeded):
    dbs, env = stats_seeded
    folder = project / "schemas" / "course"
    files = sorted(p.name for p in folder.iterdir())
    result = advise(cli, project, env, "course", "--from-stats", "--write")
    dbname = conninfo_to_dict(dbs["course"])["dbname"]
    assert_one_line(result, 2, "--from-stats", f"not installed in {dbname}",
                    f"CREATE EXTENSION pg_stat_statements in {dbname}", "preloads it already", "nothing was written")
    assert "courses_by_instructor" in result.stdout  # the key queries were advised all the same
    assert sorted(p.name for p in folder.iterdir()) == files


@pytest.mark.parametrize("installed", [False, True], ids=["not installed", "installed, not preloaded"])
def test_from_stats_on_a_server_without_the_preload_names_both_steps(cli, project, seeded, server, installed):
    dbs, env = seeded
    if installed:  # the files are there: CREATE EXTENSION works, reading the view does not
        with connect(dbs["course"]) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
    before = indexes(dbs["course"])
    result = advise(cli, project, env, "course", "--from-stats", "--json")
    needles = ["--from-stats", "shared_preload_libraries = 'pg_stat_statements'",
               "the key queries were advised without it"]
    needles += ["does not preload it", "restart it"] if installed else ["not installed", "CREATE EXTENSION"]
    assert_one_line(result, 2, *needles)
    [service] = json.loads(result.stdout)  # the key queries' advice, as JSON, before the error line
    assert service["suggestions"] or service["queries"]
    assert not any(q["query"].startswith("stats:") for q in service["queries"])
    assert "shared_preload_libraries" in service["stats_problem"]
    assert indexes(dbs["course"]) == before
    assert_no_scratch_left(server)


@pytest.mark.parametrize("args", [["--top", "3"], ["--from-stats", "--top", "0"]])
def test_top_without_from_stats_or_below_one(cli, project, args):
    assert_one_line(advise(cli, project, {}, *args), 2, f"--top {args[-1]}")


def test_generic_plan_and_the_prepared_fallback_agree(seeded):
    from dbtool.advise.stats import explain_generic

    dbs, _ = seeded
    text = ("SELECT id, name FROM courses WHERE instructor_id = $1 AND deleted_at IS NULL"
            " ORDER BY created_at DESC LIMIT $2")
    with connect(dbs["course"]) as conn:
        plans = []
        for option in (True, False):  # EXPLAIN (GENERIC_PLAN), then PREPARE and EXPLAIN EXECUTE
            with conn.transaction(force_rollback=True):
                plans.append(explain_generic(conn, text, option))
        assert plans[0]["Total Cost"] == plans[1]["Total Cost"] > 0
        assert plans[0]["Node Type"] == plans[1]["Node Type"]
        assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0] == 0
        assert conn.execute("SHOW plan_cache_mode").fetchone()[0] == "auto"  # set for the transaction only

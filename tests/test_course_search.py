"""Course search (course migrations 006-007 and the course_search_* key queries): the page is the one
the specification's search gives (name or description, English, live courses only, newest first)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from conftest import SCHEMAS, connect
from psycopg import sql

from dbtool import config
from dbtool.data.seed import seed
from dbtool.inspect.queries import parse_query_file
from dbtool.migrate.commands import migrate

QUERIES = sorted((SCHEMAS / "course" / "queries").glob("course_search_*.sql"))
# The meaning of a search, written the plain way: every word of the term in the name and description.
REFERENCE = """
SELECT id FROM courses
WHERE to_tsvector('english', name || ' ' || coalesce(description, '')) @@ plainto_tsquery('english', %(term)s)
  AND deleted_at IS NULL
ORDER BY created_at DESC, id DESC
LIMIT 20"""
# More than the 500 newest courses the query looks at first, so a term can match only older ones.
SCALE = 6


@pytest.fixture(scope="module")
def catalogue(test_server):
    """Course and identity databases at --scale 6 (1,200 courses), shared by this module's tests."""
    names = {service: f"search_{service}_{uuid.uuid4().hex[:8]}" for service in ("identity", "course")}
    with psycopg.connect(test_server.admin, autocommit=True) as conn:
        for name in names.values():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        urls = {config.url_variable(s): test_server.conninfo(name) for s, name in names.items()}
        settings = config.make_settings(SCHEMAS, environ=urls)
        migrate(settings, ["identity", "course"])
        seed(settings, ["course"], scale=SCALE)
        yield urls[config.url_variable("course")]
    finally:
        with psycopg.connect(test_server.admin, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def page(conn, term: str) -> list:
    query = parse_query_file(QUERIES[0])
    return [row[0] for row in conn.execute(query.sql, {"term": term})]


def test_the_three_key_queries_are_one_statement_with_a_budget():
    assert [p.stem for p in QUERIES] == ["course_search_absent", "course_search_common", "course_search_rare"]
    parsed = [parse_query_file(p) for p in QUERIES]
    assert len({q.text for q in parsed}) == 1  # what the service runs, measured with three terms
    assert all(q.budget.max_ms == 50 and q.budget.no_seq_scan for q in parsed)


def test_sample_terms_are_common_rare_and_absent(catalogue):
    found = {}
    with connect(catalogue) as conn:
        for path in QUERIES:
            query = parse_query_file(path)
            term = conn.execute(query.params["term"].encode()).fetchone()[0]
            found[path.stem] = conn.execute(
                "SELECT count(*) FROM courses WHERE course_search_document(name, description)"
                " @@ plainto_tsquery('english', %s)", (term,)).fetchone()[0]
    live = SCALE * 200
    assert found["course_search_common"] > live / 10
    assert 0 < found["course_search_rare"] < live / 100
    assert found["course_search_absent"] == 0


@pytest.mark.parametrize("term", ["guitar", "Jazz piano", "songwriting concert", "ear training advanced",
                                  "Modern guitar: technique beginner", "feedback", "MC7", "mc1000 piano",
                                  "violin", "the", ""])
def test_a_page_is_the_newest_live_matches(catalogue, term):
    with connect(catalogue) as conn:
        expected = [row[0] for row in conn.execute(REFERENCE, {"term": term})]
        assert page(conn, term) == expected


def test_only_older_matches_and_deleted_courses(catalogue):
    with connect(catalogue) as conn:
        with conn.transaction(force_rollback=True):
            # The newest courses soft-deleted: their matches must go, older live ones take their place.
            conn.execute("""UPDATE courses SET deleted_at = now() WHERE id IN (
                              SELECT id FROM courses ORDER BY created_at DESC LIMIT 700)""")
            for term in ("guitar", "Jazz piano", "vocal improvisation"):
                expected = [row[0] for row in conn.execute(REFERENCE, {"term": term})]
                assert expected and page(conn, term) == expected
        with conn.transaction(force_rollback=True):
            # A word only the oldest course holds: found behind the 500 newest.
            oldest = conn.execute("SELECT id FROM courses ORDER BY created_at, id LIMIT 1").fetchone()[0]
            conn.execute("UPDATE courses SET description = description || ' Zither.' WHERE id = %s", (oldest,))
            assert page(conn, "zither") == [oldest]


def test_the_name_outranks_the_description(catalogue):
    with connect(catalogue) as conn:
        name_only, description_only = conn.execute(
            """SELECT ts_rank(course_search_document('Piano', 'Lessons'), plainto_tsquery('english', 'piano')),
                      ts_rank(course_search_document('Lessons', 'Piano'), plainto_tsquery('english', 'piano'))"""
        ).fetchone()
    assert name_only > description_only > 0

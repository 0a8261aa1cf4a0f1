"""The course list's total (course migration 008): counter rows the database keeps equal to count(*)."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from conftest import SCHEMAS, connect

from dbtool.app.enrollment import CourseFull, enroll_student
from dbtool.errors import Refused
from dbtool.migrate.runner import migrate_connection, rollback_connection
from dbtool.migrate.tree import load_tree

WRITERS = 50
TOTAL = "SELECT coalesce(sum(live_courses), 0) FROM course_counts"
COUNT = "SELECT count(*) FROM courses WHERE deleted_at IS NULL"
NEW_COURSE = """INSERT INTO courses (name, price, instructor_id, instructor_name, duration_minutes, max_students)
                VALUES (%s, 5000, gen_random_uuid(), 'Nina Simone', 60, %s) RETURNING id"""


@pytest.fixture
def course_db(db) -> str:
    with connect(db) as conn:
        migrate_connection(conn, load_tree(SCHEMAS / "course"))
    return db


def totals(conninfo: str) -> tuple[int, int]:
    with connect(conninfo) as conn:
        return conn.execute(TOTAL).fetchone()[0], conn.execute(COUNT).fetchone()[0]


def test_the_migration_counts_the_courses_already_there(db):
    tree = load_tree(SCHEMAS / "course")
    with connect(db) as conn:
        migrate_connection(conn, tree, to=7)
        conn.execute("""INSERT INTO courses (name, price, instructor_id, instructor_name, duration_minutes, deleted_at)
                        SELECT 'Old ' || n, 100, gen_random_uuid(), 'X', 30, CASE WHEN n % 4 = 0 THEN now() END
                        FROM generate_series(1, 40) n""")
        migrate_connection(conn, tree)
    assert totals(db) == (30, 30)


def test_every_kind_of_write_moves_the_total(course_db):
    with connect(course_db) as conn:
        conn.execute("""INSERT INTO courses (name, price, instructor_id, instructor_name, duration_minutes, deleted_at)
                        SELECT 'Bulk ' || n, 100, gen_random_uuid(), 'X', 30, CASE WHEN n > 90 THEN now() END
                        FROM generate_series(1, 100) n""")
        assert conn.execute(TOTAL).fetchone()[0] == 90  # rows inserted already deleted do not count
        with conn.cursor().copy("COPY courses (name, price, instructor_id, instructor_name, duration_minutes)"
                                " FROM STDIN") as copy:
            for n in range(25):
                copy.write_row((f"Copied {n}", 100, uuid.uuid4(), "Y", 30))
        assert conn.execute(TOTAL).fetchone()[0] == 115
        conn.execute("UPDATE courses SET deleted_at = now() WHERE name LIKE 'Copied %'")  # soft delete
        conn.execute("UPDATE courses SET deleted_at = now() WHERE name LIKE 'Copied %'")  # again: no change
        assert conn.execute(TOTAL).fetchone()[0] == 90
        conn.execute("UPDATE courses SET deleted_at = NULL WHERE name = 'Copied 1'")  # restore
        conn.execute("UPDATE courses SET price = price + 1")  # touches no liveness
        conn.execute("DELETE FROM courses WHERE name IN ('Bulk 1', 'Bulk 95')")  # one live, one deleted
        assert totals(course_db) == (90, 90)
        conn.execute("TRUNCATE courses CASCADE")
        assert totals(course_db) == (0, 0)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO course_counts (slot) VALUES (32)")


def test_a_rolled_back_write_leaves_the_total(course_db):
    with psycopg.connect(course_db) as conn:
        conn.execute(NEW_COURSE, ("Gone", 10))
        conn.rollback()
    assert totals(course_db) == (0, 0)


def test_fifty_concurrent_writers_leave_the_total_equal_to_count(course_db):
    """Course writers and enrollments at once: the total is exact after they finish, none deadlock."""
    with connect(course_db) as conn:
        shared = [conn.execute(NEW_COURSE, (f"Shared {n}", 3)).fetchone()[0] for n in range(5)]
    conns = [psycopg.connect(course_db, autocommit=True) for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        conn = conns[n]
        start.wait()
        try:
            for round_ in range(10):
                if n % 2:  # half of them enrol, mostly into full courses
                    try:
                        enroll_student(conn, shared[(n + round_) % len(shared)], uuid.uuid4(), f"S{n}")
                    except CourseFull:
                        pass
                    continue
                with conn.transaction():
                    ids = [conn.execute(NEW_COURSE, (f"W{n} {round_} {k}", 10)).fetchone()[0] for k in range(3)]
                    conn.execute("UPDATE courses SET deleted_at = now() WHERE id = %s", (ids[0],))
                if round_ % 3 == 0:
                    conn.execute("DELETE FROM courses WHERE id = %s", (ids[1],))
                if round_ % 4 == 0:
                    conn.execute("UPDATE courses SET deleted_at = NULL WHERE id = %s", (ids[0],))
        except BaseException as exc:  # kept, then asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for conn in conns:
        conn.close()
    assert errors == []
    total, count = totals(course_db)
    assert total == count and count > len(shared)
    with connect(course_db) as conn:
        used = conn.execute("SELECT count(*) FROM course_counts WHERE live_courses <> 0").fetchone()[0]
        full = conn.execute("SELECT count(*) FROM courses WHERE current_students = max_students").fetchone()[0]
    assert used > 1  # the writers were spread over several slots
    assert full == len(shared)  # the capacity guard and enroll_student still hold


def test_rolling_back_counts_guarded_then_rebuilt(course_db):
    """The counters hold rows once a course exists, so rollback wants --force; migrating again recounts."""
    tree = load_tree(SCHEMAS / "course")
    with connect(course_db) as conn:
        conn.execute(NEW_COURSE, ("Kept", 10))
        with pytest.raises(Refused, match="drops table course_counts, which holds rows"):
            rollback_connection(conn, tree, steps=1)
        rollback_connection(conn, tree, steps=1, force=True)
        assert conn.execute("SELECT to_regclass('course_counts')").fetchone()[0] is None
        conn.execute(NEW_COURSE, ("Added meanwhile", 10))
        migrate_connection(conn, tree)
    assert totals(course_db) == (2, 2)

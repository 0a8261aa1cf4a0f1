"""Course capacity holds under concurrent enrollments: the database itself refuses to overbook."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from conftest import SCHEMAS, connect

from dbtool.app.enrollment import (
    AlreadyEnrolled,
    CourseFull,
    CourseNotFound,
    enroll_student,
)
from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.tree import load_tree

CLIENTS = 50
SEATS = 10


@pytest.fixture
def course_db(db) -> str:
    with connect(db) as conn:
        migrate_connection(conn, load_tree(SCHEMAS / "course"))
    return db


def add_course(conninfo: str, seats: int) -> str:
    with connect(conninfo) as conn:
        return str(conn.execute(
            """INSERT INTO courses (name, price, instructor_id, instructor_name, duration_minutes, max_students)
               VALUES ('Jazz piano', 5000, gen_random_uuid(), 'Nina Simone', 60, %s) RETURNING id""",
            (seats,),
        ).fetchone()[0])


def counts(conninfo: str, course_id: str) -> tuple[int, int]:
    with connect(conninfo) as conn:
        return conn.execute(
            """SELECT current_students, (SELECT count(*) FROM enrollments WHERE course_id = c.id)
               FROM courses c WHERE id = %s""",
            (course_id,),
        ).fetchone()


def test_fifty_concurrent_enrollments_fill_ten_seats_exactly(course_db):
    course_id = add_course(course_db, SEATS)
    # Every client connects first, then all call at once: the calls really overlap.
    conns = [psycopg.connect(course_db, autocommit=True) for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)
    outcomes: list[object] = [None] * CLIENTS

    def client(n: int) -> None:
        start.wait()
        try:
            outcomes[n] = enroll_student(conns[n], course_id, uuid.uuid4(), f"Student {n}")
        except Exception as exc:  # kept, then asserted on below
            outcomes[n] = exc

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for conn in conns:
        conn.close()

    enrolled = [o for o in outcomes if isinstance(o, uuid.UUID)]
    refused = [o for o in outcomes if isinstance(o, CourseFull)]
    assert len(enrolled) == SEATS and len(set(enrolled)) == SEATS
    assert len(refused) == CLIENTS - SEATS, [o for o in outcomes if not isinstance(o, (uuid.UUID, CourseFull))]
    assert all(str(e).startswith("course is full") and "\n" not in str(e) for e in refused)
    assert counts(course_db, course_id) == (SEATS, SEATS)


def test_a_write_that_bypasses_the_function_cannot_overbook(course_db):
    course_id = add_course(course_db, 2)
    with connect(course_db) as conn:
        with pytest.raises(psycopg.errors.CheckViolation, match="course is full"):
            conn.execute(
                """INSERT INTO enrollments (course_id, student_id, student_name)
                   SELECT %s, gen_random_uuid(), 'Student ' || n FROM generate_series(1, 3) n""",
                (course_id,),
            )
        with pytest.raises(psycopg.errors.CheckViolation, match="courses_capacity_check"):
            conn.execute("UPDATE courses SET current_students = 3 WHERE id = %s", (course_id,))
    assert counts(course_db, course_id) == (0, 0)


def test_cancelled_enrollments_do_not_hold_seats(course_db):
    course_id = add_course(course_db, 1)
    with connect(course_db) as conn:
        conn.execute(
            """INSERT INTO enrollments (course_id, student_id, student_name, status)
               VALUES (%s, gen_random_uuid(), 'Gone', 'cancelled')""",
            (course_id,),
        )
        enroll_student(conn, course_id, uuid.uuid4(), "Here")
        with pytest.raises(psycopg.errors.CheckViolation, match="course is full"):
            conn.execute("UPDATE enrollments SET status = 'enrolled' WHERE status = 'cancelled'")


def test_the_specifications_own_transaction_still_works(course_db):
    """Section 8 locks, inserts and bumps the counter itself; the guards must not get in its way."""
    course_id = add_course(course_db, 1)
    with psycopg.connect(course_db) as conn:
        with conn.transaction():
            conn.execute("SELECT max_students, current_students FROM courses WHERE id = %s FOR UPDATE", (course_id,))
            conn.execute("INSERT INTO enrollments (course_id, student_id, student_name) VALUES (%s, %s, 'A')",
                         (course_id, uuid.uuid4()))
            conn.execute("UPDATE courses SET current_students = current_students + 1 WHERE id = %s", (course_id,))
    assert counts(course_db, course_id) == (1, 1)


def test_refusals_are_clear_and_leave_the_callers_transaction_usable(course_db):
    course_id = add_course(course_db, 2)
    student = uuid.uuid4()
    with psycopg.connect(course_db) as conn:  # not autocommit: the caller's own transaction
        conn.execute("SELECT 1")
        enroll_student(conn, course_id, student, "Ada")
        with pytest.raises(AlreadyEnrolled, match="already enrolled"):
            enroll_student(conn, course_id, student, "Ada")
        enroll_student(conn, course_id, uuid.uuid4(), "Bob")
        with pytest.raises(CourseFull, match=r"^course is full: course .* has 2 of 2 seats taken"):
            enroll_student(conn, course_id, uuid.uuid4(), "Cy")
        with pytest.raises(CourseNotFound, match="does not exist"):
            enroll_student(conn, uuid.uuid4(), uuid.uuid4(), "Di")
        conn.commit()
    assert counts(course_db, course_id) == (2, 2)

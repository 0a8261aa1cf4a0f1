"""Enrol a student through the database's enroll_student() function, with errors that say what happened.

The function (course migration 003) is the specification's enrollment transaction in one call: it
locks the course row, refuses a full course and keeps current_students in step. Call it from an
application's own connection:

>>> import psycopg
>>> from dbtool.app.enrollment import enroll_student, CourseFull
>>> with psycopg.connect(conninfo) as conn:
...     try:
...         enrollment_id = enroll_student(conn, course_id, student_id, "Ada Lovelace")
...     except CourseFull as exc:
...         print(exc)  # course is full: course 5f0c... has 10 of 10 seats taken; ...

or let dbtool find the database the way every command does:

>>> from dbtool import config, enroll
>>> enroll.enroll(config.make_settings(), "course", course_id, student_id, "Ada Lovelace")
"""

from __future__ import annotations

from uuid import UUID

import psycopg
from psycopg import errors as pgerrors

from .. import server
from ..config import Settings, resolve_target, select_services
from ..errors import BadInput, Refused


class CourseFull(Refused):
    """Every seat of the course is taken; nothing was written."""


class CourseNotFound(BadInput):
    """No course with that id (or it is soft-deleted); nothing was written."""


class AlreadyEnrolled(Refused):
    """The student already holds an enrollment in the course; nothing was written."""


def enroll_student(conn: psycopg.Connection, course_id: UUID | str, student_id: UUID | str,
                   student_name: str) -> UUID:
    """Enrol a student and return the new enrollment's id; raise CourseFull, CourseNotFound or AlreadyEnrolled.

    Runs in its own transaction on an autocommit connection, or in a savepoint inside the caller's
    transaction, so a refused enrollment leaves the caller's transaction usable.
    """
    try:
        with conn.transaction():
            row = conn.execute("SELECT enroll_student(%s, %s, %s)",
                               (str(course_id), str(student_id), student_name)).fetchone()
    except pgerrors.CheckViolation as exc:
        detail = exc.diag.message_detail or f"course {course_id} has no free seat"
        raise CourseFull(f"course is full: {detail}; choose another course or raise its max_students") from None
    except pgerrors.NoDataFound:
        raise CourseNotFound(f"course {course_id} does not exist or is deleted; check the course id") from None
    except pgerrors.UniqueViolation:
        raise AlreadyEnrolled(f"student {student_id} is already enrolled in course {course_id}; nothing to do") from None
    except pgerrors.UndefinedFunction:
        raise BadInput(f"{conn.info.dbname}: has no enroll_student() function; run 'dbtool migrate' first") from None
    assert row is not None
    return row[0]


def enroll(settings: Settings, service: str, course_id: UUID | str, student_id: UUID | str,
           student_name: str) -> UUID:
    """enroll_student() on the service's database, found as every command finds it."""
    select_services(settings, [service])
    conninfo = server.target_conninfo(resolve_target(service, settings), settings)
    with server.connect(conninfo, wait=settings.wait) as conn:
        return enroll_student(conn, course_id, student_id, student_name)

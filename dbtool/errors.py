"""One error family, and what a stray psycopg error or OSError is in it.

The CLI catches everything in one place (`cli.boundary`) and exits with the error's code.
"""

from __future__ import annotations

import sys
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1  # findings or pending work the user asked to fail on
    BAD_INPUT = 2  # arguments, configuration, a malformed migration tree or migration
    UNREACHABLE = 3  # database unreachable, connection or privilege refused, a server problem
    REFUSED = 4  # refused for safety: data loss, edited migration, prod without --yes
    INTERNAL = 70  # a bug in dbtool (sysexits' EX_SOFTWARE): rerun with --traceback and report it
    INTERRUPTED = 130  # SIGINT
    PIPE_CLOSED = 141  # the reader of stdout went away (`| head`), as a command SIGPIPE killed
    TERMINATED = 143  # SIGTERM


class DbtoolError(Exception):
    """Base of every error dbtool reports; the message is one line that states the fix."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class BadInput(DbtoolError):
    exit_code = ExitCode.BAD_INPUT


class MigrationTreeError(BadInput):
    """Every problem of a migration tree, one line each, so a user fixes them in one pass."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class DatabaseUnavailable(DbtoolError):
    exit_code = ExitCode.UNREACHABLE


class Refused(DbtoolError):
    exit_code = ExitCode.REFUSED


class Findings(DbtoolError):
    exit_code = ExitCode.FINDINGS


class InternalError(DbtoolError):
    exit_code = ExitCode.INTERNAL


def classify(exc: BaseException) -> DbtoolError:
    """The member of the family a stray exception is: psycopg errors by SQLSTATE class, OSError as a
    path the user gave, anything else an internal error."""
    if isinstance(exc, DbtoolError):
        return exc
    psycopg = sys.modules.get("psycopg")  # loaded by then if a database was involved at all
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return _database_error(exc)
    if isinstance(exc, OSError):
        where = exc.filename or "a file"
        return BadInput(f"{where}: {exc.strerror or exc}; check the path and its permissions")
    return InternalError(f"internal error: {type(exc).__name__}: {exc}; rerun with --traceback and report it")


def _database_error(exc) -> DbtoolError:  # noqa: ANN001 - psycopg.Error, not imported here
    state = exc.sqlstate or ""
    diag = exc.diag
    message = ((diag.message_primary if diag else None) or str(exc)).strip().splitlines()[0]
    if state == "42501":
        from .roles.denied import (
            explain,  # no psycopg there: only the message is parsed
        )

        return DatabaseUnavailable(explain(message))
    if state.startswith(("23", "42", "22", "2B", "3F")):  # constraints, syntax/undefined, data, schema
        return BadInput(f"the database refused a statement: {message}; fix it and run again")
    # 08 connection exceptions, 57P shutdown/termination, and any other server-side failure.
    return DatabaseUnavailable(f"the server failed or went away: {message}; check the server and run again")


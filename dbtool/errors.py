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


LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out: migrate retries it, everything else reports it

# SQLSTATEs that are a condition of the server or the session, not the fault of the statement that met
# it: what each means and its fix. Exit 3 like an unreachable server, never "fix the statement".
_CONDITIONS = {
    "25006": "the database is read-only (a standby, or default_transaction_read_only is on for this"
             " database or role); point the URL at the primary, or turn the setting off",
    "57014": "the statement was cancelled: statement_timeout ran out (dbtool's --statement-timeout, a"
             " migration's '-- statement-timeout:' line, or the role's or database's setting), or another"
             " session cancelled it; give it more time",
    LOCK_NOT_AVAILABLE: "a lock was not granted within lock_timeout because another session holds it; run again"
             " once that session is done",
    "40P01": "deadlock with another session, which won; run again",
    "40001": "serialization failure against a concurrent transaction; run again",
    "53100": "the server's disk is full; free space on it",
    "53200": "the server is out of memory; free memory on it or lower work_mem",
    "53300": "the server has no connection slot left (max_connections); close idle sessions",
    "53400": "a server configuration limit was reached (max_locks_per_transaction and the like); raise it",
}


def connection_ended(exc) -> bool:  # noqa: ANN001 - psycopg.Error, not imported here
    """Shut down, terminated or cut off (SQLSTATE 57P.., 08...): the server's doing, not the statement's."""
    return (getattr(exc, "sqlstate", None) or "").startswith(("57P", "08"))


def server_condition(exc) -> str | None:  # noqa: ANN001 - psycopg.Error, not imported here
    """What a server-side condition means and how to clear it, or None when the statement is to blame."""
    state = getattr(exc, "sqlstate", None) or ""
    if state in _CONDITIONS:
        return _CONDITIONS[state]
    if connection_ended(exc):
        return "the server ended the connection (shut down, restarted, or the session was terminated)"
    return None


def _database_error(exc) -> DbtoolError:  # noqa: ANN001 - psycopg.Error, not imported here
    state = exc.sqlstate or ""
    diag = exc.diag
    message = ((diag.message_primary if diag else None) or str(exc)).strip().splitlines()[0]
    if state == "42501":
        from .roles.denied import (
            explain,  # no psycopg there: only the message is parsed
        )

        return DatabaseUnavailable(explain(message))
    condition = server_condition(exc)
    if condition:
        return DatabaseUnavailable(f"{message}: {condition}; then run again")
    if state.startswith(("23", "42", "22", "2B", "3F")):  # constraints, syntax/undefined, data, schema
        return BadInput(f"the database refused a statement: {message}; fix it and run again")
    # Any other server-side failure, or a connection lost before a SQLSTATE came back.
    return DatabaseUnavailable(f"the server failed or went away: {message}; check the server and run again")

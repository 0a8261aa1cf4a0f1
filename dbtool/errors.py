"""One error family. The CLI catches DbtoolError in one place and exits with its code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1  # findings or pending work the user asked to fail on
    BAD_INPUT = 2  # arguments, configuration, a malformed migration tree or migration
    UNREACHABLE = 3  # database unreachable or connection refused
    REFUSED = 4  # refused for safety: data loss, edited migration, prod without --yes


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

"""A migration file as lint reads it: statements with positions, and `-- dbtool: ignore` comments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pglast import ast, parse_sql
from pglast.parser import ParseError

from ..errors import BadInput
from .rules import RULES

IGNORE = re.compile(r"^\s*--\s*dbtool:\s*ignore\b(?P<rest>.*)$", re.IGNORECASE)


@dataclass
class Stmt:
    node: ast.Node
    start: int  # character offset of the statement in its file
    ignores: dict[str, str]  # rule -> reason, from the comment lines right above the statement


@dataclass
class Source:
    path: Path
    text: str
    transactional: bool
    statements: list[Stmt]
    direction: str  # "up", "down", or "loose" for a .sql file outside a migration tree

    def position(self, offset: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, offset) + 1
        return line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1


def parse_source(path: Path, text: str, direction: str, transactional: bool) -> Source:
    try:
        raws = parse_sql(text)
    except ParseError as exc:
        message, offset = exc.args[0], (exc.args[1] if len(exc.args) > 1 else 0)
        line = text.count("\n", 0, max(offset, 0)) + 1
        raise BadInput(f"{path}:{line}: {message}; fix the SQL") from None
    lines = text.splitlines()
    starts = [_skip_space_and_comments(text, raw.stmt_location or 0) for raw in raws]
    # A comment line inside a statement (a function body) is SQL text, not an ignore comment.
    inside = set()
    for raw, start in zip(raws, starts):
        end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
        inside.update(range(text.count("\n", 0, start) + 2, text.count("\n", 0, end) + 2))
    ignores = _ignore_comments(path, lines, inside)
    statements = []
    for raw, start in zip(raws, starts):
        first_line = text.count("\n", 0, start) + 1
        mine: dict[str, str] = {}
        # The ignore comments in the block of comment lines directly above the statement.
        n = first_line - 1
        while n >= 1 and lines[n - 1].strip().startswith("--"):
            if n in ignores:
                rule, reason = ignores.pop(n)
                mine[rule] = reason
            n -= 1
        statements.append(Stmt(raw.stmt, start, mine))
    for n in ignores:
        raise BadInput(f"{path}:{n}: ignore comment stands above no statement; put it on the line before"
                       " the statement it silences")
    return Source(path, text, transactional, statements, direction)


def _skip_space_and_comments(text: str, pos: int) -> int:
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text.startswith("--", pos):
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end + 1
        elif text.startswith("/*", pos):
            end = text.find("*/", pos)
            pos = len(text) if end < 0 else end + 2
        else:
            break
    return pos


def _ignore_comments(path: Path, lines: list[str], skip: set[int]) -> dict[int, tuple[str, str]]:
    found = {}
    for n, text in enumerate(lines, 1):
        match = IGNORE.match(text)
        if not match or n in skip:
            continue
        rule, _, reason = match["rest"].strip().partition(" ")
        if not rule:
            raise BadInput(f"{path}:{n}: ignore comment names no rule; write '-- dbtool: ignore RULE reason'")
        if rule not in RULES:
            raise BadInput(f"{path}:{n}: unknown lint rule {rule!r}; use one of {', '.join(RULES)}")
        if not reason.strip():
            raise BadInput(f"{path}:{n}: ignoring {rule} needs a reason; write"
                           f" '-- dbtool: ignore {rule} <why it is safe here>'")
        found[n] = (rule, reason.strip())
    return found

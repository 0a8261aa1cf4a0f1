"""What the text of a migration file says, read without a database: its statements as yoyo splits
them (with the line each starts on), its leading directives, and which statements end the
transaction, build an index concurrently or stream COPY rows through a client.

The scans here blank out comments, strings and dollar-quoted bodies first, so a `;` or a keyword
inside them never counts. A file is split as sqlparse (yoyo's splitter) splits it: by a plain scan
where that gives sqlparse's answer, which is so for every shipped migration, by sqlparse elsewhere.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line of the statement's first character in its file; 0: the whole file


def running_after(text: str, completed: int) -> Statement | None:
    """The statement of a file sent whole that failed once `completed` statements before it had
    completed (the server answers each statement of a message in turn), or None if unknown."""
    found = [st for st in split_sql(text)[1] if _code_only(st.sql).strip(" \t\r\n;")]
    return found[completed] if 0 <= completed < len(found) else None


@functools.lru_cache(maxsize=256)
def split_sql(text: str) -> tuple[bool, list[Statement]]:
    """yoyo's splitting and directives, plus the line each statement starts on.

    This is what yoyo's read_sql_migration does, but on the bytes dbtool already read and
    checksummed, so what runs is exactly what was recorded.
    """
    parts = _split_plainly(text)
    if parts is None:
        import sqlparse

        parts = sqlparse.split(text)
    directives: dict[str, str] = {}
    if parts:
        directives, parts[0] = leading_directives(parts[0])
    statements, pos = [], 0
    for part in (p for p in parts if p.strip()):
        found = text.find(part.strip(), pos)
        start = found if found >= 0 else pos
        statements.append(Statement(part, text.count("\n", 0, start) + 1))
        pos = start + len(part.strip())
    return _transactional(directives), statements


# A text with none of these is lexed by sqlparse as a plain scan reads it, its statements ending
# at each `;` outside comments, strings, quoted names and dollar-quoted bodies: backslashes,
# backticks, brackets, `#` and block comments follow sqlparse's own rules, and these words change
# where it splits (IF, CASE and loops do too, but only inside a BEGIN block; END only lowers its
# level, which splits no `;` that parentheses do not already hold). A scan of its own, not
# _code_only: it must read quotes and dollar tags as sqlparse's lexer does, not as PostgreSQL does,
# keep every position, and give up where the two could differ.
_NOT_PLAIN = re.compile(r"[\\`´\[#]|/\*")
_LEVEL_WORDS = frozenset({"BEGIN", "DECLARE", "GO"})
_PLAIN_TOKEN = re.compile(r"--[^\r\n]*(?:\r\n|\r|\n|$)|'[^']*'|\"[^\"]*\"|(?<![\w\"$])\$(?:[A-Za-z_]\w*)?\$"
                          r"|[^\W\d]\w*|[;()$'\"]")
# After a `;`, sqlparse keeps with the statement the spaces and `--` comments that follow it.
_AFTER_SEMICOLON = re.compile(r"(?:[^\S\r\n]|--[^\r\n]*(?:\r\n|\r|\n|$))*")


def _split_plainly(text: str) -> list[str] | None:
    """sqlparse.split(text) for a text sqlparse reads as a plain scan does, else None (then
    sqlparse splits it). sqlparse's first split in a process takes some 5 ms (it builds its lexer),
    more than a small migration's statements take on the server, and most files split at plain
    semicolons; a test holds the two equal, on generated texts and on every shipped file."""
    if _NOT_PLAIN.search(text):
        return None
    parts, start, depth, pos = [], 0, 0, 0
    while match := _PLAIN_TOKEN.search(text, pos):
        token, pos = match[0], match.end()
        if token == ";":
            if depth > 0:
                return None  # sqlparse does not split inside parentheses
            pos = _AFTER_SEMICOLON.match(text, pos).end()
            parts.append(text[start:pos].strip())
            start, depth = pos, 0  # sqlparse counts each statement's level afresh
        elif token == "(":
            depth += 1
        elif token == ")":
            depth -= 1  # unclamped, as sqlparse counts its level
        elif len(token) > 1 and token[0] == "$":  # a dollar-quoted body runs to the same tag
            close = text.find(token, pos)
            if close < 0:
                return None
            pos = close + len(token)
        elif token in ("$", "'", '"') or token.upper() in _LEVEL_WORDS:
            return None  # a lone `$`, an unclosed quote, a word that moves sqlparse's level
    if text[start:].strip():
        parts.append(text[start:].strip())  # a trailing comment too is a statement to sqlparse
    return parts


def transactional(text: str) -> bool:
    """Whether the file runs in one transaction: yes unless it starts `-- transactional: false`."""
    return _transactional(leading_directives(text)[0])


def batches(text: str, in_transaction: bool) -> list[Statement]:
    """What the runner sends, one message each. A transactional file that cannot end its
    transaction goes whole, as psql -1 would run it but in one round trip, parsed by the server
    itself (line 0: the error's position in the file gives the line); a file of one statement
    goes as it is; any other file is split."""
    if not has_sql(text):
        return []
    if in_transaction:
        if not may_control_transaction(text):
            return [Statement(text, 0)]
    elif len(pieces(text)) == 1:
        start = _LEADING_COMMENTS.match(text).end()  # a single statement: nothing to split
        line_start = text.rfind("\n", 0, start) + 1
        return [Statement(text[line_start:], text.count("\n", 0, start) + 1)]
    return split_sql(text)[1]


def _transactional(directives: dict[str, str]) -> bool:
    return directives.get("transactional", "true").strip().lower() != "false"


_YOYO_DIRECTIVE = re.compile(r"^\s*--\s*(transactional|depends)\s*:\s*(.*)$")
_COMMENT_OR_EMPTY = re.compile(r"^(\s*|\s*--.*)$")


def leading_directives(part: str) -> tuple[dict[str, str], str]:
    """yoyo's reading of a file's head (parse_metadata_from_sql_comments, held equal by a test):
    `-- transactional:` and `-- depends:` lines among the leading comments, and the SQL after them.
    Written out here so that splitting a file does not load yoyo."""
    ending = re.search(r"\n|\r\n|\r", part + "\n").group(0)  # type: ignore[union-attr]
    lines = part.split(ending)
    directives: dict[str, str] = {}
    for n, text in enumerate(lines):
        match = _YOYO_DIRECTIVE.match(text)
        if match:
            key, value = match.groups()
            directives[key] = f"{directives[key]} {value}" if key in directives else value
        elif not _COMMENT_OR_EMPTY.match(text):
            return directives, ending.join(lines[n:])
    return directives, ""


def has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


_COPY_STREAM = r"COPY\b[^;]*?\b(?:FROM\s+STDIN|TO\s+STDOUT)\b"
_CLIENT_COPY = re.compile(r"^\s*" + _COPY_STREAM, re.IGNORECASE)  # at a statement's start
_CLIENT_COPY_LINE = re.compile(r"^[ \t]*" + _COPY_STREAM, re.IGNORECASE | re.MULTILINE)  # at a line's


def client_copy_line(text: str) -> int | None:
    """The line of a COPY FROM STDIN or TO STDOUT statement (pg_dump's data sections are made of
    them): the server would wait for rows that never come."""
    if not any(_CLIENT_COPY.match(piece) for piece in pieces(text)):
        return None
    found = _CLIENT_COPY_LINE.search(text)
    return text.count("\n", 0, found.start()) + 1 if found else 1


# A statement that ends or replaces the transaction dbtool opens for a migration and its record.
# ROLLBACK TO [SAVEPOINT] stays inside it and is allowed.
_TRANSACTION_CONTROL = re.compile(
    r"^(?:(?P<begin>BEGIN|START\s+TRANSACTION)|(?P<rollback>ROLLBACK(?!\s+(?:WORK\s+|TRANSACTION\s+)?TO\b)|ABORT)"
    r"|(?P<commit>COMMIT\s+PREPARED|COMMIT|END|PREPARE\s+TRANSACTION))\b",
    re.IGNORECASE,
)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)


_CONCURRENT_BUILD = re.compile(r"(?:CREATE\s+(?:UNIQUE\s+)?INDEX|REINDEX\b[^;]*?)\s+CONCURRENTLY\b", re.IGNORECASE)


def builds_concurrently(statement: str) -> bool:
    """CREATE INDEX CONCURRENTLY or REINDEX ... CONCURRENTLY: cut short, it leaves an invalid index."""
    return bool(_CONCURRENT_BUILD.match(statement, _LEADING_COMMENTS.match(statement).end()))


def first_words(statement: str) -> str:
    """A statement's first two words, upper-cased (COMMIT, START TRANSACTION), to name it in a message."""
    return " ".join(statement[_LEADING_COMMENTS.match(statement).end():].split()[:2]).rstrip(";").upper()


def transaction_control(statement: str) -> str | None:
    """'begin', 'commit' or 'rollback' when the statement controls the transaction, else None.
    Only a statement's first word counts: BEGIN inside a function body is part of CREATE FUNCTION."""
    match = _TRANSACTION_CONTROL.match(statement[_LEADING_COMMENTS.match(statement).end():])
    return match.lastgroup if match else None


# What may hide a `;` or a keyword: comments, quoted strings and names, dollar-quoted bodies.
_LEXEME = re.compile(r"--[^\n]*|/\*|'|\"|(?<![\w$])\$(?:[^\W\d]\w*)?\$|;")


@functools.lru_cache(maxsize=256)  # validate, the COPY check and the runner each scan the same files
def _code_only(text: str) -> str:
    """The text with every comment, string, quoted name and dollar-quoted body blanked out, so
    that what is left shows each `;` that ends a statement and each statement's first word."""
    kept, pos = [], 0
    while match := _LEXEME.search(text, pos):
        token, start = match[0], match.start()
        kept.append(text[pos:start])
        if token == ";":
            kept.append(";")
            pos = match.end()
            continue
        if token.startswith("--"):
            end = match.end()
        elif token == "/*":
            end = _comment_end(text, match.end())
        elif token in "'\"":
            end = _quote_end(text, match.end(), token, token == "'" and text[start - 1:start] in ("e", "E"))
        else:
            close = text.find(token, match.end())
            end = len(text) if close < 0 else close + len(token)
        kept.append(" ")
        pos = end
    kept.append(text[pos:])
    return "".join(kept)


def pieces(text: str) -> list[str]:
    """Each statement of the text as _code_only leaves it (so each starts with its first word),
    the empty ones between `;`s left out."""
    return [piece for piece in _code_only(text).split(";") if piece.strip()]


def _comment_end(text: str, pos: int) -> int:
    depth = 1  # PostgreSQL's block comments nest
    while depth and pos < len(text):
        if text.startswith("/*", pos):
            depth, pos = depth + 1, pos + 2
        elif text.startswith("*/", pos):
            depth, pos = depth - 1, pos + 2
        else:
            pos += 1
    return pos


def _quote_end(text: str, pos: int, quote: str, escapes: bool) -> int:
    while pos < len(text):
        c = text[pos]
        if escapes and c == "\\":
            pos += 2
        elif c == quote:
            if text.startswith(quote, pos + 1):
                pos += 2  # a doubled quote stands for itself
            else:
                return pos + 1
        else:
            pos += 1
    return pos


def may_control_transaction(text: str) -> bool:
    """Whether any statement of the text could begin with BEGIN, COMMIT, ROLLBACK, ...: a scan much
    cheaper than splitting the file with sqlparse, which then runs only for files where this is so
    (most files, including PL/pgSQL bodies full of BEGIN and END, are not)."""
    return any(transaction_control(piece) for piece in pieces(text))

"""Key query files: one SELECT with its `-- param` sample values and `-- budget` line, parsed with pglast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pglast import ast, parse_sql
from pglast.parser import ParseError, scan
from pglast.visitors import Visitor

from ..config import Settings, read_utf8, select_services
from ..errors import BadInput

QUERIES_DIR = "queries"


_PARAM_LINE = re.compile(r"^--\s*param\b(.*)$")


_PARAM = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$")


_BUDGET_LINE = re.compile(r"^--\s*budget\s*:(.*)$")


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


@dataclass(frozen=True)
class Budget:
    max_ms: float | None = None
    no_seq_scan: bool = False
    # no_seq_scan>=N: judged only on tables of N rows or more (None: explain's --large-rows).
    seq_scan_rows: int | None = None

    def describe(self) -> str:
        scan = f"no_seq_scan>={self.seq_scan_rows}" if self.seq_scan_rows is not None else "no_seq_scan"
        parts = ([f"max_ms={self.max_ms:g}"] if self.max_ms is not None else []) + (
            [scan] if self.no_seq_scan else [])
        return " ".join(parts)


@dataclass(frozen=True)
class KeyQuery:
    service: str
    name: str
    path: Path
    description: str
    text: str  # the statement as written, :name parameters and all
    sql: str  # the same with psycopg %(name)s placeholders, ready to bind
    params: dict[str, str]  # parameter -> the SELECT that picks its sample value
    budget: Budget
    tables: tuple[str, ...]  # tables named by the query and by its parameter queries


def load_queries(settings: Settings, service: str) -> list[KeyQuery]:
    folder = settings.schemas_dir / service / QUERIES_DIR
    if not folder.is_dir():
        return []
    return [parse_query_file(path, service) for path in sorted(folder.glob("*.sql"))]


def parse_query_file(path: Path, service: str = "") -> KeyQuery:
    """Read and check one query file; every problem is a BadInput naming the file and the fix."""
    text = read_utf8(path)
    params: dict[str, str] = {}
    budget = Budget()
    description: list[str] = []
    in_header = True
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if (match := _PARAM_LINE.match(stripped)) is not None:
            name, query = _param_line(path, number, match.group(1))
            if name in params:
                raise BadInput(f"{path}:{number}: parameter {name} is declared twice; keep one '-- param' line")
            params[name] = query
        elif (match := _BUDGET_LINE.match(stripped)) is not None:
            budget = _budget(path, number, match.group(1))
        elif in_header and stripped.startswith("--"):
            description.append(stripped[2:].strip())
        elif stripped:
            in_header = False
    statement, used = _statement(path, text)
    names = list(dict.fromkeys(u.name for u in used))
    for name in names:
        if name not in params:
            raise BadInput(f"{path}: parameter :{name} has no value; add '-- param {name}: SELECT ...'"
                           " that picks one from the data")
    for name in params:
        if name not in names:
            raise BadInput(f"{path}: '-- param {name}' is not used by the query; remove it or use :{name}")
    tables = set(_tables(_single_select(path, _validation_text(statement, used), "the query")))
    for name, query in params.items():
        tables |= _tables(_single_select(path, query, f"-- param {name}"))
    return KeyQuery(
        service=service or path.parent.parent.name,
        name=path.stem,
        path=path,
        description=" ".join(d for d in description if d),
        text=statement,
        sql=_psycopg_text(statement, used),
        params=params,
        budget=budget,
        tables=tuple(sorted(tables)),
    )


def _param_line(path: Path, number: int, rest: str) -> tuple[str, str]:
    match = _PARAM.match(rest)
    if match is None:
        raise BadInput(f"{path}:{number}: malformed parameter line; write '-- param NAME: SELECT ...'")
    name, query = match.groups()
    if not query:
        raise BadInput(f"{path}:{number}: parameter {name} has no value; give the SELECT that picks one"
                       f" ('-- param {name}: SELECT ...')")
    return name, query


def _budget(path: Path, number: int, rest: str) -> Budget:
    max_ms, no_seq, rows = None, False, None
    for word in rest.split():
        if word == "no_seq_scan":
            no_seq = True
        elif word.startswith("no_seq_scan>="):
            count = word[len("no_seq_scan>="):].replace("_", "")
            if not count.isdigit():
                raise BadInput(f"{path}:{number}: {word}: give a row count, e.g. no_seq_scan>=10000")
            no_seq, rows = True, int(count)
        elif word.startswith("max_ms="):
            try:
                max_ms = float(word[len("max_ms="):])
            except ValueError:
                max_ms = -1.0
            if max_ms < 0:
                raise BadInput(f"{path}:{number}: {word}: give milliseconds, e.g. max_ms=50")
        else:
            raise BadInput(f"{path}:{number}: unknown budget {word!r}; use max_ms=N and/or no_seq_scan"
                           " (or no_seq_scan>=ROWS)")
    return Budget(max_ms, no_seq, rows)


@dataclass(frozen=True)
class _Use:
    name: str
    start: int  # offset of the ':' in the statement (characters, as pglast counts them)
    end: int  # offset just after the name


def _statement(path: Path, text: str) -> tuple[str, list[_Use]]:
    """The one statement of the file (the comments around it cut off) and its :name parameters."""
    try:
        tokens = list(scan(text))
    except Exception as exc:  # the scanner reports an unterminated string or comment
        raise BadInput(f"{path}: {str(exc).splitlines()[0]}; fix the SQL") from None
    uses = _uses(path, text, tokens)
    try:
        statements = parse_sql(_validation_text(text, uses))
    except ParseError as exc:
        message, position = exc.args[0], exc.args[1] if len(exc.args) > 1 else 0
        line = text[:position].count("\n") + 1
        raise BadInput(f"{path}:{line}: {message}; fix the SQL") from None
    if len(statements) != 1:
        what = "no statement" if not statements else f"{len(statements)} statements"
        raise BadInput(f"{path}: holds {what}; a key query file holds exactly one SELECT")
    raw = statements[0]
    end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
    # Skip the header comments: the statement starts at its first real token.
    start = next(t.start for t in tokens if t.start >= (raw.stmt_location or 0) and not t.name.endswith("COMMENT"))
    statement = text[start:end].rstrip()
    inside = [_Use(u.name, u.start - start, u.end - start) for u in uses if start <= u.start < end]
    return statement, inside


def _uses(path: Path, text: str, tokens: list) -> list[_Use]:
    """`:name` is a ':' token directly followed by a word; '::' casts and strings are other tokens."""
    found = []
    for token, following in zip(tokens, tokens[1:] + [None]):
        if token.name == "PARAM":
            line = text[: token.start].count("\n") + 1
            raise BadInput(f"{path}:{line}: positional parameter {text[token.start:token.end + 1]};"
                           " use named ones like :instructor_id with a '-- param' line")
        if token.name != "ASCII_58" or following is None or following.start != token.end + 1:
            continue
        word = text[following.start: following.end + 1]
        if _IDENT.match(word):
            found.append(_Use(word, token.start, following.end + 1))
    return found


def _validation_text(text: str, uses: list[_Use]) -> str:
    # `$1` padded to the same length keeps every offset pglast reports valid for the file itself.
    for use in uses:
        text = text[: use.start] + "$1".ljust(use.end - use.start) + text[use.end:]
    return text


def _psycopg_text(statement: str, uses: list[_Use]) -> str:
    # psycopg reads every % as a placeholder marker, in strings and comments too: double the others.
    parts, at = [], 0
    for use in uses:
        parts.append(statement[at: use.start].replace("%", "%%"))
        parts.append(f"%({use.name})s")
        at = use.end
    parts.append(statement[at:].replace("%", "%%"))
    return "".join(parts)


def _single_select(path: Path, text: str, what: str) -> ast.Node:
    try:
        statements = parse_sql(text)
    except ParseError as exc:
        raise BadInput(f"{path}: {what}: {exc.args[0]}; fix the SQL") from None
    if len(statements) != 1:
        raise BadInput(f"{path}: {what} holds {len(statements)} statements; give exactly one SELECT")
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.SelectStmt):
        raise BadInput(f"{path}: {what} is a {type(stmt).__name__.removesuffix('Stmt').upper()},"
                       " not a SELECT; key queries only read, nothing was run")
    finder = _Finder()
    finder(stmt)
    if finder.writes:
        raise BadInput(f"{path}: {what} contains a data-modifying {finder.writes[0]};"
                       " key queries only read, nothing was run")
    if finder.into:
        raise BadInput(f"{path}: {what} is a SELECT INTO, which creates a table; drop the INTO, nothing was run")
    if finder.locks:
        raise BadInput(f"{path}: {what} locks rows (FOR UPDATE/SHARE); drop the locking clause, nothing was run")
    return stmt


class _Finder(Visitor):
    """What a parsed SELECT hides: writing CTEs, INTO, row locks, and the tables it names."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []
        self.into = False
        self.locks = False
        self.tables: set[str] = set()
        self.ctes: set[str] = set()

    def visit(self, ancestors, node):  # type: ignore[override]
        if isinstance(node, _WRITES):
            self.writes.append(type(node).__name__.removesuffix("Stmt").upper())
        elif isinstance(node, ast.IntoClause):
            self.into = True
        elif isinstance(node, ast.LockingClause):
            self.locks = True
        elif isinstance(node, ast.CommonTableExpr):
            self.ctes.add(node.ctename)
        elif isinstance(node, ast.RangeVar):
            self.tables.add(f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname)


def _tables(stmt: ast.Node) -> set[str]:
    finder = _Finder()
    finder(stmt)
    return finder.tables - finder.ctes


def read_tables(stmt: ast.Node) -> set[str] | None:
    """The tables a parsed SELECT reads (CTE names left out); None when it writes or creates a table."""
    finder = _Finder()
    finder(stmt)
    if finder.writes or finder.into:
        return None
    return finder.tables - finder.ctes


def parse_statement(query: KeyQuery) -> ast.SelectStmt:
    """The query's SELECT as PostgreSQL's parser reads it, each :name standing as $1 (for the advisor)."""
    uses = _uses(query.path, query.text, list(scan(query.text)))
    return parse_sql(_validation_text(query.text, uses))[0].stmt


def select_queries(settings: Settings, services: list[str] | None,
                   names: list[str] | None = None, keep_empty: bool = False) -> dict[str, list[KeyQuery]]:
    """The key queries of the selected services (only those named, if any), each file checked before
    any connection; an unknown name or no query at all is bad input. `keep_empty` keeps every selected
    service, with or without key queries (advise --from-stats reads its statements elsewhere)."""
    queries = {s: load_queries(settings, s) for s in select_services(settings, services)}
    if names:
        known = {q.name for qs in queries.values() for q in qs}
        for name in names:
            if name not in known:
                listing = ", ".join(sorted(known)) or "none"
                raise BadInput(f"--query {name}: no key query of that name in {settings.schemas_dir}/<service>/"
                               f"{QUERIES_DIR}/ (queries: {listing}); check the name")
        queries = {s: [q for q in qs if q.name in names] for s, qs in queries.items()}
    if keep_empty:
        return queries
    queries = {s: qs for s, qs in queries.items() if qs}
    if not queries:
        raise BadInput(f"{settings.schemas_dir}: no key queries in <service>/{QUERIES_DIR}/*.sql;"
                       " add one SELECT a file")
    return queries

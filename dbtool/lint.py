"""`dbtool lint`: migrations checked offline against the specification's conventions and against
changes that lock or break a live database, on PostgreSQL's own parse tree (pglast).

Each service's migrations are walked in order while a model of its tables (columns, indexes,
constraints, foreign keys) is kept, so a rule can tell a table this migration creates (free to
change) from one an earlier migration created (live, with rows and readers).
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType
from pglast.parser import ParseError

from . import migrations as mig
from .config import Settings, discover_services
from .errors import BadInput

ERROR, WARNING = "error", "warning"
# The rule ids are part of the user's contract: ignore comments name them.
RULES: dict[str, str] = {
    "table-name": WARNING,
    "column-name": WARNING,
    "index-name": WARNING,
    "boolean-name": WARNING,
    "timestamp-name": WARNING,
    "uuid-primary-key": ERROR,
    "typed-as-text": ERROR,
    "prefer-jsonb": ERROR,
    "fk-without-index": ERROR,
    "cross-service-fk": ERROR,
    "status-without-check": ERROR,
    "missing-timestamps": WARNING,
    "soft-delete-without-index": WARNING,
    "index-not-concurrent": ERROR,
    "not-null-without-default": ERROR,
    "column-type-change": ERROR,
    "rename": ERROR,
    "drop-in-up": ERROR,
    "concurrent-in-transaction": ERROR,
    "down-incomplete": ERROR,
    # Beyond the agreed set, after comparing with squawk: both lock a live table for a full pass.
    "volatile-default": ERROR,
    # A warning: the shipped course migration 003 adds a CHECK this way to a small table.
    "constraint-not-valid": WARNING,
    # BEGIN/COMMIT in a file would split dbtool's one transaction of a migration and its record.
    "transaction-control": ERROR,
    # Outside a transaction a failure leaves earlier statements done: a re-run must pass over them.
    "not-rerunnable": WARNING,
}

IGNORE = re.compile(r"^\s*--\s*dbtool:\s*ignore\b(?P<rest>.*)$", re.IGNORECASE)
SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
TEXT_TYPES = {"text", "varchar", "bpchar", "char", "citext"}
TIMESTAMP_TYPES = {"timestamp", "timestamptz"}
# Words that say a column holds a number or a point in time, whatever its type says.
NUMBER_WORDS = {"price", "amount", "cost", "count", "total", "quantity", "qty", "age", "score", "balance",
                "minutes", "seconds", "hours", "days", "capacity", "weight", "height", "width", "duration",
                "percent", "percentage", "fee", "salary"}
NUMBER_PREFIXES = {"max", "min", "num"}
TIME_SUFFIXES = ("_at", "_date", "_time", "_timestamp")
PLURAL_WORDS = {"data", "people", "children", "men", "women", "media", "criteria", "metadata", "feedback",
                "staff", "series", "news", "info"}
STATUS_WORDS = ("status", "role")
# Defaults PostgreSQL must compute row by row, so adding such a column rewrites the table.
VOLATILE = {"gen_random_uuid", "uuid_generate_v4", "uuid_generate_v1", "random", "clock_timestamp",
            "timeofday", "nextval"}


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str
    path: str
    line: int
    column: int
    message: str
    fix: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LintReport:
    findings: list[Finding] = field(default_factory=list)
    silenced: list[tuple[Finding, str]] = field(default_factory=list)  # with the ignore's reason
    files: int = 0

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == WARNING]


# ---------------------------------------------------------------- parsed files


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


# ---------------------------------------------------------------- the model of a service's tables


@dataclass(frozen=True)
class At:
    """Where a finding points: the file, the statement (for its ignores) and the character offset."""

    source: Source
    stmt: Stmt
    offset: int

    def __deepcopy__(self, memo: dict) -> At:
        return self  # a place in a file never changes; the model around it is what gets copied


@dataclass
class Column:
    name: str
    type: str
    at: At
    fk: bool = False


@dataclass
class Index:
    name: str | None
    columns: tuple[str | None, ...]  # None for an expression
    serves_live_rows: bool = False  # partial WHERE deleted_at IS NULL


@dataclass
class Table:
    name: str
    created: At | None  # None: no linted migration creates it, so it is presumed to exist
    columns: dict[str, Column] = field(default_factory=dict)
    pk: list[str] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)  # columns some CHECK constraint reads


@dataclass
class _Pending:
    table: str
    columns: list[str]
    at: At


class Linter:
    """Walks one service's migrations in order; findings are collected in self.report."""

    def __init__(self, report: LintReport, keep: set[Path] | None = None):
        self.report = report
        self.keep = keep  # report findings in these files only; None: every file
        self.tables: dict[str, Table] = {}
        self.fks: list[_Pending] = []
        self.source: Source
        self.here: set[str] = set()  # tables the file being read creates
        self.created: list[tuple[tuple, At]] = []  # objects the up file creates, for its down file
        self.dropped: set[tuple] = set()

    # ------------------------------------------------------------ driving

    def migration(self, m: mig.Migration) -> None:
        up = parse_source(m.up, m.text("up"), "up", m.transactional("up"))
        down = parse_source(m.down, m.text("down"), "down", m.transactional("down"))
        self.created = []
        self.read(up)
        for pending in self.fks:
            self._check_fk_index(pending)
        self.fks = []
        # The down file is checked, not applied: later migrations build on the up file's result.
        forward, created = copy.deepcopy(self.tables), self.created
        self.created, self.dropped = [], set()
        self.read(down)
        self.tables, self.created, self.fks = forward, created, []
        if m.irreversible:
            at = At(down, Stmt(ast.SelectStmt(), 0, {}), 0)
            self.find("down-incomplete", at, f"{m.id} is marked irreversible: rollback refuses it",
                      "write the down file if the change can be undone", level=WARNING)
        else:
            self._check_down(up)

    def loose(self, path: Path, text: str) -> None:
        # A down file outside a tree still undoes something: dropping is its job.
        direction = "down" if path.name.endswith(".down.sql") else "loose"
        self.read(parse_source(path, text, direction, mig.split_sql(text)[0]))
        for pending in self.fks:
            self._check_fk_index(pending)
        self.fks = []

    def read(self, source: Source) -> None:
        self.source, self.here = source, set()
        for stmt in source.statements:
            handler = getattr(self, f"_{type(stmt.node).__name__}", None)
            if handler is not None:
                handler(stmt, stmt.node)
            if not source.transactional and not _guarded(stmt.node):
                self.find("not-rerunnable", self.at(stmt),
                          "this migration runs outside a transaction, so after a failure the statements before"
                          " it stay done, and this one fails when the migration runs again",
                          "add IF NOT EXISTS / IF EXISTS")

    def find(self, rule: str, at: At, message: str, fix: str, level: str | None = None) -> None:
        if self.keep is not None and at.source.path not in self.keep:
            return
        line, col = at.source.position(at.offset)
        finding = Finding(rule, level or RULES[rule], str(at.source.path), line, col, message, fix)
        reason = at.stmt.ignores.get(rule)
        if reason is not None:
            self.report.silenced.append((finding, reason))
        else:
            self.report.findings.append(finding)

    def at(self, stmt: Stmt, node: object = None) -> At:
        loc = getattr(node, "location", None)
        return At(self.source, stmt, loc if isinstance(loc, int) and loc >= 0 else stmt.start)

    def table(self, name: str) -> Table:
        return self.tables.setdefault(name, Table(name, None))

    def live(self, table: str) -> bool:
        """A table this file did not create: it already exists, with rows and readers."""
        return table not in self.here

    @property
    def up(self) -> bool:
        return self.source.direction != "down"

    # ------------------------------------------------------------ statements

    def _CreateStmt(self, stmt: Stmt, node: ast.CreateStmt) -> None:
        name = node.relation.relname
        at = self.at(stmt, node.relation)
        self.here.add(name)
        if node.partbound is not None:
            # A partition takes its columns and keys from its parent, and goes when the parent goes.
            self.tables[name] = Table(name, None)
            return
        self._table_name(name, at)
        self.tables[name] = t = Table(name, at)
        self.created.append((("table", name), at))
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                self._column(stmt, t, elt, added=False)
            elif isinstance(elt, ast.Constraint):
                self._constraint(stmt, t, elt, None, added=False)

    def _IndexStmt(self, stmt: Stmt, node: ast.IndexStmt) -> None:
        table, name = node.relation.relname, node.idxname
        at = self.at(stmt, node.relation)
        if name is None:
            self.find("index-name", at, f"index on {table} has no name; PostgreSQL will make one up",
                      f"name it idx_{table}_<columns>")
        elif not name.startswith(f"idx_{table}_"):
            self.find("index-name", at, f"index {name} does not start with idx_{table}_",
                      f"rename it idx_{table}_<columns>")
        if node.concurrent and self.source.transactional:
            self._concurrent_in_transaction(stmt, "CREATE INDEX CONCURRENTLY")
        if not node.concurrent and self.live(table):
            self.find("index-not-concurrent", at,
                      f"CREATE INDEX on existing table {table} blocks its writes until the index is built",
                      "use CREATE INDEX CONCURRENTLY IF NOT EXISTS in a migration whose first line is"
                      " '-- transactional: false'")
        columns = tuple(p.name for p in node.indexParams or ())
        self.table(table).indexes.append(Index(name, columns, _serves_live_rows(node.whereClause)))
        if name:
            self.created.append((("index", name), at))

    def _AlterTableStmt(self, stmt: Stmt, node: ast.AlterTableStmt) -> None:
        if node.objtype != ObjectType.OBJECT_TABLE:
            return
        name = node.relation.relname
        t, live = self.table(name), self.live(name)
        for cmd in node.cmds:
            kind = cmd.subtype
            if kind == AlterTableType.AT_AddColumn:
                self._column(stmt, t, cmd.def_, added=live)
                self.created.append((("column", name, cmd.def_.colname), self.at(stmt, cmd.def_)))
            elif kind == AlterTableType.AT_AddConstraint:
                self._constraint(stmt, t, cmd.def_, None, added=live)
            elif kind == AlterTableType.AT_DropColumn:
                self._drop(stmt, f"DROP COLUMN {name}.{cmd.name}", ("column", name, cmd.name),
                           at=self.at(stmt, node.relation))
                t.columns.pop(cmd.name, None)
                t.indexes = [i for i in t.indexes if cmd.name not in i.columns]
            elif kind == AlterTableType.AT_DropConstraint:
                self._drop(stmt, f"DROP CONSTRAINT {cmd.name} on {name}", ("constraint", name, cmd.name),
                           at=self.at(stmt, node.relation))
            elif kind == AlterTableType.AT_AlterColumnType and live:
                self.find("column-type-change", self.at(stmt, cmd.def_),
                          f"changing the type of {name}.{cmd.name} rewrites the table under an exclusive lock"
                          " and breaks code that reads the old type",
                          "add a new column, backfill it in batches, switch readers, then drop the old one")
            elif kind == AlterTableType.AT_SetNotNull and live:
                self.find("not-null-without-default", self.at(stmt, node.relation),
                          f"SET NOT NULL on {name}.{cmd.name} scans the whole table under an exclusive lock",
                          f"ADD CONSTRAINT {name}_{cmd.name}_not_null CHECK ({cmd.name} IS NOT NULL) NOT VALID,"
                          " VALIDATE it in a later migration, then SET NOT NULL")
            if kind == AlterTableType.AT_AlterColumnType and cmd.name in t.columns:
                t.columns[cmd.name].type = _type_name(cmd.def_.typeName)

    def _RenameStmt(self, stmt: Stmt, node: ast.RenameStmt) -> None:
        at = self.at(stmt, node.relation)
        kind = _DROP_KINDS.get(node.renameType)
        if kind in ("index", "function", "type", "view", "sequence"):
            # The down file drops the object under its new name.
            old = node.relation.relname if node.relation is not None else _names(node.object)[-1]
            self.created = [((k[0], node.newname) if k == (kind, old) else k, a) for k, a in self.created]
            for t in self.tables.values():
                t.indexes = [Index(node.newname, i.columns, i.serves_live_rows) if i.name == old else i
                             for i in t.indexes]
        if node.renameType == ObjectType.OBJECT_TABLE:
            old, new = node.relation.relname, node.newname
            if old in self.here:
                self.here.add(new)
            elif self.live(old):
                self.find("rename", at, f"renaming table {old} to {new} breaks every running query that names it",
                          f"create {new}, copy and sync the rows, move readers, then drop {old} (expand/contract)")
            self._table_name(new, at)
            if old in self.tables:
                self.tables[new] = self.tables.pop(old)
                self.tables[new].name = new
            self.created.append((("rename", "table", old, new), at))
        elif node.renameType == ObjectType.OBJECT_COLUMN:
            table, old, new = node.relation.relname, node.subname, node.newname
            if self.live(table):
                self.find("rename", at, f"renaming column {table}.{old} to {new} breaks every running query"
                          " that names it",
                          f"add {new}, write both columns, backfill, move readers, then drop {old}")
            if not SNAKE.match(new):
                self.find("column-name", at, f"column {table}.{new} is not snake_case", "rename it in snake_case")
            t = self.table(table)
            if old in t.columns:
                t.columns[new] = t.columns.pop(old)
                t.columns[new].name = new
            t.pk = [new if c == old else c for c in t.pk]
            t.checked = {new if c == old else c for c in t.checked}
            t.indexes = [Index(i.name, tuple(new if c == old else c for c in i.columns), i.serves_live_rows)
                         for i in t.indexes]
            self.created.append((("rename", "column", old, new), at))

    def _DropStmt(self, stmt: Stmt, node: ast.DropStmt) -> None:
        kind = _DROP_KINDS.get(node.removeType, node.removeType.name.removeprefix("OBJECT_").lower())
        if node.concurrent and self.source.transactional:
            self._concurrent_in_transaction(stmt, "DROP INDEX CONCURRENTLY")
        for obj in node.objects:
            names = _names(obj)
            if kind == "trigger":
                key: tuple = ("trigger", names[-2] if len(names) > 1 else "", names[-1])
            else:
                key = (kind, names[-1])
            self._drop(stmt, f"DROP {kind.upper()} {'.'.join(names)}", key)
            if kind == "table":
                self.tables.pop(names[-1], None)
            elif kind == "index":
                for t in self.tables.values():
                    t.indexes = [i for i in t.indexes if i.name != names[-1]]

    def _TruncateStmt(self, stmt: Stmt, node: ast.TruncateStmt) -> None:
        if self.up:
            names = ", ".join(r.relname for r in node.relations)
            self.find("drop-in-up", self.at(stmt), f"TRUNCATE {names} in an up migration destroys every row,"
                      " and its down file cannot bring them back",
                      "delete rows in a data job, not a schema migration, or say why it is safe with"
                      " '-- dbtool: ignore drop-in-up <reason>'")

    def _TransactionStmt(self, stmt: Stmt, node: ast.TransactionStmt) -> None:
        what = node.kind.name.removeprefix("TRANS_STMT_")
        self.find("transaction-control", self.at(stmt),
                  f"{what} in a migration file: dbtool runs the file in its own transaction, together with its"
                  " record, and this would end or nest it",
                  "remove it; for statements that cannot run in a transaction make '-- transactional: false'"
                  " the first line")

    def _drop(self, stmt: Stmt, what: str, key: tuple, at: At | None = None) -> None:
        self.dropped.add(key)
        if self.up:
            self.find("drop-in-up", at or self.at(stmt),
                      f"{what} in an up migration destroys data or breaks running code, and its down file"
                      " cannot bring the data back",
                      "stop using the object first and drop it in a later release, or say why it is safe with"
                      " '-- dbtool: ignore drop-in-up <reason>'")

    def _concurrent_in_transaction(self, stmt: Stmt, what: str) -> None:
        self.find("concurrent-in-transaction", self.at(stmt),
                  f"{what} cannot run inside a transaction block, and this migration runs in one",
                  "make '-- transactional: false' the first line of the file and keep the statement re-runnable"
                  " (IF NOT EXISTS / IF EXISTS)")

    def _CreateFunctionStmt(self, stmt: Stmt, node: ast.CreateFunctionStmt) -> None:
        self.created.append((("function", node.funcname[-1].sval), self.at(stmt)))

    def _CreateTrigStmt(self, stmt: Stmt, node: ast.CreateTrigStmt) -> None:
        self.created.append((("trigger", node.relation.relname, node.trigname), self.at(stmt)))

    def _CreateEnumStmt(self, stmt: Stmt, node: ast.CreateEnumStmt) -> None:
        self.created.append((("type", node.typeName[-1].sval), self.at(stmt)))

    def _CreateDomainStmt(self, stmt: Stmt, node: ast.CreateDomainStmt) -> None:
        self.created.append((("type", node.domainname[-1].sval), self.at(stmt)))

    def _CompositeTypeStmt(self, stmt: Stmt, node: ast.CompositeTypeStmt) -> None:
        self.created.append((("type", node.typevar.relname), self.at(stmt)))

    def _ViewStmt(self, stmt: Stmt, node: ast.ViewStmt) -> None:
        self.created.append((("view", node.view.relname), self.at(stmt)))

    def _CreateTableAsStmt(self, stmt: Stmt, node: ast.CreateTableAsStmt) -> None:
        kind = "view" if node.objtype == ObjectType.OBJECT_MATVIEW else "table"
        self.created.append(((kind, node.into.rel.relname), self.at(stmt)))

    def _CreateSeqStmt(self, stmt: Stmt, node: ast.CreateSeqStmt) -> None:
        self.created.append((("sequence", node.sequence.relname), self.at(stmt)))

    def _CreateExtensionStmt(self, stmt: Stmt, node: ast.CreateExtensionStmt) -> None:
        self.created.append((("extension", node.extname), self.at(stmt)))

    # ------------------------------------------------------------ columns and constraints

    def _column(self, stmt: Stmt, t: Table, cd: ast.ColumnDef, added: bool) -> None:
        name, kind, at = cd.colname, _type_name(cd.typeName), self.at(stmt, cd)
        array = cd.typeName is not None and bool(cd.typeName.arrayBounds)
        if not SNAKE.match(name):
            self.find("column-name", at, f"column {t.name}.{name} is not snake_case", "rename it in snake_case")
        if kind == "bool" and not name.startswith(("is_", "has_")):
            self.find("boolean-name", at, f"boolean {t.name}.{name} does not start with is_ or has_",
                      f"rename it is_{name} or has_{name}")
        if kind in TIMESTAMP_TYPES and not name.endswith("_at"):
            self.find("timestamp-name", at, f"timestamp {t.name}.{name} does not end with _at",
                      f"rename it {_at_name(name)}")
        if kind == "json":
            self.find("prefer-jsonb", at, f"{t.name}.{name} is JSON: stored as text, re-parsed on every read,"
                      " no indexing or equality", "use JSONB")
        constraints = list(cd.constraints or ())
        default = next((c.raw_expr for c in constraints if c.contype == ConstrType.CONSTR_DEFAULT), None)
        if kind in TEXT_TYPES and not array:
            looks = _looks_typed(name, default)
            if looks:
                want = "TIMESTAMP" if looks == "timestamp" else "INTEGER or NUMERIC"
                self.find("typed-as-text", at, f"{t.name}.{name} holds a {looks} but is stored as text",
                          f"use {want}")
        t.columns[name] = Column(name, kind, at)
        for con in constraints:
            self._constraint(stmt, t, con, name, added)
        fills = default is not None or any(c.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED)
                                           for c in constraints) or kind in _SERIALS
        not_null = cd.is_not_null or any(c.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY)
                                         for c in constraints)
        volatile = isinstance(default, ast.FuncCall) and default.funcname[-1].sval.lower() in VOLATILE
        if added and (volatile or kind in _SERIALS):
            what = f"DEFAULT {default.funcname[-1].sval}()" if volatile else _shown(kind)
            self.find("volatile-default", at,
                      f"adding {t.name}.{name} with {what} rewrites the whole table under an exclusive lock",
                      "add the column without a default (or with a constant one), then backfill it in batches")
        if added and not_null and not fills:
            self.find("not-null-without-default", at,
                      f"adding NOT NULL column {t.name}.{name} without a default fails on a table with rows",
                      "add it with a DEFAULT, or add it nullable, backfill, then add the constraint")

    def _constraint(self, stmt: Stmt, t: Table, con: ast.Constraint, column: str | None, added: bool) -> None:
        at = self.at(stmt, con)
        keys = [k.sval for k in con.keys or ()] or ([column] if column else [])
        kind = con.contype
        if added and column is None:  # ALTER TABLE ... ADD CONSTRAINT: the down file must drop it
            self.created.append((("constraint", t.name, con.conname), at))
        if kind in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
            if kind == ConstrType.CONSTR_PRIMARY:
                t.pk = keys
            t.indexes.append(Index(con.conname, tuple(keys)))
            if added and not con.indexname:
                what = "PRIMARY KEY" if kind == ConstrType.CONSTR_PRIMARY else "UNIQUE"
                self.find("index-not-concurrent", at,
                          f"adding {what} to existing table {t.name} builds its index while blocking writes",
                          f"CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... {what} USING INDEX")
        elif kind == ConstrType.CONSTR_CHECK:
            t.checked.update(_column_refs(con.raw_expr))
            self._not_valid(t, con, at, added and column is None, "CHECK", "scans it under an exclusive lock")
        elif kind == ConstrType.CONSTR_FOREIGN:
            columns = [k.sval for k in con.fk_attrs or ()] or ([column] if column else [])
            target = con.pktable.relname
            for c in columns:
                if c in t.columns:
                    t.columns[c].fk = True
            known = self.tables.get(target)
            if known is None or known.created is None:
                self.find("cross-service-fk", at,
                          f"{t.name}({', '.join(columns)}) references {target}, which no migration of this"
                          " service creates (one database per service)",
                          "drop the foreign key and keep a soft reference (a plain UUID column, declared in"
                          " references.toml and checked by dbtool check-references)")
            self.fks.append(_Pending(t.name, columns, at))
            self._not_valid(t, con, at, added and column is None, "FOREIGN KEY",
                            f"scans it while blocking writes to it and to {target}")

    def _not_valid(self, t: Table, con: ast.Constraint, at: At, live: bool, what: str, effect: str) -> None:
        if live and not con.skip_validation:
            name = con.conname or "..."
            self.find("constraint-not-valid", at,
                      f"adding {what} {name} to existing table {t.name} {effect}",
                      f"add it NOT VALID, then ALTER TABLE {t.name} VALIDATE CONSTRAINT {name} in a later migration")

    def _check_fk_index(self, fk: _Pending) -> None:
        t = self.tables.get(fk.table)
        if t is None:
            return
        n = len(fk.columns)
        if any(set(i.columns[:n]) == set(fk.columns) for i in t.indexes):
            return
        cols = ", ".join(fk.columns)
        self.find("fk-without-index", fk.at,
                  f"foreign key {fk.table}({cols}) has no index: deletes on the referenced table and joins"
                  " scan the whole table",
                  f"CREATE INDEX idx_{fk.table}_{'_'.join(fk.columns)} ON {fk.table}({cols}) in this migration")

    def _table_name(self, name: str, at: At) -> None:
        if not SNAKE.match(name):
            self.find("table-name", at, f"table {name} is not snake_case", "rename it in snake_case")
        elif not _plural(name):
            self.find("table-name", at, f"table {name} is not plural", f"rename it {_pluralise(name)}")

    # ------------------------------------------------------------ reversibility and the final state

    def _check_down(self, up: Source) -> None:
        dropped_tables = {k[1] for k in self.dropped if k[0] == "table"}
        for key, at in self.created:
            kind = key[0]
            if kind == "rename":
                continue
            if kind in ("column", "constraint", "trigger") and key[1] in dropped_tables:
                continue
            if kind == "index" and _index_table(self.created, key[1]) in dropped_tables:
                continue
            if kind == "constraint" and key[2] is None:
                self.find("down-incomplete", at, f"unnamed constraint on {key[1]}: the down file cannot drop it",
                          "name the constraint and drop it by name in the down file")
                continue
            if key in self.dropped:
                continue
            what = f"trigger {key[2]} on {key[1]}" if kind == "trigger" else f"{kind} {'.'.join(key[1:])}"
            self.find("down-incomplete", at, f"the down file does not remove {what}",
                      f"add the matching DROP to {up.path.name[:-4]}.down.sql")

    def final(self) -> None:
        """Rules on what the tree leaves behind, reported where each table or column was created."""
        for t in self.tables.values():
            if t.created is None:
                continue
            if not t.pk:
                self.find("uuid-primary-key", t.created, f"table {t.name} has no primary key",
                          "add id UUID PRIMARY KEY DEFAULT gen_random_uuid()")
            keys = [t.columns[c] for c in t.pk if c in t.columns]
            # A composite key (two references, or an id plus a partition key) needs one UUID in it.
            if keys and not any(c.type == "uuid" for c in keys):
                col = keys[0]
                what = f"{t.name}.{col.name} is {_shown(col.type)}, not UUID" if len(keys) == 1 else \
                    f"({', '.join(t.pk)}) of {t.name} holds no UUID column"
                self.find("uuid-primary-key", col.at, f"primary key {what}",
                          f"use {col.name} UUID PRIMARY KEY DEFAULT gen_random_uuid()")
            for col in t.columns.values():
                words = col.name.split("_")
                if (words[-1] in STATUS_WORDS and col.type in TEXT_TYPES and col.name not in t.checked
                        and not col.fk):
                    self.find("status-without-check", col.at,
                              f"{t.name}.{col.name} takes a fixed set of values but no CHECK constrains it",
                              f"add CHECK ({col.name} IN (...)) listing the allowed values")
            missing = [c for c in ("created_at", "updated_at") if c not in t.columns]
            if missing:
                self.find("missing-timestamps", t.created, f"table {t.name} has no {' or '.join(missing)}",
                          "add " + ", ".join(f"{c} TIMESTAMP DEFAULT CURRENT_TIMESTAMP" for c in missing))
            if "deleted_at" in t.columns and not any(
                i.serves_live_rows or i.columns[:1] == ("deleted_at",) for i in t.indexes
            ):
                self.find("soft-delete-without-index", t.columns["deleted_at"].at,
                          f"{t.name} has deleted_at but no index serves WHERE deleted_at IS NULL",
                          f"CREATE INDEX CONCURRENTLY idx_{t.name}_<columns> ON {t.name}(<columns>)"
                          " WHERE deleted_at IS NULL")


_SERIALS = {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"}
_DROP_KINDS = {
    ObjectType.OBJECT_TABLE: "table", ObjectType.OBJECT_INDEX: "index", ObjectType.OBJECT_FUNCTION: "function",
    ObjectType.OBJECT_PROCEDURE: "function", ObjectType.OBJECT_TRIGGER: "trigger", ObjectType.OBJECT_TYPE: "type",
    ObjectType.OBJECT_DOMAIN: "type", ObjectType.OBJECT_VIEW: "view", ObjectType.OBJECT_MATVIEW: "view",
    ObjectType.OBJECT_SEQUENCE: "sequence", ObjectType.OBJECT_EXTENSION: "extension",
}


def _guarded(node: ast.Node) -> bool:
    """False for a statement that fails when what it creates is already there, or what it drops is gone."""
    if isinstance(node, (ast.IndexStmt, ast.CreateStmt, ast.CreateSeqStmt, ast.CreateExtensionStmt)):
        return bool(node.if_not_exists)
    if isinstance(node, ast.DropStmt):
        return bool(node.missing_ok)
    if isinstance(node, ast.AlterTableStmt):
        return all(c.missing_ok for c in node.cmds
                   if c.subtype in (AlterTableType.AT_AddColumn, AlterTableType.AT_DropColumn))
    return True


def _index_table(created: list[tuple[tuple, At]], index: str) -> str | None:
    for key, at in created:
        if key == ("index", index):
            node = at.stmt.node
            return node.relation.relname if isinstance(node, ast.IndexStmt) else None
    return None


def _names(obj: object) -> list[str]:
    """The dotted name in whatever shape a DROP statement carries it."""
    if isinstance(obj, ast.String):
        return [obj.sval]
    if isinstance(obj, ast.TypeName):
        return [n.sval for n in obj.names]
    if isinstance(obj, ast.ObjectWithArgs):
        return [n.sval for n in obj.objname]
    return [getattr(n, "sval", type(n).__name__) for n in obj]  # type: ignore[union-attr]


def _type_name(type_name: ast.TypeName | None) -> str:
    return type_name.names[-1].sval.lower() if type_name is not None else ""  # None: a partition's column


# PostgreSQL's internal type names, as a person writes them.
_SQL_NAMES = {"int2": "smallint", "int4": "integer", "int8": "bigint", "bool": "boolean", "bpchar": "char",
              "float4": "real", "float8": "double precision", "serial4": "serial", "serial8": "bigserial"}


def _shown(kind: str) -> str:
    return _SQL_NAMES.get(kind, kind).upper()


def _walk(node: object) -> Iterator[ast.Node]:
    if isinstance(node, (tuple, list)):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attr in node.__slots__:
            yield from _walk(getattr(node, attr, None))


def _column_refs(expr: object) -> set[str]:
    return {n.fields[-1].sval for n in _walk(expr) if isinstance(n, ast.ColumnRef)
            and isinstance(n.fields[-1], ast.String)}


def _serves_live_rows(where: object) -> bool:
    return any(isinstance(n, ast.NullTest) and n.nulltesttype == NullTestType.IS_NULL
               and _column_refs(n.arg) == {"deleted_at"} for n in _walk(where))


def _looks_typed(name: str, default: object) -> str | None:
    """'timestamp' or 'number' when the name or the default says so; None for real text."""
    words = name.split("_")
    if name.endswith(TIME_SUFFIXES) or name in ("date", "time", "timestamp"):
        return "timestamp"
    if isinstance(default, ast.SQLValueFunction) or (
        isinstance(default, ast.FuncCall) and default.funcname[-1].sval in ("now", "clock_timestamp")
    ):
        return "timestamp"
    if words[-1] in NUMBER_WORDS or words[0] in NUMBER_PREFIXES:
        return "number"
    if isinstance(default, ast.A_Const) and isinstance(default.val, (ast.Integer, ast.Float)):
        return "number"
    return None


def _plural(name: str) -> bool:
    last = name.rsplit("_", 1)[-1]
    return last in PLURAL_WORDS or (last.endswith("s") and not last.endswith(("ss", "us", "is")))


def _pluralise(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    return name + ("es" if name.endswith(("s", "x", "z", "ch", "sh")) else "s")


def _at_name(name: str) -> str:
    for suffix in ("_timestamp", "_time", "_date", "_on"):  # published_on -> published_at
        if name.endswith(suffix):
            return name[: -len(suffix)] + "_at"
    return name + "_at"


# ---------------------------------------------------------------- what to lint


FORMATS = ("text", "json", "github")


def output_format(fmt: str, as_json: bool) -> str:
    """--json is short for --format json, as on the other reporting commands."""
    if fmt not in FORMATS:
        raise BadInput(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return "json" if as_json else fmt


# Folders beside migrations that hold other SQL.
NOT_MIGRATION_FOLDERS = {"seeds", "queries"}


def lint(settings: Settings, paths: list[Path] | None = None) -> LintReport:
    """Lint each path (a service folder, a migration file, a folder of .sql files) or every service."""
    report = LintReport()
    if not paths:
        services = discover_services(settings.schemas_dir)
        if not services:
            raise BadInput(f"{settings.schemas_dir}: holds no service folders; add one, e.g. schemas/identity/")
        paths = [settings.schemas_dir / s for s in services]
    for path in paths:
        _lint_path(Path(path), report)
    order = {p: i for i, p in enumerate(dict.fromkeys(f.path for f in report.findings))}
    report.findings.sort(key=lambda f: (order[f.path], f.line, f.column))
    return report


def _lint_path(path: Path, report: LintReport) -> None:
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder; give a service folder, a migration file or a folder"
                       " of .sql files")
    if NOT_MIGRATION_FOLDERS & set(path.parts) or path.name in mig.NOT_MIGRATIONS:
        raise BadInput(f"{path}: not a migration (seeds, queries and schema.sql are not linted);"
                       " give a service folder or a migration file")
    if path.is_file():
        _lint_file(path, report)
    elif any(mig.parse_file_name(p.name) for p in path.glob("*.sql")):
        _lint_tree(path, report)
    elif any(path.glob("*.sql")):
        for p in sorted(path.glob("*.sql")):
            if p.name not in mig.NOT_MIGRATIONS:
                _lint_loose(p, report)
    else:
        children = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))
                    and any(p.glob("*.sql"))]
        if not children:
            raise BadInput(f"{path}: holds no migrations; give a service folder or a migration file")
        for child in children:
            _lint_tree(child, report)


def _lint_tree(folder: Path, report: LintReport, version: int | None = None) -> None:
    """Lint a service's tree, reporting every file or only migration `version`'s pair.

    The whole tree is read either way: a migration is checked against what came before it, and the
    rules on what the tree leaves behind need its end.
    """
    tree = mig.load_tree(folder)
    keep = {p for m in tree if m.version == version for p in (m.up, m.down)} if version is not None else None
    linter = Linter(report, keep)
    for m in tree:
        linter.migration(m)
    linter.final()
    report.files += 2 if version is not None else 2 * len(tree)


def _lint_file(path: Path, report: LintReport) -> None:
    if path.suffix != ".sql":
        raise BadInput(f"{path}: not a migration (.sql file); give a service folder or an NNN_name.sql file")
    parsed = mig.parse_file_name(path.name)
    if parsed is None:
        _lint_loose(path, report)
    else:
        _lint_tree(path.parent, report, parsed[0])


def _lint_loose(path: Path, report: LintReport) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    linter = Linter(report)
    linter.loose(path, text)
    linter.final()
    report.files += 1

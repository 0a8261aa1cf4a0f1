"""The Linter: walks one service's migrations in order and applies every rule to each statement.
"""

from __future__ import annotations

import copy
from pathlib import Path

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from ..migrate.sqltext import split_sql
from ..migrate.tree import Migration
from .model import At, Column, Index, Table, _Pending
from .naming import (
    _DROP_KINDS,
    _SERIALS,
    SNAKE,
    STATUS_WORDS,
    TEXT_TYPES,
    TIMESTAMP_TYPES,
    VOLATILE,
    _at_name,
    _column_refs,
    _guarded,
    _index_table,
    _looks_typed,
    _names,
    _plural,
    _pluralise,
    _serves_live_rows,
    _shown,
    _type_name,
)
from .rules import RULES, WARNING, Finding, LintReport
from .source import Source, Stmt, parse_source


class Linter:
    """Walks one service's migrations in order; findings are collected in self.report."""

    def __init__(self, report: LintReport, keep: set[Path] | None = None, rules: frozenset[str] | None = None):
        self.report = report
        self.keep = keep  # report findings in these files only; None: every file
        self.rules = frozenset(RULES) if rules is None else rules
        self.tables: dict[str, Table] = {}
        self.fks: list[_Pending] = []
        self.source: Source
        self.here: set[str] = set()  # tables the file being read creates
        self.created: list[tuple[tuple, At]] = []  # objects the up file creates, for its down file
        self.dropped: set[tuple] = set()
        # Object key -> (table, columns): dropping the table, or one of the columns, drops the object too.
        self.depends: dict[tuple, tuple[str, set[str]]] = {}
        self.partitions: set[str] = set()  # tables attached to a partitioned table (ATTACH PARTITION)
        self.functions: set[str] = set()  # functions the up files so far create

    # ------------------------------------------------------------ driving

    def migration(self, m: Migration) -> None:
        up = parse_source(m.up, m.text("up"), "up", m.transactional("up"))
        self.created, self.depends = [], {}
        self.read(up)
        for pending in self.fks:
            self._check_fk_index(pending)
        self.fks = []
        if not m.down.exists():
            return  # a tree finding says the down file is missing
        down = parse_source(m.down, m.text("down"), "down", m.transactional("down"))
        # The down file is checked, not applied: later migrations build on the up file's result.
        forward, created = copy.deepcopy(self.tables), self.created
        self.created, self.dropped = [], set()
        self.read(down)
        restored = {key for key, _ in self.created}
        self.tables, self.created, self.fks = forward, created, []
        if m.irreversible:
            at = At(down, Stmt(ast.SelectStmt(), 0, {}), 0)
            self.find("down-incomplete", at, f"{m.id} is marked irreversible: rollback refuses it",
                      "write the down file if the change can be undone", level=WARNING)
        else:
            self._check_down(up, restored)

    def loose(self, path: Path, text: str) -> None:
        # A down file outside a tree still undoes something: dropping is its job.
        direction = "down" if path.name.endswith(".down.sql") else "loose"
        self.read(parse_source(path, text, direction, split_sql(text)[0]))
        for pending in self.fks:
            self._check_fk_index(pending)
        self.fks = []

    def read(self, source: Source) -> None:
        self.source, self.here = source, set()
        # pg_dump creates a partition as a plain table and attaches it further down the file.
        self.partitions |= {cmd.def_.name.relname for stmt in source.statements
                            if isinstance(stmt.node, ast.AlterTableStmt) for cmd in stmt.node.cmds or ()
                            if cmd.subtype == AlterTableType.AT_AttachPartition}
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
        if rule not in self.rules or (self.keep is not None and at.source.path not in self.keep):
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
        if node.partbound is not None or name in self.partitions:
            # A partition takes its columns and keys from its parent, and goes when the parent goes.
            self.partitions.add(name)
            self.tables[name] = Table(name, None)
            parent = node.inhRelations[0].relname if node.partbound is not None else None
            self.created.append((("partition", name, parent), at))
            return
        self._table_name(name, at)
        self.tables[name] = t = Table(name, at)
        self.created.append((("table", name), at))
        for parent in node.inhRelations or ():
            # INHERITS: the parent's columns are the child's too (its keys and indexes are not).
            t.columns.update(copy.deepcopy(self.table(parent.relname).columns))
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                self._column(stmt, t, elt, added=False)
            elif isinstance(elt, ast.Constraint):
                self._constraint(stmt, t, elt, None, added=False)

    def _IndexStmt(self, stmt: Stmt, node: ast.IndexStmt) -> None:
        table, name = node.relation.relname, node.idxname
        at = self.at(stmt, node.relation)
        if table in self.partitions:
            pass  # PostgreSQL names a partition's copy of its parent's index; pg_dump shows that name
        elif name is None:
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
            used = {p.name for p in node.indexParams or () if p.name} | _column_refs(node.indexParams) \
                | _column_refs(node.whereClause)
            self.depends[("index", name)] = (table, used)

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
            elif kind == AlterTableType.AT_AttachPartition:
                self._attach(stmt, name, cmd.def_.name.relname)
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
            if (kind, old) in self.depends:
                self.depends[(kind, node.newname)] = self.depends.pop((kind, old))
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
            if kind == "function" and self.up:
                self.functions.discard(names[-1])
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

    def _attach(self, stmt: Stmt, parent: str, child: str) -> None:
        # The partition takes the parent's key; it goes when the parent does.
        self.partitions.add(child)
        t = self.tables.get(child)
        if t is not None:
            t.created = None
            t.pk = t.pk or list(self.table(parent).pk)
        self.created = [(("partition", child, parent), a) if k[:2] in (("table", child), ("partition", child))
                        else (k, a) for k, a in self.created]

    def _CreateFunctionStmt(self, stmt: Stmt, node: ast.CreateFunctionStmt) -> None:
        name = node.funcname[-1].sval
        if self.up and node.replace and name in self.functions and ("function", name) not in {k for k, _ in self.created}:
            # A new body for a function an earlier migration created: the down file restores the old one.
            self.created.append((("replaced", "function", name), self.at(stmt)))
        else:
            self.created.append((("function", name), self.at(stmt)))
        if self.up:
            self.functions.add(name)

    def _AlterSeqStmt(self, stmt: Stmt, node: ast.AlterSeqStmt) -> None:
        self._owned_by(node.sequence.relname, node.options)

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
        self.here.add(node.into.rel.relname)  # new, so an index on it locks nobody out
        self.created.append(((kind, node.into.rel.relname), self.at(stmt)))

    def _CreateSeqStmt(self, stmt: Stmt, node: ast.CreateSeqStmt) -> None:
        self.created.append((("sequence", node.sequence.relname), self.at(stmt)))
        self._owned_by(node.sequence.relname, node.options)

    def _owned_by(self, sequence: str, options: object) -> None:
        for opt in options or ():
            if opt.defname == "owned_by" and len(opt.arg) >= 2:  # OWNED BY NONE is one name
                table, column = opt.arg[-2].sval, opt.arg[-1].sval
                self.depends[("sequence", sequence)] = (table, {column})

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
            used = set(keys) | {k.sval for k in con.fk_attrs or ()} | _column_refs(con.raw_expr)
            self.depends[("constraint", t.name, con.conname)] = (t.name, used)
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

    def _check_down(self, up: Source, restored: set[tuple]) -> None:
        dropped_tables = {k[1] for k in self.dropped if k[0] in ("table", "view")}
        # Partitions go with their parent, and with them their indexes.
        dropped_tables |= {k[1] for k, _ in self.created if k[0] == "partition" and k[2] in dropped_tables}
        for key, at in self.created:
            kind = key[0]
            if kind == "rename":
                continue
            if kind in ("column", "constraint", "trigger") and key[1] in dropped_tables:
                continue
            if kind == "index" and _index_table(self.created, key[1]) in dropped_tables:
                continue
            if kind == "partition" and key[1] in dropped_tables | {k[1] for k in self.dropped if k[0] == "table"}:
                continue
            if self._dropped_with(key, dropped_tables):
                continue
            if kind == "replaced":
                if ("function", key[2]) not in restored:
                    self.find("down-incomplete", at, f"the down file does not restore the earlier body of"
                              f" function {key[2]}",
                              f"copy the earlier CREATE OR REPLACE FUNCTION {key[2]} into"
                              f" {up.path.name[:-4]}.down.sql")
                continue
            if kind == "constraint" and key[2] is None:
                self.find("down-incomplete", at, f"unnamed constraint on {key[1]}: the down file cannot drop it",
                          "name the constraint and drop it by name in the down file")
                continue
            if key in self.dropped:
                continue
            what = f"trigger {key[2]} on {key[1]}" if kind == "trigger" else \
                f"table {key[1]}" if kind == "partition" else f"{kind} {'.'.join(key[1:])}"
            self.find("down-incomplete", at, f"the down file does not remove {what}",
                      f"add the matching DROP to {up.path.name[:-4]}.down.sql")

    def _dropped_with(self, key: tuple, dropped_tables: set[str]) -> bool:
        """PostgreSQL drops an index, constraint or owned sequence with its table or any of its columns."""
        table, columns = self.depends.get(key, (None, set()))
        return table in dropped_tables or any(("column", table, c) in self.dropped for c in columns)

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

"""Candidate indexes read off a parsed key query: what its WHERE and ORDER BY ask of each table.

Per SELECT block (the top level, each CTE body, each subquery, each side of a UNION), against the
base tables that block reads (a name that is a CTE or a subquery's alias is no table), per table: equality columns first (in the order written), then a range column, then the ORDER BY
columns in order; the conditions the query always has on the table (`deleted_at IS NULL`, a bare
boolean, a column equal to a constant) as a partial predicate; small INCLUDE columns so an
index-only scan can answer; and a full-text or functional predicate's expression as written. Each
shape is offered with and without its extras, and the planner decides which pays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Iterator

from pglast import ast
from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType, SetOperation, SortByDir
from pglast.stream import RawStream, maybe_double_quote_name

_MAX_NAME = 63  # PostgreSQL truncates longer identifiers
_RANGE_OPS = {"<", "<=", ">", ">="}
INCLUDE_MAX_COLUMNS = 3  # beyond this an INCLUDE list is a copy of the table, not a small cover
INCLUDE_MAX_WIDTH = 64  # bytes per row (pg_stats avg_width) the INCLUDE columns may add


@dataclass(frozen=True)
class Candidate:
    table: str
    keys: tuple[str, ...]  # SQL of each key part, as it goes between the parentheses
    method: str = "btree"
    predicate: str | None = None  # the partial index's WHERE
    include: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        words = [_word(k) for k in self.keys]
        live = self.predicate is not None and "deleted_at IS NULL" in self.predicate
        base = f"idx_{self.table}_{'live_' if live else ''}{'_'.join(w for w in words if w)}"
        if self.method != "btree":
            base += f"_{self.method}"
        return base[:_MAX_NAME].rstrip("_")

    def definition(self, concurrently: bool = True, if_not_exists: bool = True) -> str:
        """The CREATE INDEX statement; the real-build path drops CONCURRENTLY (it runs in a transaction)."""
        how = " CONCURRENTLY" if concurrently else ""
        exists = " IF NOT EXISTS" if if_not_exists else ""
        using = f" USING {self.method}" if self.method != "btree" else ""
        include = f" INCLUDE ({', '.join(self.include)})" if self.include else ""
        where = f" WHERE {self.predicate}" if self.predicate else ""
        return (f"CREATE INDEX{how}{exists} {maybe_double_quote_name(self.name)} ON"
                f" {maybe_double_quote_name(self.table)}{using} ({', '.join(self.keys)}){include}{where}")


def _word(key: str) -> str:
    # A readable name part: the column, or the columns an expression reads.
    text = "".join(ch if ch.isalnum() or ch == "_" else " " for ch in key.replace(" DESC", ""))
    skip = {"english", "to_tsvector", "lower", "upper", "coalesce", "text", "regconfig", "simple"}
    return "_".join(w for w in text.split() if w.lower() not in skip and not w.isdigit())


@dataclass
class _TableNeeds:
    equal: list[str] = field(default_factory=list)
    constant: set[str] = field(default_factory=set)  # equal to a constant: the partial predicate has them
    ranges: list[str] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    always: list[str] = field(default_factory=list)  # conditions for a partial index
    expressions: list[tuple[tuple[str, ...], str]] = field(default_factory=list)  # (expressions, method)
    used: set[str] = field(default_factory=set)  # every column the query reads here
    outside_where: set[str] = field(default_factory=set)  # those it reads outside the WHERE clause too
    star: bool = False  # SELECT * (or t.*): no INCLUDE list can cover it


def derive(stmt: ast.SelectStmt, columns: dict[str, dict[str, int]]) -> list[Candidate]:
    """Candidates for each SELECT block of the query (the top level, each CTE body, each subquery, each
    side of a UNION) against the base tables that block reads; `columns` is {table: {column: average
    width}} from the catalog."""
    found: list[Candidate] = []
    for block, ctes in _blocks(stmt, frozenset()):
        for candidate in _derive_block(block, ctes, columns):
            if candidate not in found:
                found.append(candidate)
    return found


def _blocks(stmt: ast.SelectStmt, ctes: frozenset[str]) -> Iterator[tuple[ast.SelectStmt, frozenset[str]]]:
    """Every plain SELECT of the statement with the CTE names it sees: there such a name is no table."""
    if stmt.withClause is not None:
        names = {cte.ctename for cte in stmt.withClause.ctes}
        seen = set(ctes)
        for cte in stmt.withClause.ctes:
            # A CTE's body sees the CTEs written before it; a RECURSIVE one sees them all, itself too.
            scope = ctes | names if stmt.withClause.recursive else frozenset(seen)
            if isinstance(cte.ctequery, ast.SelectStmt):
                yield from _blocks(cte.ctequery, scope)
            seen.add(cte.ctename)
        ctes = frozenset(seen)
    if stmt.op != SetOperation.SETOP_NONE:  # UNION, INTERSECT, EXCEPT: each side is a query of its own
        yield from _blocks(stmt.larg, ctes)
        yield from _blocks(stmt.rarg, ctes)
        return
    yield stmt, ctes
    for sub in _subqueries(stmt):
        yield from _blocks(sub, ctes)


def _subqueries(stmt: ast.SelectStmt) -> list[ast.SelectStmt]:
    """The SELECTs nested in the block itself (FROM, WHERE, the select list), not those nested in them."""
    found: list = []
    for attr in stmt:
        if attr != "withClause":  # the CTE bodies, with their own scope, are _blocks' to walk
            _in_scope(getattr(stmt, attr), ast.SelectStmt, found)
    return found


def _derive_block(stmt: ast.SelectStmt, ctes: frozenset[str], columns: dict[str, dict[str, int]]) -> list[Candidate]:
    aliases: dict[str, str] = {}
    # A FROM item that is no table (a subquery, a CTE, a function) may own an unqualified column too.
    others = _aliases(stmt.fromClause or (), ctes, aliases)
    tables = list(dict.fromkeys(aliases.values()))
    needs = {t: _TableNeeds() for t in tables}

    def owner(ref: ast.ColumnRef) -> tuple[str, str] | None:
        names = [f.sval for f in ref.fields if isinstance(f, ast.String)]
        if not names:  # a bare *
            return None
        if len(names) >= 2:
            table = aliases.get(names[-2])
            return (table, names[-1]) if table else None
        found = [t for t in tables if names[0] in columns.get(t, {})]
        if len(found) == 1:
            return found[0], names[0]
        return (tables[0], names[0]) if len(tables) == 1 and not others else None

    for target in stmt.targetList or ():
        value = target.val
        if isinstance(value, ast.ColumnRef) and isinstance(value.fields[-1], ast.A_Star):
            qualifier = [f.sval for f in value.fields if isinstance(f, ast.String)]
            for table in ([aliases.get(qualifier[0])] if qualifier else tables):
                if table:
                    needs[table].star = True
    for ref in _column_refs(stmt):
        if (found := owner(ref)) is not None:
            needs[found[0]].used.add(found[1])
    for ref in (r for attr in stmt if attr != "whereClause" for r in _column_refs(getattr(stmt, attr))):
        if (found := owner(ref)) is not None:
            needs[found[0]].outside_where.add(found[1])
    for condition in _conjuncts(stmt.whereClause):
        _read_condition(condition, owner, needs)
    for sort in stmt.sortClause or ():
        if isinstance(sort.node, ast.ColumnRef) and (found := owner(sort.node)) is not None:
            needs[found[0]].order.append((found[1], sort.sortby_dir == SortByDir.SORTBY_DESC))
    order_tables = {t for t in tables if needs[t].order}
    if len(order_tables) > 1:  # an order across two tables cannot come from one index
        for t in order_tables:
            needs[t].order = []
    return [c for table in tables for c in _shapes(table, needs[table], columns.get(table, {}))]


def _aliases(items, ctes: frozenset[str], found: dict[str, str]) -> bool:
    """Fill `found` with {alias or name: table} of the FROM items that are tables; True when another
    kind of item is there too."""
    others = False
    for item in items:
        if isinstance(item, ast.RangeVar) and not (item.schemaname is None and item.relname in ctes):
            found[item.alias.aliasname if item.alias else item.relname] = item.relname
            found.setdefault(item.relname, item.relname)
        elif isinstance(item, ast.JoinExpr):
            others = _aliases((item.larg, item.rarg), ctes, found) or others
        else:
            others = True
    return others


def _column_refs(node) -> list[ast.ColumnRef]:
    found: list = []
    for value in ([getattr(node, attr) for attr in node] if isinstance(node, ast.SelectStmt) else [node]):
        _in_scope(value, ast.ColumnRef, found)
    return found


def _in_scope(value, kind: type, found: list) -> None:
    """Add to `found` the nodes of `kind` in `value`, not looking inside a nested SELECT, whose
    columns and subqueries are its own (a nested SELECT is itself found when `kind` is SelectStmt)."""
    if isinstance(value, kind):
        found.append(value)
    elif isinstance(value, ast.SelectStmt):
        return
    elif isinstance(value, ast.Node):
        for attr in value:
            _in_scope(getattr(value, attr), kind, found)
    elif isinstance(value, tuple):
        for item in value:
            _in_scope(item, kind, found)


def _conjuncts(where) -> list:
    if where is None:
        return []
    if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR:
        return [c for arg in where.args for c in _conjuncts(arg)]
    return [where]


def _is_value(node) -> bool:
    """A parameter, a constant or a cast of one: something the index compares a column with."""
    if isinstance(node, ast.TypeCast):
        return _is_value(node.arg)
    return isinstance(node, (ast.ParamRef, ast.A_Const))


def _read_condition(cond, owner, needs: dict[str, _TableNeeds]) -> None:
    if isinstance(cond, ast.NullTest) and isinstance(cond.arg, ast.ColumnRef):
        if (found := owner(cond.arg)) is not None:
            test = "IS NULL" if cond.nulltesttype == NullTestType.IS_NULL else "IS NOT NULL"
            needs[found[0]].always.append(f"{maybe_double_quote_name(found[1])} {test}")
        return
    if isinstance(cond, ast.ColumnRef):  # a bare boolean column: WHERE is_published
        if (found := owner(cond)) is not None:
            needs[found[0]].always.append(maybe_double_quote_name(found[1]))
        return
    if isinstance(cond, ast.BoolExpr) and cond.boolop == BoolExprType.OR_EXPR:
        # Each branch needs an index of its own (a BitmapOr): one multicolumn index of their expressions
        # serves them all (a GIN index searches any of its columns alone), or each branch alone.
        branches: dict[str, _TableNeeds] = {t: _TableNeeds() for t in needs}
        for arg in cond.args:
            if isinstance(arg, ast.A_Expr) and isinstance(arg.lexpr, ast.FuncCall):
                _read_condition(arg, owner, branches)
        for table, branch in branches.items():
            needs[table].expressions += branch.expressions
            methods = {m for _, m in branch.expressions}
            if len(branch.expressions) > 1 and methods == {"gin"}:
                needs[table].expressions.append((tuple(e for keys, _ in branch.expressions for e in keys), "gin"))
        return
    if not isinstance(cond, ast.A_Expr):
        return
    op = cond.name[-1].sval if cond.name else ""
    left, right = cond.lexpr, cond.rexpr
    if isinstance(right, ast.ColumnRef) and _is_value(left):
        left, right = right, left
        op = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
    if cond.kind == A_Expr_Kind.AEXPR_OP and isinstance(left, ast.ColumnRef) and _is_value(right):
        if (found := owner(left)) is None:
            return
        table, column = found
        if op == "=":
            needs[table].equal.append(column)
            if isinstance(right, ast.A_Const):  # status = 'enrolled': always true of the rows read
                needs[table].constant.add(column)
                needs[table].always.append(f"{maybe_double_quote_name(column)} = {RawStream()(right)}")
        elif op in _RANGE_OPS:
            needs[table].ranges.append(column)
    elif cond.kind == A_Expr_Kind.AEXPR_BETWEEN and isinstance(left, ast.ColumnRef):
        if (found := owner(left)) is not None:
            needs[found[0]].ranges.append(found[1])
    elif cond.kind == A_Expr_Kind.AEXPR_OP and isinstance(left, ast.RowExpr) and op in _RANGE_OPS:
        # (created_at, id) < (...): a keyset; its leading column is the range.
        first = left.args[0]
        if isinstance(first, ast.ColumnRef) and (found := owner(first)) is not None:
            needs[found[0]].ranges.append(found[1])
    elif isinstance(left, ast.FuncCall) and _is_value_or_call(right):
        refs = [r for r in _column_refs(left) if owner(r) is not None]
        if refs:
            table = owner(refs[0])[0]
            method = "gin" if op == "@@" else "btree"
            if op == "=" or op == "@@" or op in _RANGE_OPS:
                needs[table].expressions.append(((RawStream()(left),), method))


def _is_value_or_call(node) -> bool:
    # plainto_tsquery('english', :term): a call of values only.
    if isinstance(node, ast.FuncCall):
        return all(_is_value(a) or _is_value_or_call(a) for a in node.args or ())
    return _is_value(node)


def _shapes(table: str, needs: _TableNeeds, widths: dict[str, int]) -> list[Candidate]:
    quote = maybe_double_quote_name
    equal = list(dict.fromkeys(needs.equal))
    ranges = [c for c in dict.fromkeys(needs.ranges) if c not in equal]
    order = [(c, d) for c, d in needs.order if c not in equal]
    # One direction for the whole ORDER BY is read backwards from an ascending index.
    mixed = len({d for _, d in order}) > 1
    order_keys = [f"{quote(c)}{' DESC' if d and mixed else ''}" for c, d in order]
    predicate = " AND ".join(dict.fromkeys(needs.always)) or None
    eq_keys = [quote(c) for c in equal]
    shapes: list[list[str]] = []
    if order_keys:
        shapes.append(eq_keys + order_keys)  # rows come in order: no sort, a LIMIT stops early
    if ranges:
        shapes.append(eq_keys + [quote(ranges[0])])
    if eq_keys:
        shapes.append(eq_keys)
    if not shapes and predicate:
        # Only fixed conditions (count the live rows): index their columns, small and partial.
        shapes.append([quote(c) for c in dict.fromkeys(_columns_of(needs.always))])
    found: list[Candidate] = []
    fixed = {quote(c) for c in needs.constant}
    for keys in shapes:
        # The other columns the query reads here, so that an index-only scan can answer; never a key column.
        extra = sorted(needs.used - set(equal) - set(ranges) - {c for c, _ in order} - set(_columns_of(keys)))
        # A column the predicate fixes to one constant adds nothing to the keys of the partial index.
        variants = [(tuple(k for k in keys if k not in fixed), predicate), (tuple(keys), None)] if predicate \
            else [(tuple(keys), None)]
        for key_parts, where in variants:
            if not key_parts:
                continue
            found.append(Candidate(table, key_parts, predicate=where))
            # The planner drops a condition the partial predicate implies: an index-only scan needs no
            # copy of a column read only there (deleted_at of deleted_at IS NULL).
            implied = set(_columns_of(needs.always)) - needs.outside_where if where else set()
            cover = [c for c in extra if c not in implied]
            small = (not needs.star and 0 < len(cover) <= INCLUDE_MAX_COLUMNS
                     and sum(widths.get(c, INCLUDE_MAX_WIDTH) for c in cover) <= INCLUDE_MAX_WIDTH)
            if small:
                found.append(Candidate(table, key_parts, predicate=where, include=tuple(quote(c) for c in cover)))
    for expressions, method in dict.fromkeys(needs.expressions):
        found.append(Candidate(table, expressions, method=method, predicate=predicate))
        if predicate:
            found.append(Candidate(table, expressions, method=method))
    return found


def _columns_of(conditions: list[str]) -> list[str]:
    return [c.split()[0].strip('"') for c in conditions]

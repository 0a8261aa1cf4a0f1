"""The data-loss guard: a down file that drops a table or column holding rows is refused without --force.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from ..errors import Refused
from .tree import Migration


class Unparsed(ValueError):
    """A down statement the guard cannot read: it cannot tell what the statement drops."""


def dropped_objects(sql: str) -> list[tuple[str, str | None]]:
    """(table, column) pairs a statement drops; column None for a whole table. Parsed, not matched.

    Unparsed when PostgreSQL's parser cannot read it: the guard then fails closed."""
    from pglast import parse_sql
    from pglast.enums import AlterTableType, ObjectType
    from pglast.parser import ParseError

    found: list[tuple[str, str | None]] = []
    try:
        stmts = parse_sql(sql)
    except ParseError as exc:
        raise Unparsed(str(exc)) from None
    for raw in stmts:
        node = raw.stmt
        kind = type(node).__name__
        if kind == "DropStmt" and node.removeType == ObjectType.OBJECT_TABLE:
            for names in node.objects:
                found.append((".".join(n.sval for n in names), None))
        elif kind == "AlterTableStmt":
            table = node.relation.relname
            if node.relation.schemaname:
                table = f"{node.relation.schemaname}.{table}"
            for cmd in node.cmds:
                if cmd.subtype == AlterTableType.AT_DropColumn:
                    found.append((table, cmd.name))
    return found


def refuse_data_loss(conn: psycopg.Connection, plan: list[Migration]) -> None:
    for m in plan:
        for st in m.statements("down"):
            try:
                dropped = dropped_objects(st.sql)
            except Unparsed as exc:
                raise Refused(f"{m.down}:{st.line}: the data-loss guard cannot parse this statement ({exc}), so it"
                              " cannot tell what it drops; fix the file, or roll back with --force") from None
            for table, column in dropped:
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                    continue
                ident = sql.Identifier(*table.split("."))
                if column is None:
                    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident)
                    what = f"table {table}"
                else:
                    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NOT NULL)").format(
                        ident, sql.Identifier(column)
                    )
                    what = f"column {table}.{column}"
                if conn.execute(query).fetchone()[0]:
                    raise Refused(
                        f"{m.down}:{st.line}: drops {what}, which holds rows; back the data up,"
                        " then roll back with --force"
                    )

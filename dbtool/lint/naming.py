"""The specification's conventions as predicates on names and parse-tree nodes.
"""

from __future__ import annotations

import re
from typing import Iterator

from pglast import ast
from pglast.enums import AlterTableType, NullTestType, ObjectType

from .model import At

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


def walk(node: object) -> Iterator[ast.Node]:
    """Every node of a parse tree, depth first."""
    if isinstance(node, (tuple, list)):
        for item in node:
            yield from walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attr in node.__slots__:
            yield from walk(getattr(node, attr, None))


def _column_refs(expr: object) -> set[str]:
    return {n.fields[-1].sval for n in walk(expr) if isinstance(n, ast.ColumnRef)
            and isinstance(n.fields[-1], ast.String)}


def _serves_live_rows(where: object) -> bool:
    return any(isinstance(n, ast.NullTest) and n.nulltesttype == NullTestType.IS_NULL
               and _column_refs(n.arg) == {"deleted_at"} for n in walk(where))


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

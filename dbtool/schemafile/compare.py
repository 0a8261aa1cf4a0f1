"""Comparing two dumps object by object: which object differs, and how, then a unified diff.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

# pg_dump's object headers: "-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -".
_HEADER = re.compile(r"^-- Name: (?P<name>.+?); Type: (?P<type>.+?); Schema: (?P<schema>.+?); Owner: .*$")


# Object types whose pg_dump name is "<table> <object>".
_ON_TABLE = {"CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "DEFAULT", "POLICY", "RULE", "CHECK CONSTRAINT"}


@dataclass(frozen=True)
class SchemaObject:
    type: str  # pg_dump's type: TABLE, INDEX, CONSTRAINT, FK CONSTRAINT, TRIGGER, FUNCTION, ...
    name: str  # pg_dump's name: "users", or "users users_pkey" for objects that belong to a table
    schema: str
    sql: str

    def label(self) -> str:
        """How a person names it: 'INDEX idx_users_email', 'CONSTRAINT users_pkey on users'."""
        prefix = "" if self.schema in ("public", "-") else f"{self.schema}."
        if self.type in _ON_TABLE and " " in self.name:
            table, obj = self.name.split(" ", 1)
            return f"{self.type} {obj} on {prefix}{table}"
        return f"{self.type} {prefix}{self.name}"


def parse_objects(text: str) -> dict[tuple[str, str, str], SchemaObject]:
    """The objects of a dump, keyed by (type, schema, name), each with its SQL."""
    objects: dict[tuple[str, str, str], SchemaObject] = {}
    current: re.Match | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            sql_text = "\n".join(body).strip("\n-").strip()
            key = (current["type"], current["schema"], current["name"])
            objects[key] = SchemaObject(current["type"], current["name"], current["schema"], sql_text)

    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            close()
            current, body = match, []
        elif line.startswith("-- PostgreSQL database dump complete"):
            close()
            current, body = None, []
        elif current is not None:
            body.append(line)
    close()
    return objects


@dataclass(frozen=True)
class Side:
    """The words for the two schemas being compared, so each finding reads as a sentence."""

    expected: str  # e.g. "the migrations"
    actual: str  # e.g. "the live database"


@dataclass
class Difference:
    side: Side
    only_expected: list[SchemaObject] = field(default_factory=list)
    only_actual: list[SchemaObject] = field(default_factory=list)
    changed: list[tuple[SchemaObject, SchemaObject]] = field(default_factory=list)
    diff: str = ""

    def __bool__(self) -> bool:
        return bool(self.diff)

    def findings(self) -> list[str]:
        """One sentence per object that differs, naming it: 'INDEX idx_courses_price: missing from ...'."""
        lines = [f"{o.label()}: missing from {self.side.actual}" for o in self.only_expected]
        lines += [f"{o.label()}: only in {self.side.actual}, not in {self.side.expected}" for o in self.only_actual]
        for want, got in self.changed:
            details = _table_details(want, got, self.side) if want.type == "TABLE" else []
            lines += details or [f"{want.label()}: differs between {self.side.expected} and {self.side.actual}"]
        return lines


def _table_lines(sql_text: str) -> dict[str, str]:
    """The column and inline constraint lines of a CREATE TABLE, keyed by what they define."""
    found = {}
    for line in sql_text.splitlines()[1:]:
        item = line.strip().rstrip(",")
        if not item or item.startswith(")"):
            continue
        words = item.split(" ")
        if words[0] == "CONSTRAINT" and len(words) > 2:
            found[f"constraint {words[1]}"] = " ".join(words[2:])
        else:
            found[f"column {words[0]}"] = " ".join(words[1:])
    return found


def _table_details(want: SchemaObject, got: SchemaObject, side: Side) -> list[str]:
    a, b = _table_lines(want.sql), _table_lines(got.sql)
    label = want.label()
    lines = [f"{label}: {k} missing from {side.actual}" for k in a if k not in b]
    lines += [f"{label}: {k} only in {side.actual} ({b[k]})" for k in b if k not in a]
    lines += [f"{label}: {k} is '{b[k]}' in {side.actual}, '{a[k]}' in {side.expected}"
              for k in a if k in b and a[k] != b[k]]
    if not lines and list(a) != list(b):
        lines.append(f"{label}: columns in another order in {side.actual}")
    return lines


def compare(expected: str, actual: str, side: Side, names: tuple[str, str] = ("expected", "actual"),
            column_order: bool = True) -> Difference:
    """What differs between two dumps: the objects by name, and a unified diff of the text.

    `column_order=False` takes a table whose columns are the same in another order as the same: a
    column a down file drops and re-adds comes back last, which PostgreSQL cannot undo."""
    result = Difference(side)
    if expected == actual:
        return result
    want, got = parse_objects(expected), parse_objects(actual)
    result.only_expected = [o for k, o in want.items() if k not in got]
    result.only_actual = [o for k, o in got.items() if k not in want]
    result.changed = [(o, got[k]) for k, o in want.items() if k in got and got[k].sql != o.sql
                      and (column_order or o.type != "TABLE" or _table_lines(o.sql) != _table_lines(got[k].sql))]
    if not column_order and not (result.only_expected or result.only_actual or result.changed):
        return result
    result.diff = "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True), fromfile=names[0], tofile=names[1]))
    if not result.diff:  # only a missing final newline, say; still a difference
        result.diff = f"--- {names[0]}\n+++ {names[1]}\n(differ in whitespace only)\n"
    return result

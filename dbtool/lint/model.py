"""The model of a service's tables that lint keeps while it walks the migrations in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .source import Source, Stmt


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

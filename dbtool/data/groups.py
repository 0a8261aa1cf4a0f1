"""A declared group of synthetic rows, and the chunks it is made in: consecutive rows generated
column by column, each column a list of values. What the rules of a group's columns make is in
rules.py; the catalog of every service's groups and the making of rows, in synthetic.py.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One row, for callers that want rows rather than chunks: its numbers, values and parent row."""

    i: int  # 0-based within the group
    j: int = 0  # 1-based position under the parent; 0 for a group without parent
    parent: Row | None = None
    values: dict[str, Any] = field(default_factory=dict)


class Chunk:
    """Consecutive rows of one group (or, for a ref, any rows of it), generated column by column."""

    __slots__ = ("base", "i", "j", "parent", "picked", "up", "values")

    def __init__(self, i: Any, j: list[int] | None = None, up: list[int] | None = None,
                 parent: Chunk | None = None, base: Any = None) -> None:
        self.i = i  # row numbers, 0-based within the group
        self.j = j  # positions under the parent, 1-based; None for a group without parent
        self.up = up  # each row's parent, as a place in `parent`
        self.parent = parent
        self.base = i if base is None else base  # each row's top-level ancestor's row number
        self.values: dict[str, list] = {}  # column -> its values, row by row
        self.picked: dict[str, Chunk] = {}  # ref column -> the rows it picked, with their columns

    def __len__(self) -> int:
        return len(self.i)


Gen = Callable[[Chunk], list]
Text = Callable[[list], list]  # a column's values -> their COPY text


@dataclass
class Group:
    service: str
    name: str
    table: str
    rows: int | None  # per unit of scale; None for rows under a parent
    parent: Group | None
    count: Callable[[Row], Any] | None  # how many rows under a parent row (`counts`, one row at a time)
    columns: list[tuple[str, Gen]]
    key: str  # the uuid column identifying the group's rows
    source: Path
    texts: dict[str, Text] = field(default_factory=dict)  # column -> how its values are written
    needs: dict[str, set[str]] = field(default_factory=dict)  # column -> the earlier columns it reads
    counts: Gen | None = None  # how many rows under each parent row of a chunk
    parent_columns: set[str] = field(default_factory=set)  # the parent's columns these rows read
    refers_to: list[Group] = field(default_factory=list)
    uuid_prefix: str = ""
    _needed: dict[frozenset[str], set[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.uuid_prefix = uuid_prefix(self.service, self.name)

    @property
    def label(self) -> str:
        return f"{self.service}.{self.name}"

    def planned(self, scale: int) -> int | None:
        return None if self.rows is None else self.rows * scale

    def key_range(self) -> tuple[str, str]:
        return self.uuid_prefix + "0" * 12, self.uuid_prefix + "f" * 12

    def fill(self, chunk: Chunk, wanted: frozenset[str] | None = None) -> Chunk:
        """Generate the chunk's columns: all of them, or those `wanted` and what they read."""
        needed = None if wanted is None else self._closure(wanted)
        for name, gen in self.columns:
            if needed is None or name in needed:
                chunk.values[name] = gen(chunk)
        return chunk

    def _closure(self, wanted: frozenset[str]) -> set[str]:
        if wanted not in self._needed:
            needed = set(wanted)
            for name, _ in reversed(self.columns):
                if name in needed:
                    needed |= self.needs[name]
            self._needed[wanted] = needed
        return self._needed[wanted]

    def pick(self, numbers: list[int], wanted: frozenset[str]) -> Chunk:
        """Rows `numbers` of this group (one without parent), with the columns `wanted`."""
        return self.fill(Chunk(numbers), wanted)

    def copy_text(self, chunk: Chunk) -> str:
        """The chunk's rows as COPY text, one line each."""
        if not len(chunk):
            return ""
        columns = [self.texts[name](chunk.values[name]) for name, _ in self.columns]
        return "\n".join(map("\t".join, zip(*columns))) + "\n"


def uuid_prefix(service: str, name: str) -> str:
    return f"{zlib.crc32(f'{service}.{name}'.encode()):08x}-5eed-4000-8000-"

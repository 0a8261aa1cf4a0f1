"""Deterministic synthetic rows, declared per service in `schemas/<service>/seeds/synthetic.toml`.

Row i of a group is a pure function of (service, group, column, i): the same at every scale, on
every machine, in every run, so a larger scale only appends rows. Another service points at row k
of a group by computing its id and name, without reading that database, and the soft references
come out consistent by construction.

    [<group>]                      a set of rows for one table (table = "<name>", default the group's)
    rows = 100                     rows per unit of --scale; or, for rows that belong to a parent row:
    per = "<group>"                one run of rows per row of that group (declared earlier, same file)
    count = "<column>"             how many: a column of the parent row, or a generator run on it
    [<group>.columns]              in order; a generator may use the columns before it
    id = "uuid"                    deterministic UUID; the group's first uuid column is its key
    c = { value = 42 }             a constant
    c = { choice = [..] }          one of the values, picked by the row
    c = { cycle = [..] }           the values in turn, by position under the parent (or row number)
    c = { int = [lo, hi] }         an integer, bounds inclusive; a bound may name an earlier column
    c = { time = ["2024-01-01", "2025-12-31"] }  a timestamp in that range
    c = { format = "{first} {n}", first = [..] } text; {n} row number, {j} position under the parent,
                                   {<column>} an earlier column, {<key>} a pick from the key's list
    c = { same = "<column>" }      the value of an earlier column
    c = { parent = "<column>" }    a column of the parent row
    c = { ref = "<service>.<group>", column = "id" }  a column of a row of another group, anywhere;
                                   distinct = true: no two rows under one parent pick the same row
    c = { from = "<column>", column = "name" }  another column of the row an earlier ref picked

Rows are made a chunk at a time, column by column: each generator (rules.py) turns a chunk's row numbers (and
the columns before it) into a list of values, and each column knows how to write its values as COPY
text. One loop per column instead of one call per value is what lets generation keep up with the
server taking the rows in. The values are the ones a row-at-a-time reading of the rules above gives:
tests/test_synthetic.py holds such a reading and compares the two.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..config import Settings, discover_services, load_toml
from ..errors import BadInput
from .groups import Chunk, Group, Row
from .rules import Compiler, copy_text

SYNTHETIC_FILE = "synthetic.toml"
CHUNK = 5000  # rows of a group made at a time (for rows under a parent: parent rows at a time)


class Catalog:
    """Every service's groups, so a generator can refer to a group of another service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.groups: dict[str, Group] = {}
        self._loaded: set[str] = set()

    def service(self, service: str) -> list[Group]:
        """The groups of one service in declaration order; [] when it declares none."""
        if service not in self._loaded:
            self._loaded.add(service)
            path = self.settings.schemas_dir / service / "seeds" / SYNTHETIC_FILE
            if path.exists():
                for name, spec in load_toml(path).items():
                    self.groups[f"{service}.{name}"] = Compiler(self, service, path, name, spec).group()
        return [g for key, g in self.groups.items() if key.startswith(f"{service}.")]

    def group(self, label: str, where: str) -> Group:
        service, _, name = label.partition(".")
        if service not in discover_services(self.settings.schemas_dir):
            raise BadInput(f"{where}: ref {label!r} names no service folder; write \"<service>.<group>\"")
        self.service(service)
        if label not in self.groups:
            raise BadInput(f"{where}: ref {label!r}: {service} declares no group {name!r} in seeds/{SYNTHETIC_FILE}")
        return self.groups[label]

    def referenced_services(self, service: str) -> set[str]:
        return {g.service for group in self.service(service) for g in group.refers_to} - {service}


def chunks(group: Group, scale: int, start: int = 0, parent_start: int = 0, size: int = CHUNK,
           wanted: frozenset[str] | None = None) -> Iterator[Chunk]:
    """The group's rows from row `start` on, a chunk at a time; for a child group, the rows under
    parents from `parent_start` on. `wanted`: only these columns (and what they read)."""
    if group.parent is None:
        stop = group.planned(scale) or 0
        for first in range(start, stop, size):
            yield group.fill(Chunk(range(first, min(first + size, stop))), wanted)
        return
    i = start
    for parents in chunks(group.parent, scale, parent_start, 0, size, frozenset(group.parent_columns)):
        counts = [int(n) for n in group.counts(parents)]  # type: ignore[misc]
        up = [u for u, n in enumerate(counts) for _ in range(n)]
        if not up:
            continue
        j = [k for n in counts for k in range(1, n + 1)]
        chunk = Chunk(range(i, i + len(up)), j, up, parents, [parents.base[u] for u in up])
        i += len(up)
        yield group.fill(chunk, wanted)


def _rows_of(chunk: Chunk) -> list[Row]:
    parents = _rows_of(chunk.parent) if chunk.parent is not None else None
    names = list(chunk.values)
    return [Row(i, chunk.j[k] if chunk.j is not None else 0, parents[chunk.up[k]] if parents else None,
                {name: chunk.values[name][k] for name in names})
            for k, i in enumerate(chunk.i)]


def rows(group: Group, scale: int, start: int = 0, parent_start: int = 0) -> Iterator[Row]:
    """The group's rows from row `start` on; for a child group, those of parents from `parent_start` on.
    A row's parent carries the columns its children read."""
    for chunk in chunks(group, scale, start, parent_start):
        yield from _rows_of(chunk)


def copy_lines(group: Group, rows_: Iterator[Row]) -> Iterator[str]:
    names = [name for name, _ in group.columns]
    for row in rows_:
        yield "\t".join(copy_text(row.values[n]) for n in names) + "\n"

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
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from ..config import Settings, discover_services, load_toml
from ..errors import BadInput

SYNTHETIC_FILE = "synthetic.toml"
_MASK = (1 << 64) - 1
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread, platform-independent hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _seed(*parts: str) -> int:
    # crc32, not hash(): Python salts str hashes per process, and the data must not change.
    return zlib.crc32(".".join(parts).encode()) << 32


@dataclass
class Row:
    """What a generator sees: the row's numbers, the columns made so far, the parent row."""

    i: int  # 0-based within the group
    j: int = 0  # 1-based position under the parent; 0 for a group without parent
    parent: "Row | None" = None
    values: dict[str, Any] = field(default_factory=dict)
    picked: dict[str, tuple["Group", int]] = field(default_factory=dict)  # column -> (group, row) it refers to


Gen = Callable[[Row], Any]


@dataclass
class Group:
    service: str
    name: str
    table: str
    rows: int | None  # per unit of scale; None for rows under a parent
    parent: "Group | None"
    count: Gen | None  # run on the parent row
    columns: list[tuple[str, Gen]]
    key: str  # the uuid column identifying the group's rows
    source: Path
    uuid_prefix: str = ""

    def __post_init__(self) -> None:
        self.uuid_prefix = f"{zlib.crc32(f'{self.service}.{self.name}'.encode()):08x}-5eed-4000-8000-"
        # Rows of a group are asked for again and again by the groups that refer to them.
        self.row = lru_cache(maxsize=1 << 14)(self._row)

    @property
    def label(self) -> str:
        return f"{self.service}.{self.name}"

    def planned(self, scale: int) -> int | None:
        return None if self.rows is None else self.rows * scale

    def key_range(self) -> tuple[str, str]:
        return self.uuid_prefix + "0" * 12, self.uuid_prefix + "f" * 12

    def _row(self, i: int, j: int = 0, parent: Row | None = None) -> Row:
        row = Row(i, j, parent)
        for name, gen in self.columns:
            row.values[name] = gen(row)
        return row

    def make(self, i: int, j: int = 0, parent: Row | None = None) -> Row:
        # Child rows depend on their parent: never cached, never asked for by others.
        return self._row(i, j, parent) if parent is not None else self.row(i)


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
                    self.groups[f"{service}.{name}"] = _Compiler(self, service, path, name, spec).group()
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
        return {g.service for g in _refs_of(self.service(service))} - {service}


def _refs_of(groups: list[Group]) -> list[Group]:
    return [g for group in groups for g in getattr(group, "refers_to", [])]


class _Compiler:
    """Turns one group's TOML into generator functions, naming the file and column in every error."""

    def __init__(self, catalog: Catalog, service: str, path: Path, name: str, spec: Any) -> None:
        self.catalog, self.service, self.path, self.name, self.spec = catalog, service, path, name, spec
        self.refers_to: list[Group] = []
        self.seen: list[str] = []  # columns compiled so far: the ones a generator may use

    def fail(self, what: str) -> BadInput:
        return BadInput(f"{self.path}: [{self.name}] {what}")

    def group(self) -> Group:
        spec = self.spec
        if not isinstance(spec, dict) or not isinstance(spec.get("columns"), dict):
            raise self.fail("needs a [<group>.columns] table; see the top of dbtool/synthetic.py")
        unknown = set(spec) - {"table", "rows", "per", "count", "columns"}
        if unknown:
            raise self.fail(f"unknown keys {sorted(unknown)}; use table, rows or per and count, columns")
        parent, count, rows = None, None, spec.get("rows")
        if "per" in spec:
            parent = self.catalog.groups.get(f"{self.service}.{spec['per']}")
            if parent is None or rows is not None or "count" not in spec:
                raise self.fail("per = \"<group>\" names an earlier group of this file, with count and without rows")
            count = self._count(spec["count"], parent)
        elif not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise self.fail("rows = <positive integer> (rows per unit of scale), or per and count")
        columns = []
        for column, gen_spec in spec["columns"].items():
            columns.append((column, self.compile(column, gen_spec, parent)))
            self.seen.append(column)
        keys = [c for c, s in spec["columns"].items() if s == "uuid"]
        if not keys:
            raise self.fail("has no column = \"uuid\"; add one, it identifies the group's rows")
        group = Group(self.service, self.name, spec.get("table", self.name), rows, parent, count, columns,
                      keys[0], self.path)
        group.refers_to = self.refers_to  # type: ignore[attr-defined]
        self._uuid_group = group
        return group

    def _count(self, spec: Any, parent: Group) -> Gen:
        if isinstance(spec, str):
            if spec not in dict(parent.columns):
                raise self.fail(f"count = {spec!r}: {parent.name} has no such column")
            return lambda row: row.values[spec]
        return self.compile("count", spec, None, seed_name="count")

    def compile(self, column: str, spec: Any, parent: Group | None, seed_name: str | None = None) -> Gen:
        seed = _seed(self.service, self.name, seed_name or column)
        where = f"column {column}"
        if spec == "uuid":
            return lambda row, g=self: g._uuid_group.uuid_prefix + f"{row.i:012x}"
        if not isinstance(spec, dict) or not spec:
            raise self.fail(f"{where}: {spec!r} is not a generator; see the top of dbtool/synthetic.py")
        kind = next(iter(spec))
        gen = {
            "value": self._value, "choice": self._choice, "cycle": self._cycle, "int": self._int,
            "time": self._time, "format": self._format, "same": self._same, "parent": self._parent,
            "ref": self._ref, "from": self._from,
        }.get(kind)
        if gen is None:
            raise self.fail(f"{where}: unknown generator {kind!r}; see the top of dbtool/synthetic.py")
        return gen(where, spec, seed, parent)

    def _known(self) -> set[str]:
        return set(self.seen) | {"n", "j"}

    def _value(self, where, spec, seed, parent) -> Gen:
        value = spec["value"]
        return lambda row: value

    def _list(self, where: str, values: Any, key: str) -> list:
        if not isinstance(values, list) or not values:
            raise self.fail(f"{where}: {key} needs a non-empty list")
        return values

    def _choice(self, where, spec, seed, parent) -> Gen:
        values = self._list(where, spec["choice"], "choice")
        return lambda row: values[_mix(seed + row.i) % len(values)]

    def _cycle(self, where, spec, seed, parent) -> Gen:
        values = self._list(where, spec["cycle"], "cycle")
        return lambda row: values[((row.j or row.i + 1) - 1) % len(values)]

    def _bound(self, where: str, bound: Any) -> Callable[[Row], int]:
        if isinstance(bound, int) and not isinstance(bound, bool):
            return lambda row: bound
        if isinstance(bound, str) and bound in self.seen:
            return lambda row: row.values[bound]
        raise self.fail(f"{where}: int bound {bound!r} is neither an integer nor an earlier column")

    def _int(self, where, spec, seed, parent) -> Gen:
        bounds = spec["int"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise self.fail(f"{where}: int = [low, high]")
        low, high = self._bound(where, bounds[0]), self._bound(where, bounds[1])

        def gen(row: Row) -> int:
            lo, hi = low(row), high(row)
            return lo + _mix(seed + row.i) % (hi - lo + 1)

        return gen

    def _time(self, where, spec, seed, parent) -> Gen:
        try:
            start, end = (datetime.fromisoformat(str(t)).replace(tzinfo=timezone.utc) for t in spec["time"])
        except (ValueError, TypeError):
            raise self.fail(f"{where}: time = [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]") from None
        span = max(int((end - start).total_seconds()), 1)
        start = start.replace(tzinfo=None)  # str() of a naive datetime is the COPY text we want
        return lambda row: str(start + timedelta(seconds=_mix(seed + row.i) % span))

    def _format(self, where, spec, seed, parent) -> Gen:
        template = str(spec["format"])
        lists = {k: self._list(where, v, k) for k, v in spec.items() if k != "format"}
        fields = set(re.findall(r"{(\w+)}", template))
        missing = fields - set(lists) - self._known()
        if missing:
            raise self.fail(f"{where}: format names {sorted(missing)}, which are no earlier column nor list")
        # Only what the template uses is computed: this runs once per row and column.
        picks = [(k, seed + zlib.crc32(k.encode()), v) for k, v in lists.items() if k in fields]
        columns = [c for c in self.seen if c in fields]
        numbers = fields & {"n", "j"}

        def gen(row: Row) -> str:
            values = {k: v[_mix(s + row.i) % len(v)] for k, s, v in picks}
            for c in columns:
                values[c] = row.values[c]
            if numbers:
                values["n"], values["j"] = row.i + 1, row.j
            return template.format_map(values)

        return gen

    def _same(self, where, spec, seed, parent) -> Gen:
        name = spec["same"]
        if name not in self.seen:
            raise self.fail(f"{where}: same = {name!r} names no earlier column")
        return lambda row: row.values[name]

    def _parent(self, where, spec, seed, parent) -> Gen:
        name = spec["parent"]
        if parent is None or name not in dict(parent.columns):
            raise self.fail(f"{where}: parent = {name!r}, but the group has no parent with that column")
        return lambda row: row.parent.values[name]

    def _ref(self, where, spec, seed, parent) -> Gen:
        target = self.catalog.group(str(spec["ref"]), f"{self.path}: [{self.name}] {where}")
        column = spec.get("column", target.key)
        if target.rows is None:
            raise self.fail(f"{where}: ref {target.label} has no rows of its own (it is per another group)")
        if column not in dict(target.columns):
            raise self.fail(f"{where}: {target.label} has no column {column!r}")
        self.refers_to.append(target)
        distinct = bool(spec.get("distinct"))
        if distinct and parent is None:
            raise self.fail(f"{where}: distinct needs per = \"<group>\": it keeps rows under one parent apart")
        name = where.removeprefix("column ")
        # Pick among the rows that exist at the smallest scale holding this row (or its parent):
        # then a row never depends on the scale it is loaded at, and a larger scale only appends.
        top = parent
        while top is not None and top.parent is not None:
            top = top.parent
        unit_rows = top.rows if top is not None else self.spec["rows"]

        def gen(row: Row) -> Any:
            base = row
            while base.parent is not None:
                base = base.parent
            total = target.rows * (base.i // unit_rows + 1)
            if distinct:  # consecutive rows from a per-parent start: distinct while count <= target.rows
                k = (_mix(seed + row.parent.i) + row.j - 1) % total
            else:
                k = _mix(seed + row.i) % total
            row.picked[name] = (target, k)
            return target.make(k).values[column]

        return gen

    def _from(self, where, spec, seed, parent) -> Gen:
        source, column = spec["from"], spec.get("column")
        if source not in self.seen or not column:
            raise self.fail(f"{where}: from = \"<earlier ref column>\", column = \"<its column>\"")

        def gen(row: Row) -> Any:
            if source not in row.picked:
                raise self.fail(f"{where}: from = {source!r}, which is no ref column")
            target, k = row.picked[source]
            return target.make(k).values[column]

        return gen


def copy_text(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    text = str(value)
    # Most values need no escaping; checking is much cheaper than translating every one.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def rows(group: Group, scale: int, start: int = 0, parent_start: int = 0) -> Iterator[Row]:
    """The group's rows from row `start` on; for a child group, those of parents from `parent_start` on."""
    if group.parent is None:
        for i in range(start, group.planned(scale) or 0):
            yield group._row(i)  # streamed once: kept out of the cache that refs read from
        return
    i = start
    for p in rows(group.parent, scale, parent_start):
        for j in range(1, int(group.count(p)) + 1):  # type: ignore[misc]
            yield group.make(i, j, p)
            i += 1


def copy_lines(group: Group, rows_: Iterator[Row]) -> Iterator[str]:
    names = [name for name, _ in group.columns]
    for row in rows_:
        yield "\t".join(copy_text(row.values[n]) for n in names) + "\n"

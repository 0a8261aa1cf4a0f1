"""The column rules of `seeds/synthetic.toml` (listed in synthetic.py), each read into a generator:
a function from a chunk's row numbers, and the columns before it, to the column's values, with the
way those values are written as COPY text. Every value is picked by a platform-independent hash of
(service, group, column, row number), so row i is the same at every scale and on every machine.
"""

from __future__ import annotations

import re
import string
import sys
import zlib
from array import array
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInput
from .groups import Chunk, Gen, Group, Row, Text, uuid_prefix

if TYPE_CHECKING:
    from .synthetic import Catalog

_MASK = (1 << 64) - 1
_BIG_ENDIAN = sys.byteorder == "big"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _mix(x: int) -> int:
    """splitmix64's finaliser: a well-spread, platform-independent hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _mixes(seed: int, numbers: Any) -> list[int]:
    """[_mix(seed + i) for i in numbers], for a whole chunk at once.

    Each number gets a 128-bit lane of one big integer, so each step of _mix is a few operations on
    that integer instead of one Python operation per number: a lane's product with a 64-bit
    constant fits in its 128 bits, and `& low` keeps every lane to its low 64 (the `& _MASK`).
    """
    n = len(numbers)
    ones, low = _lanes(n)
    lanes = array("Q", bytes(16 * n))
    lanes[::2] = array("Q", numbers)
    if _BIG_ENDIAN:  # the lanes are little-endian, whatever the machine
        lanes.byteswap()
    x = (int.from_bytes(lanes, "little") + ((seed + 0x9E3779B97F4A7C15) & _MASK) * ones) & low
    x = ((x ^ (x >> 30) & low) * 0xBF58476D1CE4E5B9) & low
    x = ((x ^ (x >> 27) & low) * 0x94D049BB133111EB) & low
    x ^= (x >> 31) & low
    lanes = array("Q")
    lanes.frombytes(x.to_bytes(16 * n, "little"))
    if _BIG_ENDIAN:
        lanes.byteswap()
    return lanes[::2].tolist()


@lru_cache(maxsize=8)
def _lanes(n: int) -> tuple[int, int]:
    """1 in each of n 128-bit lanes, and 2**64 - 1 in each."""
    ones = int.from_bytes(array("Q", [1, 0]) * n, "little")
    return ones, ones * _MASK


def _seed(*parts: str) -> int:
    # crc32, not hash(): Python salts str hashes per process, and the data must not change.
    return zlib.crc32(".".join(parts).encode()) << 32


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


def _as_is(values: list) -> list:  # strings that cannot hold what COPY escapes: uuids, timestamps
    return values


def _numbers(values: list) -> list:  # ints (or floats): str() is their COPY text
    return list(map(str, values))


def _booleans(values: list) -> list:
    return ["t" if v else "f" for v in values]


def _any(values: list) -> list:
    return list(map(copy_text, values))


def _strings(values: list) -> list:
    # One scan of the whole column instead of four per value: escaping is rare.
    joined = "".join(values)
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        return list(map(copy_text, values))
    return values


def _text_of_list(values: list) -> Text:
    """How to write values drawn from this list."""
    if all(type(v) is str for v in values):
        return _as_is if _strings(values) is values else _any
    if all(type(v) is int for v in values):
        return _numbers
    if all(type(v) is bool for v in values):
        return _booleans
    return _any


def _strings_or_any(values: list) -> list:
    return _strings(values) if all(type(v) is str for v in values) else _any(values)


# A compiled column: its generator, how its values are written, the earlier columns it reads.
Compiled = tuple[Gen, Text, set[str]]


class Compiler:
    """Turns one group's TOML into generator functions, naming the file and column in every error."""

    def __init__(self, catalog: Catalog, service: str, path: Path, name: str, spec: Any) -> None:
        self.catalog, self.service, self.path, self.name, self.spec = catalog, service, path, name, spec
        self.refers_to: list[Group] = []
        self.seen: list[str] = []  # columns compiled so far: the ones a generator may use
        self.texts: dict[str, Text] = {}
        self.refs: dict[str, tuple[Group, set[str]]] = {}  # ref column -> its group, the columns read there
        self.parent_columns: set[str] = set()

    def fail(self, what: str) -> BadInput:
        return BadInput(f"{self.path}: [{self.name}] {what}")

    def group(self) -> Group:
        spec = self.spec
        if not isinstance(spec, dict) or not isinstance(spec.get("columns"), dict):
            raise self.fail("needs a [<group>.columns] table; see the top of dbtool/data/synthetic.py")
        unknown = set(spec) - {"table", "rows", "per", "count", "columns"}
        if unknown:
            raise self.fail(f"unknown keys {sorted(unknown)}; use table, rows or per and count, columns")
        parent, count, counts, rows = None, None, None, spec.get("rows")
        if "per" in spec:
            parent = self.catalog.groups.get(f"{self.service}.{spec['per']}")
            if parent is None or rows is not None or "count" not in spec:
                raise self.fail("per = \"<group>\" names an earlier group of this file, with count and without rows")
            count, counts = self._count(spec["count"], parent)
        elif not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise self.fail("rows = <positive integer> (rows per unit of scale), or per and count")
        columns, needs = [], {}
        for column, gen_spec in spec["columns"].items():
            gen, text, reads = self.compile(column, gen_spec, parent)
            columns.append((column, gen))
            self.texts[column], needs[column] = text, reads
            self.seen.append(column)
        keys = [c for c, s in spec["columns"].items() if s == "uuid"]
        if not keys:
            raise self.fail("has no column = \"uuid\"; add one, it identifies the group's rows")
        return Group(self.service, self.name, spec.get("table", self.name), rows, parent, count, columns,
                     keys[0], self.path, self.texts, needs, counts, self.parent_columns, self.refers_to)

    def _count(self, spec: Any, parent: Group) -> tuple[Callable[[Row], Any], Gen]:
        if isinstance(spec, str):
            if spec not in dict(parent.columns):
                raise self.fail(f"count = {spec!r}: {parent.name} has no such column")
            self.parent_columns.add(spec)
            return (lambda row: row.values[spec]), (lambda chunk: chunk.values[spec])
        gen = self.compile("count", spec, None, seed_name="count")[0]
        return (lambda row: gen(_chunk_of(row))[0]), gen

    def compile(self, column: str, spec: Any, parent: Group | None, seed_name: str | None = None) -> Compiled:
        seed = _seed(self.service, self.name, seed_name or column)
        where = f"column {column}"
        if spec == "uuid":
            prefix = uuid_prefix(self.service, self.name)
            return (lambda chunk: [f"{prefix}{i:012x}" for i in chunk.i]), _as_is, set()
        if not isinstance(spec, dict) or not spec:
            raise self.fail(f"{where}: {spec!r} is not a generator; see the top of dbtool/data/synthetic.py")
        kind = next(iter(spec))
        gen = {
            "value": self._value, "choice": self._choice, "cycle": self._cycle, "int": self._int,
            "time": self._time, "format": self._format, "same": self._same, "parent": self._parent,
            "ref": self._ref, "from": self._from,
        }.get(kind)
        if gen is None:
            raise self.fail(f"{where}: unknown generator {kind!r}; see the top of dbtool/data/synthetic.py")
        return gen(where, spec, seed, parent)

    def _known(self) -> set[str]:
        return set(self.seen) | {"n", "j"}

    def _value(self, where, spec, seed, parent) -> Compiled:
        value = spec["value"]
        text = copy_text(value)
        return (lambda chunk: [value] * len(chunk)), (lambda values: [text] * len(values)), set()

    def _list(self, where: str, values: Any, key: str) -> list:
        if not isinstance(values, list) or not values:
            raise self.fail(f"{where}: {key} needs a non-empty list")
        return values

    def _choice(self, where, spec, seed, parent) -> Compiled:
        values = self._list(where, spec["choice"], "choice")
        n = len(values)
        return (lambda chunk: [values[x % n] for x in _mixes(seed, chunk.i)]), _text_of_list(values), set()

    def _cycle(self, where, spec, seed, parent) -> Compiled:
        values = self._list(where, spec["cycle"], "cycle")
        n = len(values)

        def gen(chunk: Chunk) -> list:
            if chunk.j is None:  # by row number
                return [values[i % n] for i in chunk.i]
            return [values[((j or i + 1) - 1) % n] for i, j in zip(chunk.i, chunk.j)]

        return gen, _text_of_list(values), set()

    def _bound(self, where: str, bound: Any) -> Callable[[Chunk], Any]:
        if isinstance(bound, int) and not isinstance(bound, bool):
            return lambda chunk: repeat(bound)
        if isinstance(bound, str) and bound in self.seen:
            return lambda chunk: chunk.values[bound]
        raise self.fail(f"{where}: int bound {bound!r} is neither an integer nor an earlier column")

    def _int(self, where, spec, seed, parent) -> Compiled:
        bounds = spec["int"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise self.fail(f"{where}: int = [low, high]")
        low, high = self._bound(where, bounds[0]), self._bound(where, bounds[1])
        constant = not any(isinstance(b, str) for b in bounds)

        def gen(chunk: Chunk) -> list:
            if constant:
                lo, span = bounds[0], bounds[1] - bounds[0] + 1
                return [lo + x % span for x in _mixes(seed, chunk.i)]
            return [lo + x % (hi - lo + 1) for x, lo, hi in zip(_mixes(seed, chunk.i), low(chunk), high(chunk))]

        return gen, _numbers, {b for b in bounds if isinstance(b, str)}

    def _time(self, where, spec, seed, parent) -> Compiled:
        try:
            start, end = (datetime.fromisoformat(str(t)).replace(tzinfo=timezone.utc) for t in spec["time"])
        except (ValueError, TypeError):
            raise self.fail(f"{where}: time = [\"YYYY-MM-DD\", \"YYYY-MM-DD\"]") from None
        span = max(int((end - start).total_seconds()), 1)
        start = start.replace(tzinfo=None)  # str() of a naive datetime is the COPY text we want
        if start.microsecond:
            return (lambda chunk: [str(start + timedelta(seconds=x % span)) for x in _mixes(seed, chunk.i)]), \
                _as_is, set()
        # str(start + timedelta(...)) is "YYYY-MM-DD HH:MM:SS": the day's text is looked up, the time
        # of day read from two tables. Five times faster than making the datetime.
        day0, second0 = start.replace(hour=0, minute=0, second=0), start.hour * 3600 + start.minute * 60 + start.second
        days: dict[int, str] = {}

        def gen(chunk: Chunk) -> list:
            out = []
            for x in _mixes(seed, chunk.i):
                day, second = divmod(second0 + x % span, 86400)
                text = days.get(day)
                if text is None:
                    text = days[day] = f"{(day0 + timedelta(days=day)).date()} "
                out.append(text + _HOURS[second // 3600] + _MINUTES_SECONDS[second % 3600])
            return out

        return gen, _as_is, set()

    def _format(self, where, spec, seed, parent) -> Compiled:
        template = str(spec["format"])
        lists = {k: self._list(where, v, k) for k, v in spec.items() if k != "format"}
        fields = set(re.findall(r"{(\w+)}", template))
        missing = fields - set(lists) - self._known()
        if missing:
            raise self.fail(f"{where}: format names {sorted(missing)}, which are no earlier column nor list")
        # Only what the template uses is computed: this runs once per row and column.
        picks = [(k, seed + zlib.crc32(k.encode()), v, len(v)) for k, v in lists.items() if k in fields]
        columns = [c for c in self.seen if c in fields]
        numbers = fields & {"n", "j"}
        reads = set(columns)
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError:
            parts = None
        plain = parts is not None and all(
            name is None or (name in fields and not spec_ and conversion is None) for _, name, spec_, conversion in parts)

        def sources(chunk: Chunk) -> dict[str, Any]:
            # A field is, by precedence: the row's numbers, an earlier column, a pick from a list.
            found: dict[str, Any] = {k: [v[x % n] for x in _mixes(s, chunk.i)] for k, s, v, n in picks}
            for c in columns:
                found[c] = chunk.values[c]
            if numbers:
                found["n"] = [i + 1 for i in chunk.i]
                found["j"] = chunk.j if chunk.j is not None else repeat(0)
            return found

        if not plain:  # braces with format specs, conversions or odd names: str.format decides
            def by_row(chunk: Chunk) -> list:
                found = sources(chunk)
                names = list(found)
                return [template.format_map(dict(zip(names, values))) for values in zip(*found.values())] \
                    if names else [template.format_map({}) for _ in chunk.i]

            return by_row, _strings_or_any, reads
        # "{a} {b}" -> "%s %s": str(value) is what format() writes for an empty spec, and % is faster.
        pattern = "".join(literal.replace("%", "%%") + ("%s" if name is not None else "")
                          for literal, name, _, _ in parts)
        order = [name for _, name, _, _ in parts if name is not None]

        def gen(chunk: Chunk) -> list:
            if not order:
                return [pattern % ()] * len(chunk)
            found = sources(chunk)
            return [pattern % values for values in zip(*(found[name] for name in order))]

        return gen, _strings, reads

    def _same(self, where, spec, seed, parent) -> Compiled:
        name = spec["same"]
        if name not in self.seen:
            raise self.fail(f"{where}: same = {name!r} names no earlier column")
        return (lambda chunk: chunk.values[name]), self.texts[name], {name}

    def _parent(self, where, spec, seed, parent) -> Compiled:
        name = spec["parent"]
        if parent is None or name not in dict(parent.columns):
            raise self.fail(f"{where}: parent = {name!r}, but the group has no parent with that column")
        self.parent_columns.add(name)

        def gen(chunk: Chunk) -> list:
            values = chunk.parent.values[name]
            return [values[u] for u in chunk.up]

        return gen, parent.texts[name], set()

    def _ref(self, where, spec, seed, parent) -> Compiled:
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
        wanted = {column}  # and the columns that `from` columns read from the same rows
        self.refs[name] = (target, wanted)
        # Pick among the rows that exist at the smallest scale holding this row (or its parent):
        # then a row never depends on the scale it is loaded at, and a larger scale only appends.
        top = parent
        while top is not None and top.parent is not None:
            top = top.parent
        unit_rows = top.rows if top is not None else self.spec["rows"]
        rows = target.rows

        def gen(chunk: Chunk) -> list:
            if distinct:  # consecutive rows from a per-parent start: distinct while count <= target.rows
                starts = _mixes(seed, chunk.parent.i)  # once per parent, not per row
                picks = [(starts[u] + j - 1) % (rows * (b // unit_rows + 1))
                         for u, j, b in zip(chunk.up, chunk.j, chunk.base)]
            else:
                picks = [x % (rows * (b // unit_rows + 1)) for x, b in zip(_mixes(seed, chunk.i), chunk.base)]
            picked = chunk.picked[name] = target.pick(picks, frozenset(wanted))
            return picked.values[column]

        return gen, target.texts[column], set()

    def _from(self, where, spec, seed, parent) -> Compiled:
        source, column = spec["from"], spec.get("column")
        if source not in self.seen or not column:
            raise self.fail(f"{where}: from = \"<earlier ref column>\", column = \"<its column>\"")
        if source not in self.refs:
            raise self.fail(f"{where}: from = {source!r}, which is no ref column")
        target, wanted = self.refs[source]
        if column not in dict(target.columns):
            raise self.fail(f"{where}: {target.label} has no column {column!r}")
        wanted.add(column)
        return (lambda chunk: chunk.picked[source].values[column]), target.texts[column], {source}


_HOURS = [f"{h:02d}:" for h in range(24)]
_MINUTES_SECONDS = [f"{s // 60:02d}:{s % 60:02d}" for s in range(3600)]


def _chunk_of(row: Row) -> Chunk:
    """One row as a chunk, for a generator asked about a single row."""
    top = row
    while top.parent is not None:
        top = top.parent
    parent = _chunk_of(row.parent) if row.parent is not None else None
    chunk = Chunk([row.i], [row.j] if parent is not None else None, [0] if parent is not None else None,
                  parent, [top.i])
    chunk.values = {name: [value] for name, value in row.values.items()}
    return chunk

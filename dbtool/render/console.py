"""The two streams (stdout, stderr), one-line errors, JSON output, and tables that fit the terminal.

Piped output (not a terminal) is plain text: no colour and no box characters, so it greps and diffs.
Every table goes through `fit_table`, the one place that decides column widths. rich loads only when
something needs it (a terminal, a table): a piped `migrate` prints its lines without it.
"""

from __future__ import annotations

import json as jsonlib
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Sequence, Union

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text


_consoles: dict[bool, object] = {}


def _console(stderr: bool = False):
    """The rich Console of stdout or stderr, made on first use (importing rich costs ~30 ms)."""
    if stderr not in _consoles:
        from rich.console import Console

        console = Console(stderr=stderr, highlight=False, soft_wrap=True)
        console.on_broken_pipe = _broken_pipe  # rich would exit 1, which reads as findings
        _consoles[stderr] = console
    return _consoles[stderr]


def _broken_pipe() -> None:
    raise BrokenPipeError(32, "Broken pipe")  # for the CLI's boundary: exit 141, as `print` gives


def __getattr__(name: str):
    # `from .console import out` gives the real Console, made only by the modules that use it.
    if name in ("out", "err"):
        return _console(name == "err")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


ELLIPSIS = "…"
Piece = Union[str, "tuple[str, str]"]  # text, or (text, rich style)


def _plain(stream) -> bool:
    # rich's own rule for a terminal, minus the cases (Jupyter, FORCE_COLOR, TTY_COMPATIBLE) where it
    # styles anyway; those take the rich path below.
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") or os.environ.get("TTY_INTERACTIVE"):
        return False
    isatty = getattr(stream, "isatty", None)
    return not (isatty and isatty())


def say(*pieces: Piece) -> None:
    """One line of stdout from pieces, each plain text or (text, style); styled only on a terminal.
    Pieces are never markup: a bracket in a name prints as itself."""
    if _plain(sys.stdout):
        print("".join(p if isinstance(p, str) else p[0] for p in pieces), flush=True)
        return
    from rich.text import Text

    _console().print(Text.assemble(*pieces))


def error(message: str) -> None:
    if _plain(sys.stderr):
        print(f"error: {message}", file=sys.stderr, flush=True)
    else:
        _console(True).print(f"error: {message}", markup=False)


def line(text: str) -> None:
    say(text)


def width() -> int:
    """Columns to fit: COLUMNS when set (read at each call, not at import), else the terminal's, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return _console().size.width if _console().is_terminal else 80


def wrapped(text: str, indent: str = "  ", hanging: str = "    ") -> None:
    """A sentence under a table, wrapped at the width with a hanging indent (never cut)."""
    for piece in textwrap.wrap(text, width(), initial_indent=indent, subsequent_indent=hanging,
                               break_long_words=False, break_on_hyphens=False) or [indent]:
        line(piece)


def middle(text: str, room: int) -> str:
    """`text` cut in the middle to `room` characters, so both the start and the end of a name stay."""
    if len(text) <= room:
        return text
    if room <= 1:
        return text[:room]
    head = room // 2
    return text[:head] + ELLIPSIS + text[len(text) - (room - 1 - head):]


def fit_table(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[str | Text]],
              shrink: Sequence[tuple[str, int]] = (), title: str | None = None) -> None:
    """Print a table no wider than `width()` in which no cell wraps.

    `columns` are (header, justify). `shrink` lists (header, floor) in the order columns give up
    room when the table would not fit: that column's cells are ellipsised in the middle down to the
    floor, then the next one's. A table that fits is never cut, so a wider terminal shows more.
    """
    limit = width()
    plain = not _console().is_terminal
    widths = [max([len(h)] + [len(_text(r[i])) for r in rows]) for i, (h, _) in enumerate(columns)]
    overhead = _overhead(len(columns), plain)
    index = {h: i for i, (h, _) in enumerate(columns)}
    for header, floor in shrink:
        i = index[header]
        excess = sum(widths) + overhead - limit
        if excess <= 0:
            break
        widths[i] = max(widths[i] - excess, min(widths[i], max(floor, len(header))))
    if title is not None:
        wrapped(title, indent="", hanging="  ")
    table = _table(plain)
    for (header, justify), size in zip(columns, widths):
        table.add_column(header, justify=justify, no_wrap=True, overflow="ellipsis",  # type: ignore[arg-type]
                         min_width=size, max_width=size)
    for row in rows:
        table.add_row(*[_cut(cell, size) for cell, size in zip(row, widths)])
    _console().print(table, width=limit)


def _table(plain: bool) -> Table:
    from rich import box
    from rich.table import Table

    # Piped: no box characters at all. A terminal: a rule under the header, no vertical borders,
    # so the columns keep their room.
    if plain:
        return Table(box=None, pad_edge=False, header_style="")
    return Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")


def _overhead(count: int, plain: bool) -> int:
    """Characters a table adds to its cells' widths, measured once by rendering one."""
    probe = _table(plain)
    for _ in range(count):
        probe.add_column("", min_width=1, max_width=1, no_wrap=True)
    probe.add_row(*["x"] * count)
    from rich.console import Console

    console = Console(width=1000, force_terminal=False, color_system=None)
    with console.capture() as captured:
        console.print(probe)
    return max(len(text) for text in captured.get().splitlines()) - count


def _text(cell: str | Text) -> str:
    return cell if isinstance(cell, str) else cell.plain


def _cut(cell: str | Text, size: int) -> Text:
    from rich.text import Text

    # Every cell is Text: a bracket in a name is never rich markup.
    if isinstance(cell, Text):
        if len(cell.plain) <= size:
            return cell
        return Text(middle(cell.plain, size), style=cell.style)
    return Text(middle(cell, size))


def emit_json(data: object) -> None:
    # print() rather than rich: nothing but the JSON document may reach stdout.
    print(jsonlib.dumps(data, indent=2, default=str))

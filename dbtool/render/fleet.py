"""What the --fleet commands print: a live table on a terminal, plain lines otherwise, JSON on request.

Tables stay within 80 columns: the database column folds, the others are short.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from rich.console import Console
from rich.table import Table

from .console import emit_json, line, out

if TYPE_CHECKING:
    from ..fleet.waves import Outcome

WIDTH = 80
_STYLE = {"done": "green", "running": "yellow", "failed": "red", "skipped": "dim", "pending": "dim"}
_STATE = {"skipped": "not started"}


def _v(version: int | None) -> str:
    return "-" if version is None else f"{version:03d}"


def _table(outcomes: list["Outcome"], verb: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("wave", max_width=10, overflow="fold")
    table.add_column("database", overflow="fold", ratio=1)
    table.add_column("state", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column(verb, justify="right", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    for o in outcomes:
        state = f"[{_STYLE[o.state]}]{_STATE.get(o.state, o.state)}[/]"
        moved = f"{_v(o.before)}→{_v(o.after)}" if o.before is not None else "-"
        seconds = f"{o.seconds:.1f}" if o.state in ("done", "failed") else ""
        table.add_row(o.target.wave, o.target.label, state, moved, str(len(o.applied)), seconds)
    return table


@contextmanager
def progress(verb: str, quiet: bool) -> Iterator[Callable[["Outcome"], None]]:
    """Yield the on_change callback of a fleet run: a live table redrawn on each change when stdout
    is a terminal, one line per finished database otherwise, nothing with --json."""
    if quiet:
        yield lambda outcome: None
        return
    if not out.is_terminal:
        def say(o: "Outcome") -> None:
            if o.state in ("done", "failed"):
                what = f"{len(o.applied)} {verb}" if o.state == "done" else o.error
                line(f"{o.state:<6} {o.target.wave}: {o.target.label}: {_v(o.before)} -> {_v(o.after)};"
                     f" {what} ({o.seconds:.2f} s)")

        yield say
        return
    from rich.live import Live

    rows: dict[int, "Outcome"] = {}  # every outcome is announced once as pending, in target order
    console = Console(file=out.file, force_terminal=True, width=min(out.width, WIDTH), highlight=False)
    with Live(_table([], verb), console=console, auto_refresh=False) as live:
        def redraw(o: "Outcome") -> None:
            rows[id(o)] = o
            live.update(_table(list(rows.values()), verb), refresh=True)

        yield redraw


def _print(table: Table) -> None:
    Console(file=out.file, force_terminal=out.is_terminal, width=min(out.width, WIDTH) if out.is_terminal
            else WIDTH, highlight=False).print(table)


def summary_line(outcomes: list["Outcome"], verb: str) -> str:
    counts = {s: sum(o.state == s for o in outcomes) for s in ("done", "failed", "skipped")}
    migrations = sum(len(o.applied) for o in outcomes)
    return (f"{len(outcomes)} databases: {counts['done']} done, {counts['failed']} failed,"
            f" {counts['skipped']} not started; {migrations} migrations {verb}")


def data(outcomes: list["Outcome"]) -> list[dict]:
    return [{"wave": o.target.wave, "target": o.target.label, "state": o.state, "version_before": o.before,
             "version_after": o.after, "applied": o.applied, "seconds": round(o.seconds, 3), "error": o.error}
            for o in outcomes]


def summary(outcomes: list["Outcome"], verb: str, as_json: bool) -> None:
    if as_json:
        emit_json(data(outcomes))
        return
    if not out.is_terminal:  # the live table was not shown: show where each database ended
        _print(_table(outcomes, verb))
    line(summary_line(outcomes, verb))


def _matrix_state(o: "Outcome", tree: list) -> tuple[str, int]:
    """(state, pending count) of one database in the version matrix."""
    if o.state == "failed" or o.detail is None:
        return "unreachable", 0
    state = o.detail
    if state.edited or state.missing:
        return "drifted", len(state.pending)
    if state.pending:
        return "behind", len(state.pending)
    return "up to date", 0


def matrix_data(tree: list, outcomes: list["Outcome"]) -> list[dict]:
    rows = []
    for o in outcomes:
        state, pending = _matrix_state(o, tree)
        detail = o.detail
        rows.append({"wave": o.target.wave, "target": o.target.label, "state": state, "version": o.after,
                     "pending": [m.id for m in detail.pending] if detail else [],
                     "edited": [m.id for m, _ in detail.edited] if detail else [],
                     "missing": detail.missing if detail else [], "error": o.error})
    return rows


def matrix(tree: list, outcomes: list["Outcome"], as_json: bool) -> None:
    """Which database is at which version: one row each, then the count at each version."""
    if as_json:
        emit_json(matrix_data(tree, outcomes))
        return
    newest = tree[-1].version if tree else 0
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("wave", max_width=10, overflow="fold")
    table.add_column("database", overflow="fold", ratio=1)
    table.add_column("version", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for o in outcomes:
        state, pending = _matrix_state(o, tree)
        note = f" ({pending} pending)" if pending else ""
        style = {"up to date": "green", "behind": "yellow"}.get(state, "red")
        table.add_row(o.target.wave, o.target.label, _v(o.after), f"[{style}]{state}{note}[/]")
    _print(table)
    for o in outcomes:
        if o.error:
            line(f"{o.target.label}: {o.error}")
    at = {}
    for o in outcomes:
        if o.after is not None:
            at[o.after] = at.get(o.after, 0) + 1
    versions = ", ".join(f"{n} at {_v(v)}" for v, n in sorted(at.items(), reverse=True))
    line(f"{len(outcomes)} databases, newest migration {_v(newest)}: {versions or 'none answered'}")


def audits(outcomes: list["Outcome"], as_json: bool) -> None:
    """Per database the findings by level; the findings themselves with --json."""
    from ..inspect.audit import ServiceAudit
    from .audit import audit, audit_data

    answered = [ServiceAudit(o.target.label, o.target.label, o.detail) for o in outcomes if o.detail]
    if as_json:
        by_label = {r["database"]: r for r in audit_data(answered)}
        emit_json([{"wave": o.target.wave, "target": o.target.label, "error": o.error,
                    **({"report": by_label[o.target.label]} if o.detail else {})} for o in outcomes])
        return
    audit(answered, False)
    for o in outcomes:
        if o.error:
            line(f"{o.target.label}: {o.error}")


def checks(outcomes: list["Outcome"], as_json: bool) -> None:
    from .schemafile import schema_check, schema_check_data

    answered = [o for o in outcomes if o.detail]
    if as_json:
        by_target = dict(zip([o.target.label for o in answered], schema_check_data([o.detail for o in answered])))
        emit_json([{"wave": o.target.wave, "target": o.target.label, "error": o.error,
                    **({"check": by_target[o.target.label]} if o.detail else {})} for o in outcomes])
        return
    for o in answered:
        line(f"{o.target.wave}: {o.target.label}")
        schema_check([o.detail], False)
    for o in outcomes:
        if o.error:
            line(f"{o.target.label}: {o.error}")

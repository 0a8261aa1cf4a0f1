"""What seed and check-references print.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.text import Text

from ..data.seed import SeedEvents, SeedReport, TableLoad
from .console import emit_json, fit_table, line, out


def references_data(reports: list) -> list[dict]:
    return [
        {
            "service": r.reference.service,
            "column": f"{r.reference.table}.{r.reference.column}",
            "points_at": f"{r.reference.target_service}.{r.reference.target_table}.{r.reference.target_column}",
            "rows": r.rows,
            "dangling": {"rows": r.dangling.rows, "examples": r.dangling.examples},
            "stale_copies": {col: {"rows": m.rows, "examples": m.examples} for col, m in r.stale.items()},
        }
        for r in reports
    ]


def references(reports: list, as_json: bool) -> None:
    if as_json:
        emit_json(references_data(reports))
        return
    rows = []
    for r in reports:
        ref = r.reference
        stale = sum(m.rows for m in r.stale.values())
        rows.append((ref.service, f"{ref.table}.{ref.column}",
                     f"{ref.target_service} {ref.target_table}.{ref.target_column}", str(r.rows),
                     Text(str(r.dangling.rows), "red") if r.dangling.rows else "0",
                     Text(str(stale), "red") if stale else ("0" if r.stale else "-")))
    fit_table([("service", "left"), ("column", "left"), ("points at", "left"), ("rows", "right"),
               ("dangling", "right"), ("stale copies", "right")], rows, shrink=(("points at", 20), ("column", 16)),
              title="soft references")
    for r in reports:
        ref = r.reference
        if r.dangling.rows:
            line(f"  {ref.service} {ref.table}.{ref.column}: {r.dangling.rows} row(s) point at no "
                 f"{ref.target_service} {ref.target_table}.{ref.target_column}, e.g. {', '.join(r.dangling.examples)}")
        for col, m in r.stale.items():
            if m.rows:
                line(f"  {ref.service} {ref.table}.{col}: {m.rows} row(s) differ from the row they point at,"
                     f" e.g. {ref.column} {', '.join(m.examples)}")
    bad = sum(1 for r in reports if not r.clean)
    line(f"{len(reports)} soft reference(s) checked, {bad} with findings" if reports
         else "no soft references declared (schemas/<service>/references.toml)")


def _there(load: TableLoad) -> str:
    """What a bar's note adds for the rows an earlier seed had already written."""
    return f" ({load.present:,} there)" if load.present else ""


@contextmanager
def seed_progress(as_json: bool) -> Iterator[SeedEvents]:
    """A progress bar per table being loaded; a line per seed file. Nothing at all for --json."""
    if as_json:
        yield SeedEvents()
        return
    from rich.progress import BarColumn, Progress, TextColumn

    # Label, bar, rows so far and a note: with the longest label the note keeps 28 of 80 columns.
    progress = Progress(TextColumn("  {task.description}"), BarColumn(bar_width=10),
                        TextColumn("{task.completed:>9,.0f}"), TextColumn("{task.fields[note]}"), console=out)
    tasks: dict[int, object] = {}

    def target(service: str, where: str) -> None:
        progress.console.print(f"[bold]{service}[/bold]: {where}")

    def start(load: TableLoad, total: int | None) -> None:
        if not tasks:
            progress.start()  # only once there is a bar to show: seed files print plain lines
        label = load.table if load.group == load.table else f"{load.table} ({load.group})"
        tasks[id(load)] = progress.add_task(f"{load.service} {label}", total=total, note="")

    def advance(load: TableLoad, rows: int) -> None:
        progress.update(tasks[id(load)], advance=rows)  # type: ignore[arg-type]

    def done(load: TableLoad) -> None:
        task = tasks.get(id(load))
        if task is None:  # a seed file
            what = f"{load.rows} new row(s) in {load.table}" if load.rows else "nothing new, already seeded"
            progress.console.print(f"  {load.group}: {what}", markup=False)
            return
        note = f"copied, {load.copy_rows_per_second:,.0f} rows/s" if load.rows else "nothing new"
        progress.update(task, total=load.rows, completed=load.rows, note=note + _there(load))  # type: ignore[arg-type]

    def finishing(load: TableLoad, step: str) -> None:
        progress.update(tasks[id(load)], note=f"{step}…")  # type: ignore[arg-type]

    def ready(load: TableLoad) -> None:  # the rate a reader waits for: rows, indexes, keys, statistics
        progress.update(tasks[id(load)], note=f"ready, {load.rows_per_second:,.0f} rows/s{_there(load)}")  # type: ignore[arg-type]

    try:
        yield SeedEvents(target=target, start=start, advance=advance, done=done, finishing=finishing, ready=ready)
    finally:
        if tasks:
            progress.stop()


def seed_data(report: SeedReport) -> dict:
    return {
        "scale": report.scale,
        "services": report.services,
        "rows": report.rows,
        "seconds": round(report.seconds, 3),
        "rows_per_second": round(report.rows_per_second, 1),
        "tables": [
            {"service": x.service, "table": x.table, "source": x.group, "rows": x.rows, "already_there": x.present,
             "seconds": round(x.seconds, 3), "rows_per_second": round(x.rows_per_second, 1),
             "copy_seconds": round(x.copy_seconds, 3)}
            for x in report.loads
        ],
    }


def seed_summary(report: SeedReport, as_json: bool) -> None:
    if as_json:
        emit_json(seed_data(report))
        return
    what = f"scale {report.scale}" if report.scale else "seed files"
    line(f"seeded {report.rows:,} rows ({what}) into {len(report.services)} service(s) in {report.seconds:.2f} s:"
         f" {report.rows_per_second:,.0f} rows/s")

"""What `dbtool rehearse` prints: the set-up steps, one row per migration, the locks and rewrites."""

from __future__ import annotations

from dataclasses import asdict

from rich.markup import escape

from ..rehearse.run import Rehearsal, Rehearsed, RehearseEvents
from .console import emit_json, line, out

_ROW = "{:<32} {:>8} {:>8} {:>7} {:>6} {:>5} {:>6}"  # 78 columns: fits a terminal of 80


def progress(quiet: bool = False) -> RehearseEvents:
    if quiet:
        return RehearseEvents()

    def target(service: str, where: str) -> None:
        out.print(f"[bold]{service}[/bold]: scratch database {escape(where)}")

    def step(text: str) -> None:
        out.print(f"  [dim]{escape(text)}[/dim]")

    def retry(text: str) -> None:
        out.print(f"  [yellow]{escape(text)}[/yellow]")

    def migration(r: Rehearsed) -> None:
        verdict = "[green]ok[/green]" if r.ok else "[red]TOO LONG[/red]" if not r.error else "[red]FAILED[/red]"
        out.print(f"  {verdict} {escape(r.migration)}  [dim]{r.duration_ms:.0f} ms, worst write"
                  f" {r.max_stall_ms:.0f} ms[/dim]")

    return RehearseEvents(target=target, step=step, migration=migration, retry=retry)


def _size(change: int) -> str:
    sign = "-" if change < 0 else "+"
    change = abs(change)
    for unit in ("B", "kB", "MB", "GB"):
        if change < 1024 or unit == "GB":
            return f"{sign}{change:.0f}{unit}" if unit == "B" else f"{sign}{change:.1f}{unit}"
        change /= 1024  # type: ignore[assignment]
    return ""


def data(report: Rehearsal) -> dict:
    return {
        "service": report.service, "scratch": report.scratch, "from": report.start, "scale": report.scale,
        "writers": report.writers, "max_stall_ms": report.max_stall_ms, "tables": report.tables,
        "ok": not report.broken,
        "migrations": [{**asdict(m), "duration_ms": round(m.duration_ms, 1), "max_stall_ms": round(m.max_stall_ms, 1),
                        "p99_ms": round(m.p99_ms, 1), "reader_max_ms": round(m.reader_max_ms, 1)}
                       for m in report.migrations],
    }


def summary(report: Rehearsal, as_json: bool = False) -> None:
    if as_json:
        emit_json(data(report))
        return
    line("")
    line(_ROW.format("migration", "ms", "stall ms", "p99 ms", "writes", "rewr", "size"))
    for m in report.migrations:
        name = m.migration if len(m.migration) <= 32 else m.migration[:31] + "~"
        line(_ROW.format(name, f"{m.duration_ms:.0f}", f"{m.max_stall_ms:.0f}", f"{m.p99_ms:.1f}", m.writes,
                         "yes" if m.rewrote else "no", _size(m.size_change)))
    for m in report.migrations:
        line(f"{m.migration}:")
        line(f"  locks: {', '.join(m.locks) or 'none seen'}")
        if m.rewrote:
            line(f"  rewrote: {', '.join(m.rewrote)}")
        if m.error:
            line(f"  FAILED: {m.error}")
        elif not m.ok:
            line(f"  TOO LONG: a write waited {m.max_stall_ms:.0f} ms, over --max-stall {report.max_stall_ms:g}")
    broken = sum(not m.ok for m in report.migrations)
    line(f"rehearsed {len(report.migrations)} migration(s) of {report.service} at --scale {report.scale} with"
         f" {report.writers} writer(s): " + (f"{broken} over --max-stall {report.max_stall_ms:g} ms or failed"
                                            if broken else f"every write within {report.max_stall_ms:g} ms"))

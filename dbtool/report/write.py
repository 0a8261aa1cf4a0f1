"""`dbtool report`: check the output path, collect, build the page, write it whole or not at all."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings


def write_report(settings: Settings, services: list[str] | None, output: Path, drift: bool = False,
                 scratch_dsn: str | None = None) -> None:
    from ..render.console import line
    from ..render.outfile import check_output, write_atomically
    from .collect import collect
    from .page import report_page

    check_output(output, "--output", "report.html")  # before anything runs
    data = collect(settings, services, drift=drift, scratch_dsn=scratch_dsn)
    write_atomically(output, report_page(data))
    plans = sum(len(s["queries"]) for s in data["explain"])
    line(f"wrote {output}: {len(data['services'])} service(s), {plans} plan(s)")

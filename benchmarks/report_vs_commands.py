"""`dbtool report` against the four commands whose results it shows, run one after the other with
--json (`status`, `explain`, `audit-indexes`, `lint`), on the same migrated and seeded databases.

The ratio says what building and writing the page (plans drawn, everything escaped) costs on top of
computing the results once. Usage: python benchmarks/report_vs_commands.py [RUNS] [SCALE]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import SERVICES, dbtool_cmd, fresh_db, report, run, scratch_server, timed


def main(runs: int, scale: int) -> None:
    ours, reference = [], []
    out = Path(tempfile.mkdtemp(prefix="dbtool-report-")) / "report.html"
    with scratch_server() as admin:
        env = {f"{s.upper()}_DATABASE_URL": fresh_db(admin, s) for s in SERVICES}
        run(dbtool_cmd("migrate"), env)
        run(dbtool_cmd("seed", "--scale", str(scale)), env)
        commands = [dbtool_cmd(c, "--json") for c in ("status", "explain", "audit-indexes")]
        commands.append([*dbtool_cmd("lint", "--json")])

        def separately() -> None:
            for cmd in commands:
                try:
                    run(cmd, env)
                except Exception:  # lint and explain exit 1 on findings; the time is what counts
                    pass

        run(dbtool_cmd("report", "--output", str(out)), env)  # warm up
        separately()
        for _ in range(runs):
            ours.append(timed(lambda: run(dbtool_cmd("report", "--output", str(out)), env)))
            reference.append(timed(separately))
    size = out.stat().st_size
    report(f"dbtool report of {len(SERVICES)} services on --scale {scale} ({size / 1024:.0f} kB of HTML)",
           ours, reference, "4 commands")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, int(sys.argv[2]) if len(sys.argv) > 2 else 1)

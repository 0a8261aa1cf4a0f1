"""Start-up: `dbtool --help` against `yoyo --help`, both console scripts of this environment.

What every command pays before it does anything. Runs interleaved, so both see the same machine.
Usage: python benchmarks/help_vs_yoyo.py [RUNS]
"""

from __future__ import annotations

import sys
from pathlib import Path

from _common import report, run, timed


def main(runs: int) -> None:
    scripts = Path(sys.executable).parent
    dbtool, yoyo = [str(scripts / "dbtool"), "--help"], [str(scripts / "yoyo"), "--help"]
    run(dbtool), run(yoyo)  # warm the page cache for both
    ours, reference = [], []
    for _ in range(runs):
        ours.append(timed(lambda: run(dbtool)))
        reference.append(timed(lambda: run(yoyo)))
    report("dbtool --help against yoyo --help", ours, reference, "yoyo")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21)

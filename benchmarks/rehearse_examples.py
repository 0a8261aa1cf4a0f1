"""dbtool rehearse of dangerous migrations on a 1M-row table against their safe forms (the two
services under benchmarks/rehearse_examples/): a plain index build against CONCURRENTLY, SET NOT NULL
against CHECK ... NOT VALID + VALIDATE, a volatile default against a column added without one.
Prints each migration's reported figures; the README's table comes from this.

    python benchmarks/rehearse_examples.py [--writers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_server  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent / "rehearse_examples"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    print("| service | migration | ms | worst write ms | p99 ms | writes | strongest lock | rewrote |")
    print("|---|---|---|---|---|---|---|---|")
    with scratch_server() as admin:
        for service in ("dangerous", "safe"):
            env = {**os.environ, f"{service.upper()}_DATABASE_URL": make_conninfo(admin, dbname=f"{service}_never_made")}
            done = subprocess.run([sys.executable, "-m", "dbtool", "rehearse", service, "--schemas-dir", str(EXAMPLES),
                                   "--from", "2", "--scale", "1", "--writers", str(args.writers), "--json"],
                                  env=env, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                sys.exit(f"rehearse {service} failed ({done.returncode}): {done.stderr}")
            for m in json.loads(done.stdout)["migrations"]:
                lock = m["locks"][0] if m["locks"] else "none seen"
                print(f"| {service} | `{m['migration'][4:]}` | {m['duration_ms']:,.0f} | {m['max_stall_ms']:,.0f} |"
                      f" {m['p99_ms']:,.1f} | {m['writes']:,} | {lock} | {', '.join(m['rewrote']) or 'no'} |")


if __name__ == "__main__":
    main()

"""`dbtool migrate` of every service into fresh databases against `psql -f` of the same up files.

psql runs each file with -1 (one transaction), except the files marked `-- transactional: false`.
Both run as commands, in turn, in one run on one scratch embedded server; prints medians and the
ratio. A third command only imports what any migrate on this stack must (psycopg, typer, yoyo's
backend): the floor of the ratio on this machine, measured in the same run. Usage: python benchmarks/migrate_vs_psql.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys

from _common import (
    SCHEMAS,
    SERVICES,
    dbtool_cmd,
    fresh_db,
    psql_file,
    report,
    run,
    scratch_server,
    timed,
)

from dbtool.migrate.tree import load_tree

FLOOR = "import psycopg, typer, yoyo.backends.core.postgresql"


def main(runs: int) -> None:
    trees = {s: load_tree(SCHEMAS / s) for s in SERVICES}
    ours, reference, floor = [], [], []
    with scratch_server() as admin:
        for _ in range(runs):
            env = {f"{s.upper()}_DATABASE_URL": fresh_db(admin, f"b_{s}") for s in SERVICES}
            ours.append(timed(lambda: run(dbtool_cmd("migrate"), env)))
            targets = {s: fresh_db(admin, f"p_{s}") for s in SERVICES}

            def psql_all() -> None:
                for service, tree in trees.items():
                    for m in tree:
                        run(psql_file(m.up, targets[service], m.transactional("up")))

            reference.append(timed(psql_all))
            floor.append(timed(lambda: run([sys.executable, "-c", FLOOR])))
    count = sum(len(t) for t in trees.values())
    report(f"migrate {count} migrations of {len(SERVICES)} services into fresh databases",
           ours, reference, "psql -f")
    print(f"  the floor: '{FLOOR}' alone takes {statistics.median(floor) * 1000:.1f} ms,"
          f" {statistics.median(floor) / statistics.median(reference):.2f} of psql's whole run")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

"""What least privilege costs: a no-op `dbtool roles` against a no-op `dbtool status` (both commands,
every service up to date), and, in one process, a no-op migrate of course run as the owner (the dev
hook: roles synced before and after, SET ROLE) against the same no-op migrate without it.
Usage: python benchmarks/roles_overhead.py [RUNS]
"""

from __future__ import annotations

import statistics
import sys

import psycopg
from _common import (
    SCHEMAS,
    SERVICES,
    dbtool_cmd,
    fresh_db,
    report,
    run,
    scratch_server,
    timed,
)

from dbtool.config import Target, make_settings
from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.tree import load_tree
from dbtool.roles.commands import as_owner


def main(runs: int) -> None:
    with scratch_server() as admin:
        dbs = {s: fresh_db(admin, s) for s in SERVICES}
        env = {f"{s.upper()}_DATABASE_URL": c for s, c in dbs.items()}
        run(dbtool_cmd("migrate"), env)
        run(dbtool_cmd("roles"), env)  # from now on every run plans nothing
        ours = [timed(lambda: run(dbtool_cmd("roles"), env)) for _ in range(runs)]
        reference = [timed(lambda: run(dbtool_cmd("status"), env)) for _ in range(runs)]
        report(f"no-op dbtool roles of {len(SERVICES)} services", ours, reference, "status")

        tree = load_tree(SCHEMAS / "course")
        settings = make_settings(SCHEMAS, env="dev", environ={})
        target = Target("course", "embedded", "course", None, True)  # what the dev hook acts on
        with psycopg.connect(dbs["course"], autocommit=True) as conn:
            def hooked() -> None:
                with as_owner(conn, settings, target):
                    migrate_connection(conn, tree)

            hooked()  # warm up
            ours = [timed(hooked) for _ in range(runs * 3)]
            reference = [timed(lambda: migrate_connection(conn, tree)) for _ in range(runs * 3)]
        report("no-op migrate of course, in process", ours, reference, "no hook")
        print(f"  hook cost: {(statistics.median(ours) - statistics.median(reference)) * 1000:.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

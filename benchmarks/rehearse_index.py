"""dbtool rehearse on a 1M-row table: the stall it reports for CREATE INDEX CONCURRENTLY against a
plain CREATE INDEX (target: <= 0.05), and the plain build's reported stall against what an
independent writer loop, run by this benchmark on the same scratch database, measured (target:
within 20%).

    python benchmarks/rehearse_index.py [--rows 1000000] [--writers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import scratch_server  # noqa: E402

BUILDS = {
    "plain": "CREATE INDEX idx_items_note ON items (note);\n",
    "concurrent": "-- transactional: false\nCREATE INDEX CONCURRENTLY IF NOT EXISTS idx_items_note ON items (note);\n",
}


def write_service(schemas: Path, name: str, rows: int) -> None:
    folder = schemas / name
    folder.mkdir(parents=True)
    files = {
        "001_create_items_table": ("CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note text);\n",
                                   "DROP TABLE items;\n"),
        "002_fill_items": (f"INSERT INTO items SELECT g, g % 1000, md5(g::text) FROM generate_series(1, {rows}) g;\n",
                           "DELETE FROM items;\n"),
        "003_add_items_note_index": (BUILDS[name], "DROP INDEX IF EXISTS idx_items_note;\n"),
    }
    for stem, (up, down) in files.items():
        (folder / f"{stem}.sql").write_text(up)
        (folder / f"{stem}.down.sql").write_text(down)


class Independent(threading.Thread):
    """A writer loop of the benchmark's own on the rehearsal's scratch database, once its rows exist."""

    def __init__(self, admin: str, rows: int):
        super().__init__(daemon=True)
        self.admin, self.rows, self.worst, self.writes = admin, rows, 0.0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        conn = self._scratch()
        if conn is None:
            return
        try:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute("UPDATE items SET note = note WHERE id = %s", (random.randint(1, self.rows),))
                self.worst = max(self.worst, time.perf_counter() - started)
                self.writes += 1
                time.sleep(0.005)
        except psycopg.Error:
            pass  # the rehearsal dropped its scratch database: the run is over
        finally:
            conn.close()

    def _scratch(self) -> psycopg.Connection | None:
        with psycopg.connect(self.admin, autocommit=True) as admin:
            while not self.stop.is_set():
                row = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE '%\\_scratch\\_%'").fetchone()
                if row:
                    try:
                        conn = psycopg.connect(make_conninfo(self.admin, dbname=row[0]), autocommit=True)
                        # The load starts once the rows are in; so does this loop.
                        if conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name ="
                                        " 'dbtool rehearse load'").fetchone()[0]:
                            return conn
                        conn.close()
                    except psycopg.Error:
                        pass
                time.sleep(0.05)
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    with scratch_server() as admin, tempfile.TemporaryDirectory() as tmp:
        schemas = Path(tmp) / "schemas"
        results = {}
        for name in BUILDS:
            write_service(schemas, name, args.rows)
        for name in BUILDS:
            env = {**os.environ, f"{name.upper()}_DATABASE_URL": make_conninfo(admin, dbname=f"{name}_db_never_made")}
            independent = Independent(admin, args.rows)
            independent.start()
            done = subprocess.run(
                [sys.executable, "-m", "dbtool", "rehearse", name, "--schemas-dir", str(schemas), "--from", "2",
                 "--scale", "1", "--writers", str(args.writers), "--max-stall", "100000", "--json"],
                env=env, capture_output=True, text=True)
            independent.stop.set()
            independent.join()
            if done.returncode != 0:
                sys.exit(f"rehearse {name} failed ({done.returncode}): {done.stderr}")
            (m,) = json.loads(done.stdout)["migrations"]
            results[name] = (m, independent.worst)
            print(f"{name:<11} {m['duration_ms']:8.0f} ms build; rehearse reports worst write {m['max_stall_ms']:8.1f} ms"
                  f" (p99 {m['p99_ms']:.1f} ms, {m['writes']} writes); independent loop {independent.worst * 1000:8.1f} ms"
                  f" ({independent.writes} writes)")
        plain, concurrent = results["plain"][0], results["concurrent"][0]
        print(f"ratio concurrent / plain (reported stall): {concurrent['max_stall_ms'] / plain['max_stall_ms']:.3f}")
        independent = results["plain"][1] * 1000
        print(f"plain: reported / independent loop: {plain['max_stall_ms'] / independent:.3f}")


if __name__ == "__main__":
    main()

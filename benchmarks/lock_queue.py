"""The lock queue: a report holds ACCESS SHARE on a 1M-row table for 10 s while a writer loop runs,
and the same ALTER TABLE ... ADD COLUMN is applied with plain psql and with dbtool migrate.

psql's ALTER queues behind the report and every write queues behind the ALTER for the whole 10 s;
dbtool does not ask for its lock while a transaction older than a quarter of its lock timeout holds
a conflicting one (it waits for it without queueing), and any wait it does make is bounded by its
lock timeout and retried, so writes get through. Prints the writers' worst stall each way and the ratio dbtool / psql (target: <= 0.05).

    python benchmarks/lock_queue.py [--rows 1000000] [--hold 10]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import fresh_db, pg_bin, scratch_server  # noqa: E402

ALTER = "ALTER TABLE items ADD COLUMN notes text;"


class Writers(threading.Thread):
    def __init__(self, conninfo: str, rows: int):
        super().__init__(daemon=True)
        self.conninfo, self.rows, self.worst, self.writes = conninfo, rows, 0.0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                conn.execute("UPDATE items SET v = v + 1 WHERE id = %s", (random.randint(1, self.rows),))
                self.worst = max(self.worst, time.perf_counter() - started)
                self.writes += 1
                time.sleep(0.005)


def under_report(conninfo: str, rows: int, hold: float, apply) -> tuple[float, float, int]:
    """(writers' worst stall, seconds the ALTER took, writes) with a report holding ACCESS SHARE."""
    writer = Writers(conninfo, rows)
    writer.start()
    time.sleep(0.5)
    report = psycopg.connect(conninfo, autocommit=True)
    report.execute("BEGIN")
    report.execute("SELECT count(*) FROM items")
    threading.Timer(hold, lambda: report.execute("COMMIT")).start()
    started = time.perf_counter()
    apply()
    took = time.perf_counter() - started
    while time.perf_counter() - started < hold + 0.5:
        time.sleep(0.1)
    writer.stop.set()
    writer.join()
    report.close()
    return writer.worst, took, writer.writes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hold", type=float, default=10.0)
    args = parser.parse_args()
    with scratch_server() as admin, tempfile.TemporaryDirectory() as tmp:
        schemas = Path(tmp) / "schemas"
        folder = schemas / "bench"
        folder.mkdir(parents=True)
        (folder / "001_create_items_table.sql").write_text("CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL);\n")
        (folder / "001_create_items_table.down.sql").write_text("DROP TABLE items;\n")
        (folder / "002_add_items_notes.sql").write_text(ALTER + "\n")
        (folder / "002_add_items_notes.down.sql").write_text("ALTER TABLE items DROP COLUMN notes;\n")
        figures = {}
        runs = [("psql", None), ("dbtool (default 1s)", []), ("dbtool --ddl-lock-timeout 200ms",
                                                              ["--ddl-lock-timeout", "200ms"])]
        for name, options in runs:
            db = fresh_db(admin, "lockq")
            env = {**os.environ, "BENCH_DATABASE_URL": db}
            dbtool = [sys.executable, "-m", "dbtool", "migrate", "bench", "--schemas-dir", str(schemas)]
            subprocess.run(dbtool + ["--to", "1"], check=True, env=env, stdout=subprocess.DEVNULL)
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("INSERT INTO items SELECT g, 0 FROM generate_series(1, %s) g", (args.rows,))
                conn.execute("VACUUM ANALYZE items")
            if options is None:
                cmd = [pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", ALTER, db]
            else:
                cmd = dbtool + options
            figures[name] = under_report(db, args.rows, args.hold,
                                         lambda: subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL))
            worst, took, writes = figures[name]
            print(f"{name:<34} worst write {worst * 1000:8.1f} ms   ALTER done after {took:5.1f} s   {writes} writes")
        psql = figures["psql"][0]
        for name, _ in runs[1:]:
            print(f"ratio {name} / psql: {figures[name][0] / psql:.3f}")


if __name__ == "__main__":
    main()

"""`dbtool audit-indexes` on a generated database of 1,000 tables and 4,000 indexes.

Builds the database on a scratch embedded server (or under --dsn, a server where the user may create
databases), with duplicate, redundant and foreign-key-without-index cases so that findings exist and a
row in every table so that the usage checks run too. Times the core function `audit_connection`
several times and counts the statements it sends; as references in the same run it times the audit
of a 10-table database built the same way and a plain `SELECT count(*) FROM pg_index`.
Usage: python benchmarks/audit_scale.py [--runs 7] [--tables 1000] [--dsn ADMIN_URL]
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from contextlib import nullcontext

import psycopg
from _common import dbtool_cmd, fresh_db, run, scratch_server, timed
from psycopg import sql

from dbtool.inspect import audit as audit_module
from dbtool.inspect.audit import audit_connection
from dbtool.migrate.state import TRACKING_TABLES

SIZES = "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index WHERE indexrelid >= 16384"


class CountingCursor(psycopg.Cursor):
    """Counts what the audit sends; the server underneath is real."""

    sent = 0

    def execute(self, *args, **kwargs):
        CountingCursor.sent += 1
        return super().execute(*args, **kwargs)


def generate(conninfo: str, tables: int) -> None:
    """Four indexes per table (the primary key and three more); every fourth table of each case."""
    statements = []
    for n in range(tables):
        parent = f"t{n - 1}" if n else None
        ref = f" REFERENCES {parent}" if parent else ""
        statements.append(f"CREATE TABLE t{n} (id int PRIMARY KEY, parent int{ref}, a int, b int, c text)")
        statements.append(f"CREATE INDEX idx_t{n}_a_b ON t{n} (a, b)")
        case = n % 4
        if case == 0:  # redundant: (a) is a leading prefix of (a, b)
            extra = [f"idx_t{n}_parent ON t{n} (parent)", f"idx_t{n}_a ON t{n} (a)"]
        elif case == 1:  # clean
            extra = [f"idx_t{n}_parent ON t{n} (parent)", f"idx_t{n}_c ON t{n} (c)"]
        elif case == 2:  # a duplicate, and the foreign key has no index
            extra = [f"idx_t{n}_b ON t{n} (b)", f"idx_t{n}_b_again ON t{n} (b)"]
        else:  # a partial index is no duplicate of a whole one
            extra = [f"idx_t{n}_parent ON t{n} (parent)", f"idx_t{n}_c_partial ON t{n} (c) WHERE a > 0"]
        statements += [f"CREATE INDEX {e}" for e in extra]
        statements.append(f"INSERT INTO t{n} VALUES (1, NULL, 1, 1, 'x')")
    with psycopg.connect(conninfo) as conn:  # one transaction: fast, and all or nothing
        for statement in statements:
            conn.execute(statement)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")


def catalog_queries(conn: psycopg.Connection) -> None:
    params = {"skip": list(TRACKING_TABLES)}
    conn.execute(audit_module._DATABASE).fetchall()
    for query in (audit_module._INDEXES, audit_module._FOREIGN_KEYS, audit_module._TABLES):
        conn.execute(query, params).fetchall()


def counts(conninfo: str) -> tuple[int, int]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(
            """SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'),
                      (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')""").fetchone()


def audit_runs(conninfo: str, runs: int) -> tuple[list[float], int, Counter]:
    times = []
    with psycopg.connect(conninfo, autocommit=True, cursor_factory=CountingCursor) as conn:
        for _ in range(runs):
            CountingCursor.sent = 0
            holder = {}
            times.append(timed(lambda: holder.update(report=audit_connection(conn))))
            sent = CountingCursor.sent
    kinds = Counter(f.kind for f in holder["report"].findings)
    return times, sent, kinds


def main(runs: int, tables: int, dsn: str | None) -> None:
    with (nullcontext(dsn) if dsn else scratch_server()) as admin:
        big, small = fresh_db(admin, "audit_big"), fresh_db(admin, "audit_small")
        build = timed(lambda: generate(big, tables))
        generate(small, 10)
        big_tables, big_indexes = counts(big)
        small_tables, small_indexes = counts(small)
        ours, sent_big, kinds = audit_runs(big, runs)
        small_times, sent_small, _ = audit_runs(small, runs)
        with psycopg.connect(big, autocommit=True) as conn:
            plain = [timed(lambda: conn.execute("SELECT count(*) FROM pg_index").fetchone()) for _ in range(runs)]
            # The same four catalog queries without the comparing done in Python.
            queries = [timed(lambda: catalog_queries(conn)) for _ in range(runs)]
            # The part no audit can skip: one size lookup (a stat() of the file) per index.
            sizes = [timed(lambda: conn.execute(SIZES).fetchone()) for _ in range(runs)]
        # The command as a user runs it: a new process and a new connection (cold caches) each time.
        command = [timed(lambda: run(dbtool_cmd("audit-indexes", "--dsn", big, "--json"))) for _ in range(3)]
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in (big, small):
                dbname = psycopg.conninfo.conninfo_to_dict(name)["dbname"]
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname)))
    a, b, c = statistics.median(ours), statistics.median(small_times), statistics.median(plain)
    d, e = statistics.median(sizes), statistics.median(queries)
    print(f"audit-indexes on {big_tables} tables with {big_indexes} indexes (built in {build:.1f} s)")
    print(f"  findings: {dict(sorted(kinds.items()))}")
    print(f"  audit, {big_tables} tables     median {a * 1000:8.1f} ms over {runs} runs, {sent_big} statements sent")
    print(f"  audit, {small_tables} tables ({small_indexes} indexes) median {b * 1000:8.1f} ms,"
          f" {sent_small} statements sent")
    print(f"  dbtool audit-indexes --dsn ... --json as a command  median {statistics.median(command) * 1000:8.1f} ms"
          " over 3 runs")
    print(f"  its {sent_big} catalog queries alone  median {e * 1000:8.1f} ms (the rest is Python)")
    print(f"  SELECT count(*) FROM pg_index  median {c * 1000:8.1f} ms")
    print(f"  sum(pg_relation_size) of the {big_indexes} indexes  median {d * 1000:8.1f} ms")
    print(f"  ratio large / small audit: {a / b:.1f}; large audit / count(pg_index): {a / c:.0f};"
          f" large audit / index sizes alone: {a / d:.1f}")
    print(f"  per index: {a / big_indexes * 1e6:.0f} us")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--dsn", help="admin connection URL of a server to build the databases on")
    args = parser.parse_args()
    main(args.runs, args.tables, args.dsn)

"""audit-indexes health checks: bloat, sequence overflow, unselective indexes, unused across replicas."""

from __future__ import annotations

import json

import pytest
from conftest import assert_no_crash, connect
from test_audit import audit, run  # the audit tests' helpers: statements with flushed stats

from dbtool.inspect.audit import QUERIES, AuditReport
from dbtool.inspect.health import REPLICA_QUERIES, expected_pages, replica_scans


def kinds(report: AuditReport) -> dict[str, str]:
    return {f.subject: f.kind for f in report.findings}


def test_expected_pages_of_a_fresh_btree():
    # 8-byte keys: 20-byte tuples -> 7,330 bytes a page at fillfactor 90 hold 366 of them.
    assert expected_pages(366_000, 8, 90) == 1000 + 10 + 1
    assert expected_pages(0, 8, 90) == 2


def test_a_btree_emptied_by_deletes_is_bloated_until_reindexed(db):
    run(db, "CREATE TABLE events (id int8 PRIMARY KEY, at int8)",
        "INSERT INTO events SELECT g, g FROM generate_series(1, 200000) g",
        "CREATE INDEX idx_events_at ON events (at)",
        "DELETE FROM events WHERE id % 10 <> 0", "VACUUM ANALYZE events")
    report = audit(db)
    found = [f for f in report.findings if f.subject == "idx_events_at"]
    assert found and found[0].kind == "bloat" and found[0].level == "warning", report.findings
    assert "20,000 rows" in found[0].evidence
    assert found[0].fix == "REINDEX INDEX CONCURRENTLY public.idx_events_at;"
    run(db, found[0].fix, "ANALYZE events")
    assert kinds(audit(db)).get("idx_events_at") != "bloat"


def test_a_sequence_near_its_column_limit_is_reported_with_the_widening_fix(db):
    run(db, "CREATE TABLE tickets (id serial PRIMARY KEY, n int)",
        "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY)",
        "SELECT setval('tickets_id_seq', 1900000000)", "INSERT INTO orders DEFAULT VALUES")
    report = audit(db)
    [found] = [f for f in report.findings if f.kind == "overflow"]
    assert found.subject == "tickets_id_seq" and found.table == "tickets"
    assert "1,900,000,000 of 2,147,483,647 (88% used)" in found.evidence
    assert "ALTER TABLE public.tickets ALTER COLUMN id TYPE bigint;" in found.fix
    run(db, "ALTER TABLE tickets ALTER COLUMN id TYPE bigint", "ALTER SEQUENCE tickets_id_seq AS bigint")
    assert "overflow" not in kinds(audit(db)).values()


def test_an_index_on_a_column_of_two_values_is_too_unselective(db):
    run(db, "CREATE TABLE users (id int PRIMARY KEY, role text NOT NULL, email text NOT NULL)",
        "INSERT INTO users SELECT g, CASE WHEN g % 20 = 0 THEN 'admin' ELSE 'student' END, 'u' || g"
        " FROM generate_series(1, 20000) g",
        "CREATE INDEX idx_users_role ON users (role)", "CREATE INDEX idx_users_email ON users (email)",
        "ANALYZE users")
    report = audit(db)
    found = [f for f in report.findings if f.subject == "idx_users_role"]
    assert found and found[0].kind == "low-selectivity", report.findings
    assert "2 distinct value(s) over 20,000 rows" in found[0].evidence and "'student'" in found[0].evidence
    assert "WHERE role IN ('admin')" in found[0].fix
    assert kinds(report).get("idx_users_email") != "low-selectivity"


def test_a_small_table_is_never_unselective(db):
    run(db, "CREATE TABLE flags (id int PRIMARY KEY, on_off bool)",
        "INSERT INTO flags SELECT g, g % 2 = 0 FROM generate_series(1, 500) g",
        "CREATE INDEX idx_flags_on_off ON flags (on_off)", "ANALYZE flags")
    assert "low-selectivity" not in kinds(audit(db)).values()


# ---------------------------------------------------------------- unused, merged across hosts

SCHEMA = ("CREATE TABLE items (id int PRIMARY KEY, a int, b int)",
          "INSERT INTO items SELECT g, g, g FROM generate_series(1, 1000) g",
          "CREATE INDEX idx_items_a ON items (a)", "CREATE INDEX idx_items_b ON items (b)", "ANALYZE items")


@pytest.fixture
def hosts(new_db):
    """A primary and a replica: two databases with one schema stand in for two servers."""
    primary, replica = new_db("primary"), new_db("replica")
    for conninfo in (primary, replica):
        # A read by the primary key: traffic, so the usage checks run (writes alone are not usage).
        run(conninfo, *SCHEMA, "SELECT pg_stat_reset()", "INSERT INTO items VALUES (5000, 1, 1)",
            "SET enable_seqscan = off", "SELECT * FROM items WHERE id = 1")
    run(replica, "SET enable_seqscan = off", "SELECT count(*) FROM items WHERE a = 3")
    return primary, replica


def test_an_index_read_only_on_a_replica_is_not_unused(hosts):
    primary, replica = hosts
    alone = audit(primary)
    assert kinds(alone).get("idx_items_a") == "unused" and kinds(alone).get("idx_items_b") == "unused"
    with connect(replica) as conn:
        scans = replica_scans(conn)
    merged = audit(primary, replicas=[scans])
    assert "idx_items_a" not in kinds(merged)
    found = [f for f in merged.findings if f.subject == "idx_items_b"][0]
    assert "on the primary nor on its 1 replica(s)" in found.evidence


def test_dsn_repeated_for_a_primary_and_its_replica(cli, hosts):
    primary, replica = hosts
    result = cli("audit-indexes", "--dsn", primary, "--dsn", replica, "--json")
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["statements"] == QUERIES + REPLICA_QUERIES
    unused = {f["index"] for f in report["findings"] if f["kind"] == "unused"}
    assert unused == {"idx_items_b"}
    assert "1 replica(s)" in report["database"]


def test_replicas_need_a_primary_and_one_database(cli, project, hosts):
    primary, replica = hosts
    result = cli("audit-indexes", "identity", "course", "--dsn", primary, "--dsn", replica,
                 "--schemas-dir", project / "schemas")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert_no_crash(result)
    assert len(result.stderr.strip().splitlines()) == 1 and "--dsn" in result.stderr
    bad = cli("audit-indexes", "--dsn", primary, "--dsn", "nonsense=")
    assert bad.exit_code == 2 and "--dsn" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1

"""dbtool audit-indexes on the real server: each finding on a crafted database, gone once fixed."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
from conftest import SCHEMAS, connect, one_error_line
from fleet import SERVICES

from dbtool.errors import BadInput
from dbtool.inspect.audit import (
    QUERIES,
    AuditReport,
    audit_connection,
    parse_size,
    unused_level,
)
from dbtool.migrate.runner import migrate_connection
from dbtool.migrate.tree import load_tree
from dbtool.schemafile.snapshot import snapshot

# A parent and a child table with rows, so that the statistics collector has something to say.
BASE = """
CREATE TABLE parents (id int PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE children (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parents (id),
                       a int, b int, c text);
CREATE INDEX idx_children_parent_id ON children (parent_id);
INSERT INTO parents SELECT g, 'p' || g FROM generate_series(1, 100) g;
INSERT INTO children SELECT g, 1 + g % 100, g % 7, g % 11, 'c' || g FROM generate_series(1, 2000) g;
"""


def run(conninfo: str, *statements: str) -> None:
    """Run statements one by one outside a transaction (CONCURRENTLY needs that), then flush the stats."""
    with connect(conninfo) as conn:
        for statement in statements:
            conn.execute(statement)
        # Counters reach the shared statistics when this session goes idle; make that now.
        conn.execute("SELECT pg_stat_force_next_flush()")


def audit(conninfo: str, **options) -> AuditReport:
    with connect(conninfo) as conn:
        return audit_connection(conn, **options)


def subjects(report: AuditReport, kind: str | None = None) -> set[str]:
    return {f.subject for f in report.findings if kind is None or f.kind == kind}


def finding(report: AuditReport, subject: str):
    [found] = [f for f in report.findings if f.subject == subject]
    return found


@pytest.fixture
def crafted(db: str) -> str:
    run(db, BASE)
    return db


# ------------------------------------------------------------------ each kind, then its fix


def test_duplicate_is_found_and_its_fix_removes_it(crafted):
    run(crafted, "CREATE INDEX idx_children_a ON children (a)", "CREATE INDEX idx_children_a_again ON children (a)")
    found = finding(audit(crafted), "idx_children_a_again")
    assert (found.level, found.kind) == ("warning", "duplicate")
    assert "idx_children_a " in found.evidence and "keep idx_children_a" in found.evidence
    run(crafted, found.fix)
    report = audit(crafted)
    assert not subjects(report, "duplicate") and "idx_children_a" not in subjects(report, "redundant")
    assert _index_exists(crafted, "idx_children_a") and not _index_exists(crafted, "idx_children_a_again")


def test_the_index_that_enforces_a_rule_is_the_one_kept(crafted):
    run(crafted, "CREATE UNIQUE INDEX idx_parents_code_unique ON parents (code)",  # same rule as parents_code_key
        "ALTER TABLE children ADD CONSTRAINT children_c_key UNIQUE (c)",
        "ALTER TABLE children ADD CONSTRAINT children_c_key_again UNIQUE (c)")
    report = audit(crafted)
    assert subjects(report, "duplicate") == {"idx_parents_code_unique", "children_c_key_again"}
    assert "keep parents_code_key" in finding(report, "idx_parents_code_unique").evidence
    again = finding(report, "children_c_key_again")
    assert again.fix == "ALTER TABLE public.children DROP CONSTRAINT children_c_key_again;"
    run(crafted, again.fix, finding(report, "idx_parents_code_unique").fix)
    assert not subjects(audit(crafted), "duplicate")


def test_a_unique_index_a_foreign_key_depends_on_is_kept(crafted):
    run(crafted, "CREATE UNIQUE INDEX idx_children_c_unique ON children (c)",
        "CREATE TABLE toys (id int PRIMARY KEY, child_c text REFERENCES children (c))",
        "CREATE INDEX idx_toys_child_c ON toys (child_c)",
        "ALTER TABLE children ADD CONSTRAINT children_c_key UNIQUE (c)")
    found = finding(audit(crafted), "children_c_key")  # the foreign key uses idx_children_c_unique
    assert found.kind == "duplicate" and "keep idx_children_c_unique" in found.evidence
    run(crafted, found.fix)
    assert not subjects(audit(crafted), "duplicate")


def test_a_different_operator_class_collation_or_predicate_is_no_duplicate(crafted):
    run(crafted,
        "CREATE INDEX idx_children_c ON children (c)",
        "CREATE INDEX idx_children_c_pattern ON children (c text_pattern_ops)",
        'CREATE INDEX idx_children_c_c ON children (c COLLATE "C")',
        "CREATE INDEX idx_children_c_partial ON children (c) WHERE a = 1",
        "CREATE INDEX idx_children_c_hash ON children USING hash (c)")
    report = audit(crafted)
    assert not subjects(report, "duplicate") and not subjects(report, "redundant")


def test_a_leading_prefix_is_redundant_only_for_btree_of_the_same_predicate(crafted):
    run(crafted, "CREATE INDEX idx_children_a ON children (a)", "CREATE INDEX idx_children_a_b ON children (a, b)",
        "CREATE INDEX idx_children_b_hash ON children USING hash (b)",
        "CREATE INDEX idx_children_b_hash_c ON children USING btree (b, c)",  # another kind: no cover
        "CREATE INDEX idx_children_c ON children (c) WHERE a > 3",
        "CREATE INDEX idx_children_c_b ON children (c, b)",  # no predicate: does not serve the partial one
        "CREATE UNIQUE INDEX idx_children_id_a ON children (id, a)")  # the PK is a prefix, but PK enforces
    report = audit(crafted)
    assert subjects(report, "redundant") == {"idx_children_a"}
    found = finding(report, "idx_children_a")
    assert found.level == "warning" and "leading prefix of idx_children_a_b" in found.evidence
    run(crafted, found.fix)
    assert not subjects(audit(crafted), "redundant")


def test_a_plain_index_covered_by_a_unique_constraint_names_the_constraint(crafted):
    run(crafted, "CREATE INDEX idx_parents_code ON parents (code)")
    found = finding(audit(crafted), "idx_parents_code")
    assert found.kind == "redundant"
    assert "UNIQUE constraint parents_code_key" in found.evidence
    assert found.fix == "DROP INDEX CONCURRENTLY IF EXISTS public.idx_parents_code;"
    run(crafted, found.fix)
    report = audit(crafted)
    assert "idx_parents_code" not in subjects(report)
    assert "parents_code_key" not in subjects(report)  # the constraint's index is never the one to drop


def test_foreign_key_without_index_gets_a_create_index(crafted):
    run(crafted, "DROP INDEX idx_children_parent_id")
    found = finding(audit(crafted), "children_parent_id_fkey")
    assert (found.level, found.kind, found.table, found.index) == ("warning", "fk-without-index", "children", None)
    assert found.fix == "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_children_parent_id ON public.children (parent_id);"
    run(crafted, found.fix)
    assert "children_parent_id_fkey" not in subjects(audit(crafted))


def test_the_fix_never_reuses_the_name_of_an_index_that_does_not_serve_the_foreign_key(crafted):
    run(crafted, "DROP INDEX idx_children_parent_id",
        "CREATE INDEX idx_children_parent_id ON children (parent_id) WHERE a = 1")  # partial: serves no delete
    found = finding(audit(crafted), "children_parent_id_fkey")
    assert found.fix.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_children_parent_id_2 ON")
    run(crafted, found.fix)
    assert "children_parent_id_fkey" not in subjects(audit(crafted))


def test_a_multi_column_foreign_key_is_served_by_an_index_leading_with_its_columns_in_any_order(db):
    run(db, "CREATE TABLE pairs (x int, y int, PRIMARY KEY (x, y))",
        "CREATE TABLE uses (id int PRIMARY KEY, x int, y int, z int, FOREIGN KEY (x, y) REFERENCES pairs)",
        "CREATE INDEX idx_uses_x ON uses (x)",  # only half the key
        "CREATE INDEX idx_uses_z_y_x ON uses (z, y, x)")  # not leading
    assert subjects(audit(db), "fk-without-index") == {"uses_x_y_fkey"}
    run(db, "CREATE INDEX idx_uses_y_x_z ON uses (y, x, z)")
    assert not subjects(audit(db), "fk-without-index")


def test_invalid_index_is_an_error_and_reindex_repairs_it(crafted):
    run(crafted, "UPDATE children SET c = 'same' WHERE id <= 2")
    with connect(crafted) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY idx_children_c ON children (c)")
    found = finding(audit(crafted), "idx_children_c")
    assert (found.level, found.kind) == ("error", "invalid")
    assert found.fix == "REINDEX INDEX CONCURRENTLY public.idx_children_c;"
    run(crafted, "UPDATE children SET c = 'c' || id", found.fix)
    assert "idx_children_c" not in subjects(audit(crafted))
    with connect(crafted) as conn:
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_children_c'::regclass"
                            ).fetchone()[0]


def test_unused_index_reports_the_statistics_reset_and_a_used_one_is_not_reported(crafted):
    run(crafted, "CREATE INDEX idx_children_a ON children (a)", "CREATE INDEX idx_children_b ON children (b)",
        "SELECT pg_stat_reset()",
        "INSERT INTO children VALUES (5000, 1, 1, 1, 'x')",
        "SET enable_seqscan = off", "SELECT count(*) FROM children WHERE b = 3")
    report = audit(crafted)
    assert report.usage_checked and report.stats_reset is not None
    found = finding(report, "idx_children_a")
    assert (found.level, found.kind) == ("info", "unused")
    assert f"{report.stats_reset:%Y-%m-%d %H:%M}" in found.evidence
    assert "idx_children_b" not in subjects(report)
    # Constraint indexes and an index serving a foreign key are never "unused", scanned or not.
    assert not {"parents_pkey", "parents_code_key", "children_pkey", "idx_children_parent_id"} & subjects(report)
    assert "idx_children_a" not in subjects(audit(crafted, min_size_bytes=parse_size("1MB")))
    run(crafted, found.fix)
    assert not subjects(audit(crafted), "unused")


def test_a_table_read_whole_again_and_again_is_reported_until_an_index_serves_it(db):
    run(db, "CREATE TABLE events (id int, kind int)",
        "INSERT INTO events SELECT g, g % 100 FROM generate_series(1, 20000) g",
        "SET max_parallel_workers_per_gather = 0",
        *["SELECT count(*) FROM events WHERE kind = 7"] * 60)
    found = finding(audit(db), "events")
    assert (found.level, found.kind, found.index) == ("info", "seq-scan", None)
    assert "60 sequential scans" in found.evidence and "20,000 per scan" in found.evidence
    run(db, "CREATE INDEX idx_events_kind ON events (kind)", "SET enable_seqscan = off",
        *["SELECT count(*) FROM events WHERE kind = 7"] * 70)
    assert "events" not in subjects(audit(db))


# ------------------------------------------------------------------ the specification's own pairs


@pytest.mark.parametrize("service, redundant", [
    ("identity", {"idx_users_email": "users_email_key",
                  "idx_refresh_tokens_token": "refresh_tokens_token_key"}),
    ("course", {"idx_enrollments_course_id": "enrollments_course_id_student_id_key"}),
])
def test_the_specifications_redundant_indexes_are_found(db, service, redundant):
    with connect(db) as conn:
        migrate_connection(conn, load_tree(SCHEMAS / service), to=2)
    report = audit(db)
    assert subjects(report, "redundant") == set(redundant)
    for index, constraint in redundant.items():
        assert f"UNIQUE constraint {constraint}" in finding(report, index).evidence
    assert not subjects(report, "duplicate") and not subjects(report, "invalid")


# ------------------------------------------------------------------ a fixed number of queries


class CountingCursor(psycopg.Cursor):
    sent = 0

    def execute(self, *args, **kwargs):
        CountingCursor.sent += 1
        return super().execute(*args, **kwargs)


def generate(conninfo: str, tables: int) -> None:
    """Tables with a foreign key, a redundant pair, a duplicate and one missing foreign key index."""
    statements = ["CREATE TABLE t0 (id int PRIMARY KEY)"]
    for n in range(1, tables):
        statements += [
            f"CREATE TABLE t{n} (id int PRIMARY KEY, up int REFERENCES t{n - 1}, a int, b int)",
            f"CREATE INDEX idx_t{n}_a ON t{n} (a)", f"CREATE INDEX idx_t{n}_a_b ON t{n} (a, b)",
            f"CREATE INDEX idx_t{n}_b ON t{n} (b)", f"CREATE INDEX idx_t{n}_b_again ON t{n} (b)",
        ]
    run(conninfo, *statements)


def statements_sent(conninfo: str) -> tuple[int, AuditReport]:
    CountingCursor.sent = 0
    with psycopg.connect(conninfo, autocommit=True, cursor_factory=CountingCursor) as conn:
        report = audit_connection(conn)
    return CountingCursor.sent, report


def test_the_audit_sends_the_same_statements_for_5_and_60_tables(new_db):
    small, large = new_db(), new_db()
    generate(small, 5)
    generate(large, 60)
    sent_small, report_small = statements_sent(small)
    sent_large, report_large = statements_sent(large)
    assert sent_small == sent_large == QUERIES
    assert (report_small.tables, report_large.tables) == (5, 60)
    # Every table but the first has one finding of each structural kind; the audit saw them all.
    for report, tables in ((report_small, 5), (report_large, 60)):
        kinds = [f.kind for f in report.findings]
        assert {k: kinds.count(k) for k in set(kinds)} == {
            "redundant": tables - 1, "duplicate": tables - 1, "fk-without-index": tables - 1}


# ------------------------------------------------------------------ no statistics


def test_no_statistics_skips_the_usage_checks_with_a_notice(db):
    run(db, "CREATE TABLE things (id int PRIMARY KEY, name text)",
        "CREATE INDEX idx_things_name ON things (name)", "CREATE INDEX idx_things_name_id ON things (name, id)")
    report = audit(db)
    assert not report.usage_checked and "no usage statistics" in report.notice
    assert subjects(report) == {"idx_things_name"}  # redundant; not "unused", which would mean nothing here


def test_track_counts_off_is_named(db, server):
    run(db, BASE, "CREATE INDEX idx_children_a ON children (a)")
    with connect(db) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET track_counts = off")
    report = audit(db)
    assert not report.usage_checked and "track_counts is off" in report.notice
    assert not subjects(report, "unused")


# ------------------------------------------------------------------ the command line


def env_for(service: str, conninfo: str) -> dict[str, str]:
    return {f"{service.upper()}_DATABASE_URL": conninfo}


@pytest.fixture
def identity_v2(cli, project, db):
    """identity migrated to version 2: the specification's schema with its two redundant indexes."""
    result = cli("migrate", "identity", "--to", "2", "--schemas-dir", project / "schemas", env=env_for("identity", db))
    assert result.exit_code == 0, result.stderr
    return db


def audit_cli(cli, project, conninfo: str, *args: str):
    return cli("audit-indexes", "identity", *args, "--schemas-dir", project / "schemas",
               env=env_for("identity", conninfo))


def test_json_report_and_fail_on_levels(cli, project, identity_v2):
    result = audit_cli(cli, project, identity_v2, "--json")
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["service"] == "identity" and report["statements"] == QUERIES
    assert {f["index"] for f in report["findings"] if f["kind"] == "redundant"} == {
        "idx_users_email", "idx_refresh_tokens_token"}
    assert audit_cli(cli, project, identity_v2, "--fail-on", "warning").exit_code == 1
    assert audit_cli(cli, project, identity_v2, "--fail-on", "info").exit_code == 1
    assert audit_cli(cli, project, identity_v2, "--fail-on", "error").exit_code == 0
    human = audit_cli(cli, project, identity_v2)
    assert human.exit_code == 0 and "idx_users_email" in human.stdout and "statistics since" in human.stdout


def test_unknown_fail_on_level(cli, project, identity_v2):
    result = audit_cli(cli, project, identity_v2, "--fail-on", "fatal")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--fail-on" in line and "error, warning, info" in line


def test_bad_min_size(cli, project, identity_v2):
    result = audit_cli(cli, project, identity_v2, "--min-size", "lots")
    assert result.exit_code == 2 and "--min-size" in one_error_line(result)


def test_a_silence_with_a_reason_moves_the_finding_aside(cli, project, identity_v2):
    (project / "schemas" / "identity" / "dbtool.toml").write_text(
        '[[audit.silence]]\nindex = "idx_users_email"\nreason = "kept until the login query moves"\n')
    result = audit_cli(cli, project, identity_v2, "--json", "--fail-on", "warning")
    assert result.exit_code == 1  # idx_refresh_tokens_token still counts
    [report] = json.loads(result.stdout)
    assert [(f["index"], f["reason"]) for f in report["silenced"]] == [
        ("idx_users_email", "kept until the login query moves")]
    assert "idx_users_email" not in {f["index"] for f in report["findings"]}
    (project / "schemas" / "identity" / "dbtool.toml").write_text(
        '[[audit.silence]]\nindex = "idx_users_email"\nreason = "a"\n'
        '[[audit.silence]]\nindex = "idx_refresh_tokens_token"\nreason = "b"\n')
    assert audit_cli(cli, project, identity_v2, "--fail-on", "warning").exit_code == 0


def test_a_silence_without_a_reason_is_bad_input(cli, project, identity_v2):
    path = project / "schemas" / "identity" / "dbtool.toml"
    path.write_text('[[audit.silence]]\nindex = "idx_users_email"\n')
    result = audit_cli(cli, project, identity_v2)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert str(path) in line and "idx_users_email" in line and "reason" in line
    assert result.stdout == ""


def test_dsn_alone_audits_any_database_in_every_user_schema(cli, db, tmp_path):
    run(db, "CREATE SCHEMA billing",
        "CREATE TABLE billing.invoices (id int PRIMARY KEY, number text UNIQUE)",
        "CREATE INDEX idx_invoices_number ON billing.invoices (number)",
        # dbtool's own bookkeeping is not the user's to fix
        "CREATE TABLE _dbtool_checksum (id int)", "CREATE INDEX x1 ON _dbtool_checksum (id)",
        "CREATE INDEX x2 ON _dbtool_checksum (id)")
    result = cli("audit-indexes", "--dsn", db, "--json", "--schemas-dir", tmp_path / "nowhere")
    assert result.exit_code == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert [(f["schema"], f["index"], f["fix"]) for f in report["findings"]] == [
        ("billing", "idx_invoices_number", "DROP INDEX CONCURRENTLY IF EXISTS billing.idx_invoices_number;")]


def test_a_missing_service_folder(cli, project, db):
    result = cli("audit-indexes", "billing", "--schemas-dir", project / "schemas", env=env_for("billing", db))
    assert result.exit_code == 2
    assert "billing: no such service folder" in one_error_line(result)


def test_an_unreachable_server(cli, project):
    dsn = "postgresql://someone:hunter22@127.0.0.1:1/identity_db_dev"
    result = cli("audit-indexes", "identity", "--dsn", dsn, "--schemas-dir", project / "schemas")
    assert result.exit_code == 3
    assert "cannot connect to someone@127.0.0.1:1/identity_db_dev" in one_error_line(result)
    assert "hunter22" not in result.output


def test_a_service_database_that_does_not_exist(cli, project, server):
    missing = server.conninfo("identity_db_that_is_not_there")
    result = cli("audit-indexes", "identity", "--schemas-dir", project / "schemas", env=env_for("identity", missing))
    assert result.exit_code == 3
    assert "dbtool migrate identity" in one_error_line(result)


def test_a_freshly_migrated_database_says_why_usage_was_not_checked(cli, project, identity_v2):
    before = snap(identity_v2)
    result = audit_cli(cli, project, identity_v2)
    assert result.exit_code == 0, result.stderr
    assert snap(identity_v2) == before
    assert "no usage statistics yet" in result.stdout and "never reset" in result.stdout
    assert "DROP INDEX CONCURRENTLY IF EXISTS public.idx_users_email;" in result.stdout


def test_every_service_folder_by_default(cli, project, new_db):
    dbs = {service: new_db(service) for service in SERVICES}
    env = {f"{s.upper()}_DATABASE_URL": c for s, c in dbs.items()}
    assert cli("migrate", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    result = cli("audit-indexes", "--json", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    assert [r["service"] for r in json.loads(result.stdout)] == SERVICES


def test_parse_size():
    assert [parse_size(s) for s in ("0", "8192", "8kB", "1MB", "1.5 GB")] == [0, 8192, 8192, 1048576, 1610612736]
    with pytest.raises(BadInput):
        parse_size("8 parsecs")


def snap(conninfo: str) -> dict:
    with connect(conninfo) as conn:
        return snapshot(conn, include_tracking=True)


def _index_exists(conninfo: str, name: str) -> bool:
    with connect(conninfo) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def test_writes_and_analyze_are_not_usage_and_unused_is_levelled_by_the_statistics_age(db):
    run(db, "CREATE TABLE notes (id int PRIMARY KEY, body text)", "CREATE INDEX idx_notes_body ON notes (body)",
        "SELECT pg_stat_reset()", "INSERT INTO notes SELECT g, 'n' || g FROM generate_series(1, 500) g",
        "ANALYZE notes")
    report = audit(db)
    assert not report.usage_checked and "writes and ANALYZE do not count" in report.notice
    run(db, "SELECT count(*) FROM notes WHERE id = 3")  # a real read, by the primary key
    report = audit(db)
    assert report.usage_checked
    found = finding(report, "idx_notes_body")
    assert (found.level, found.kind) == ("info", "unused")
    assert "min since the statistics were reset" in found.evidence and "too soon to be sure" in found.evidence
    assert unused_level(timedelta(days=8)) == "warning" and unused_level(timedelta(hours=5)) == "info"

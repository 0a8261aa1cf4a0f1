"""Broken trees and configurations: each gets its exit code, one line, and leaves the database as it was."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psycopg
import pytest
from conftest import PASSWORD, PASSWORD_ROLE, assert_no_crash, connect
from psycopg.conninfo import conninfo_to_dict

from dbtool.migrate.runner import migrate_connection, rollback_connection
from dbtool.migrate.tracking import LOCK_KEYS
from dbtool.migrate.tree import load_tree
from dbtool.schemafile.snapshot import snapshot

SERVICE = "identity"


def fingerprint(conninfo: str) -> dict:
    """Catalog and tracking rows: what 'nothing changed' compares."""
    with connect(conninfo) as conn:
        snap = snapshot(conn, include_tracking=True)
        rows = {}
        for table in ("_yoyo_migration", "_dbtool_checksum"):
            if table in snap["tables"]:
                rows[table] = conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
        rows["_yoyo_log"] = conn.execute("SELECT count(*) FROM _yoyo_log").fetchone()[0] if (
            "_yoyo_log" in snap["tables"]) else 0
    return {"schema": snap, "rows": rows}


@dataclass
class Ctx:
    folder: Path  # the service's migration folder in the scratch project
    dsn: str
    server: object

    def write(self, name: str, text: str | bytes) -> Path:
        path = self.folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    def add(self, number: int, name: str, up: str | bytes, down: str) -> None:
        self.write(f"{number:03d}_{name}.sql", up)
        self.write(f"{number:03d}_{name}.down.sql", down)

    @property
    def next(self) -> int:
        return len(list(self.folder.glob("*.down.sql"))) + 1


@dataclass
class Case:
    name: str
    prepare: Callable[[Ctx], list[str] | None]  # changes the tree; returns the command, None: migrate
    code: int
    says: str
    env: Callable[[Ctx], dict[str, str]] | None = None


def rename_down(ctx: Ctx) -> None:
    down = sorted(ctx.folder.glob("*.down.sql"))[-1]
    down.rename(down.with_name(down.name.replace(".down", "_x.down")))


def migrate_with(*args: str) -> Callable[[Ctx], list[str]]:
    return lambda ctx: ["migrate", SERVICE, *args]


CASES = [
    Case("gap", lambda c: c.add(c.next + 1, "skipped_one", "SELECT 1;", "SELECT 1;"), 2, "gap before it"),
    Case("duplicate number", lambda c: c.add(c.next - 1, "same_number", "SELECT 1;", "SELECT 1;"), 2,
         "duplicate number"),
    Case("down without up", lambda c: c.write(f"{c.next:03d}_lonely.down.sql", "SELECT 1;"), 2,
         "down file without an up file"),
    Case("up without down", lambda c: c.write(f"{c.next:03d}_no_down.sql", "SELECT 1;"), 2,
         "has no down file"),
    Case("down name mismatch", rename_down, 2, "does not match its up file"),
    Case("bad file name", lambda c: c.write("4_CreateThings.sql", "SELECT 1;"), 2,
         "not a migration file name"),
    Case("non-UTF-8 bytes", lambda c: c.add(c.next, "latin1", b"SELECT 'caf\xe9';", "SELECT 1;"), 2,
         "not UTF-8"),
    Case("empty up file", lambda c: c.add(c.next, "empty_up", "-- nothing yet\n", "SELECT 1;"), 2,
         "has no SQL statement"),
    Case("empty down file", lambda c: c.add(c.next, "empty_down", "CREATE TABLE t_e (id int);", "\n"), 2,
         "has no SQL statement"),
    Case("failing statement mid-file",
         lambda c: c.add(c.next, "breaks", "CREATE TABLE widgets (id int);\n\nALTER TABLE widgets\n"
                         "  ADD COLUMN size nosuchtype;\nCREATE TABLE gadgets (id int);\n",
                         "DROP TABLE gadgets;\nDROP TABLE widgets;"), 2,
         "_breaks.sql:4: type \"nosuchtype\" does not exist"),
    Case("COPY from psql's stream",
         lambda c: c.add(c.next, "load_rows", "CREATE TABLE t_rows (id int);\n\nCOPY t_rows (id) FROM stdin;\n1\n\\.\n",
                         "DROP TABLE t_rows;"), 2,
         "_load_rows.sql:3: COPY with STDIN or STDOUT streams rows through psql"),
    Case("edited applied file",
         lambda c: c.write("001_create_users_table.sql",
                           (c.folder / "001_create_users_table.sql").read_text() + "\n-- edited\n"), 4,
         "001_create_users_table.sql: edited after it was applied"),
    Case("edited applied down file",
         lambda c: c.write("001_create_users_table.down.sql", "DROP TABLE users CASCADE;"), 4,
         "001_create_users_table.down.sql: edited after it was applied"),
    Case("removed applied file",
         lambda c: [p.unlink() for p in sorted(c.folder.glob("0*.sql"))[-2:]] and None, 4,
         "its file is gone"),
    Case("out-of-order pending", lambda c: None, 4, "already applied"),  # set up in the test
    Case("unreachable server", migrate_with("--dsn", "postgresql://u:pw@127.0.0.1:1/x"), 3,
         "Connection refused"),
    Case("wrong password", lambda c: ["migrate", SERVICE, "--dsn", c.server.conninfo(
        conninfo_to_dict(c.dsn)["dbname"], user=PASSWORD_ROLE, password="wrong-" + PASSWORD)], 3,
         "password authentication failed"),
    Case("unknown service", lambda c: ["migrate", "billing"], 2, "no such service folder"),
    Case("unknown env", migrate_with("--env", "qa"), 2, "unknown environment 'qa'"),
    Case("dsn with every service", lambda c: ["migrate", "--dsn", c.dsn], 2, "--dsn names one database"),
    Case("malformed dsn", migrate_with("--dsn", "host=x port=5432 = broken"), 2,
         "not a PostgreSQL connection string"),
    Case("prod without --yes", migrate_with("--env", "prod"), 4, "needs --yes"),
    Case("prod with nothing configured", lambda c: ["status", SERVICE, "--env", "prod"], 2,
         "prod never uses the embedded server", env=lambda c: {}),
    Case("--to an unknown version", migrate_with("--to", "42"), 2, "has no migration with that number"),
    Case("rollback drops a table with rows", lambda c: ["rollback", SERVICE, "--to", "1"], 4, "which holds rows"),
    Case("rollback of an irreversible migration", lambda c: ["rollback", SERVICE], 4, "marked irreversible"),
    Case("rollback --steps 0", lambda c: ["rollback", SERVICE, "--steps", "0"], 2, "--steps 0"),
    Case("rollback --steps with --all", lambda c: ["rollback", SERVICE, "--steps", "1", "--all"], 2,
         "give only one of them"),
    Case("lock held by another run", migrate_with("--lock-timeout", "0.3"), 3,
         "another dbtool run holds the migration lock"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_changes_nothing(case: Case, cli, project, db, server):
    if case.name == "wrong password" and not server.checks_passwords:
        pytest.skip("this test server accepts any password, so a wrong one cannot be refused")
    schemas = project / "schemas"
    ctx = Ctx(schemas / SERVICE, db, server)
    env = {f"{SERVICE.upper()}_DATABASE_URL": db}
    tree = load_tree(ctx.folder)
    with connect(db) as conn:
        migrate_connection(conn, tree)
        if case.name == "rollback drops a table with rows":
            _insert_a_row(conn)
    if case.name == "rollback of an irreversible migration":
        ctx.add(ctx.next, "irreversible_change", "CREATE TABLE t_irr (id int);",
                "-- dbtool: irreversible the old data cannot be rebuilt\n")
        with connect(db) as conn:
            migrate_connection(conn, load_tree(ctx.folder))
    if case.name == "out-of-order pending":
        _insert_out_of_order(ctx, db)
    lock_holder = None
    if case.name == "lock held by another run":
        # The lock guards writes: an up-to-date database is answered without it, so give the run work.
        ctx.add(ctx.next, "add_pending_table", "CREATE TABLE t_pending (id int);", "DROP TABLE t_pending;")
        lock_holder = psycopg.connect(db, autocommit=True)
        lock_holder.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)
    before = fingerprint(db)
    try:
        command = case.prepare(ctx)
        if not isinstance(command, list):  # the case only changed the tree
            command = ["migrate", SERVICE]
        result = cli(*command, "--schemas-dir", schemas, env=case.env(ctx) if case.env else env)
    finally:
        if lock_holder:
            lock_holder.close()
    assert result.exit_code == case.code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert case.says in lines[0]
    assert "Traceback" not in result.output
    assert_no_crash(result)
    assert PASSWORD not in result.output and ":pw@" not in result.output
    assert fingerprint(db) == before


def _insert_a_row(conn: psycopg.Connection) -> None:
    """A row in refresh_tokens, which the newest identity down file drops."""
    conn.execute("INSERT INTO users (email, password_hash, role, name) VALUES ('a@b.c', 'x', 'student', 'A')")
    user = conn.execute("SELECT id FROM users").fetchone()[0]
    conn.execute("INSERT INTO refresh_tokens (user_id, token, expires_at) VALUES (%s, 't', now())", (user,))


def _insert_out_of_order(ctx: Ctx, dsn: str) -> None:
    """Apply everything, then renumber so that a pending migration sits below applied ones."""
    ctx.add(ctx.next, "late_a", "CREATE TABLE t_late_a (id int);", "DROP TABLE t_late_a;")
    ctx.add(ctx.next, "late_b", "CREATE TABLE t_late_b (id int);", "DROP TABLE t_late_b;")
    tree = load_tree(ctx.folder)
    with connect(dsn) as conn:
        migrate_connection(conn, tree)
        rollback_connection(conn, tree, steps=2)
        migrate_connection(conn, tree)
        # Forget the first late-comer as if it had never been applied, keeping the second.
        late_a = tree[-2]
        conn.execute("DROP TABLE t_late_a")
        conn.execute("DELETE FROM _yoyo_migration WHERE migration_id = %s", (late_a.id,))
        conn.execute("DELETE FROM _dbtool_checksum WHERE migration_id = %s", (late_a.id,))

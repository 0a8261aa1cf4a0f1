"""Every service's migrations build exactly the specification's schema, and go down and up again."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, SCHEMAS, connect

from dbtool.migrate.runner import migrate_connection, rollback_connection
from dbtool.migrate.state import TRACKING_TABLES
from dbtool.migrate.tree import load_tree
from dbtool.schemafile.snapshot import snapshot

SPEC = ROOT / "docs" / "database-design.md"
SHARED_SPEC = ROOT.parent / "shared" / "database-design.md"
# The migrations that build the specification as written; later ones improve on it.
SPEC_VERSIONS = 2
SERVICES = sorted(p.name for p in SCHEMAS.iterdir() if p.is_dir())


def spec_sql() -> dict[str, str]:
    """The SQL blocks of each '### <Name> Service Database (<service>_db)' section of the spec."""
    text = SPEC.read_text(encoding="utf-8")
    design = text.split("## Database Best Practices")[0]
    found: dict[str, str] = {}
    sections = re.split(r"^### .*\((\w+)_db\)\s*$", design, flags=re.MULTILINE)
    for service, body in zip(sections[1::2], sections[2::2]):
        found[service] = "\n".join(re.findall(r"```sql\n(.*?)```", body, flags=re.DOTALL))
    return found


def structure(snap: dict) -> dict:
    """Tables, columns, constraints and indexes: what the specification defines."""
    return {
        name: {k: t[k] for k in ("columns", "constraints", "indexes")} for name, t in snap["tables"].items()
    }


def test_vendored_spec_matches_shared():
    if not SHARED_SPEC.exists():
        pytest.skip("no ../shared/database-design.md beside the project to compare with")
    assert SPEC.read_text() == SHARED_SPEC.read_text()


def test_spec_has_every_service():
    assert sorted(spec_sql()) == SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_the_spec_then_go_down_and_up(service, new_db):
    tree = load_tree(SCHEMAS / service)
    reference, migrated = new_db("spec"), new_db("mig")
    with connect(reference) as conn:
        conn.execute(spec_sql()[service])
        expected = structure(snapshot(conn))
    assert expected, "the spec section defines tables"

    with connect(migrated) as conn:
        done = migrate_connection(conn, tree, to=SPEC_VERSIONS)
        assert [m.version for m in done] == list(range(1, SPEC_VERSIONS + 1))
        assert structure(snapshot(conn)) == expected

        migrate_connection(conn, tree)
        full = snapshot(conn)
        rollback_connection(conn, tree, everything=True)
        empty = snapshot(conn, include_tracking=True)
        assert sorted(empty["tables"]) == sorted(TRACKING_TABLES)
        assert conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()[0] == 0

        migrate_connection(conn, tree)
        assert snapshot(conn) == full


@pytest.mark.parametrize("service", SERVICES)
def test_step_by_step_walk(service, db):
    """Up one, down one, up one, for each migration: each down restores the schema before its up."""
    tree = load_tree(SCHEMAS / service)
    with connect(db) as conn:
        for m in tree:
            before = snapshot(conn)
            migrate_connection(conn, tree, to=m.version)
            after = snapshot(conn)
            assert after != before, f"{m.id} changed nothing"
            rollback_connection(conn, tree, steps=1)
            assert snapshot(conn) == before, f"{m.down} does not undo {m.up}"
            migrate_connection(conn, tree, to=m.version)
            assert snapshot(conn) == after

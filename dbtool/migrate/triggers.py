"""Keep every updated_at column current with the specification's trigger, derived from the live catalog.

Every table of the current schema with an `updated_at` date/time column gets the specification's
`update_updated_at_column()` function and a BEFORE UPDATE trigger named `update_<table>_updated_at`.
A table that lost the column loses the trigger (PostgreSQL keeps it, and every UPDATE would then
fail on the missing field), and the function goes when no table needs it any more, so rolling a
database all the way back leaves neither behind. Running it again changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from ..config import load_toml
from ..errors import BadInput, DbtoolError, Refused

FUNCTION = "update_updated_at_column"
COLUMN = "updated_at"
# The specification's function (section 5), word for word.
FUNCTION_BODY = """
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
"""
FUNCTION_SQL = f"""CREATE OR REPLACE FUNCTION {FUNCTION}()
RETURNS TRIGGER AS $${FUNCTION_BODY}$$ language 'plpgsql'"""
# pg_trigger.tgtype bits: ROW (1) | BEFORE (2) | UPDATE (16).
TRIGGER_TYPE = 1 | 2 | 16
# Two int4 keys for pg_advisory_xact_lock, "dbtl" and "trig" in ASCII: one sync at a time per database.
LOCK_KEYS = (0x6462746C, 0x74726967)
NAMEDATALEN = 63

# Everything a plan needs, in one statement: the tables with the column, our function, and the
# triggers that call it or may hold one of our names (all start 'update_'; the plan keeps the ones
# it wants by exact name, truncated as PostgreSQL truncates).
CATALOG = """
WITH fn AS (
    SELECT p.oid, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = current_schema() AND p.proname = %(fn)s AND p.pronargs = 0
)
SELECT (SELECT coalesce(json_agg(c.relname ORDER BY c.relname), '[]')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND a.attname = %(column)s AND NOT a.attisdropped AND t.typcategory = 'D'),
       (SELECT oid FROM fn), (SELECT prosrc FROM fn),
       (SELECT coalesce(json_agg(json_build_array(
                   c.relname, t.tgname, coalesce(t.tgfoid = (SELECT oid FROM fn), false),
                   t.tgtype = %(type)s AND t.tgenabled <> 'D' AND t.tgqual IS NULL AND t.tgattr = '')
                ORDER BY c.relname, t.tgname), '[]')
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND NOT t.tgisinternal
          AND (t.tgfoid = (SELECT oid FROM fn) OR t.tgname LIKE 'update\\_%%'))"""
CATALOG_PARAMS = {"fn": FUNCTION, "column": COLUMN, "type": TRIGGER_TYPE}


@dataclass(frozen=True)
class Change:
    action: str  # create, replace or drop
    kind: str  # trigger or function
    name: str
    table: str | None
    statements: tuple[str, ...]

    def describe(self) -> str:
        done = {"create": "created", "replace": "replaced", "drop": "dropped"}[self.action]
        where = f" on {self.table}" if self.table else ""
        return f"{done} {self.kind} {self.name}{where}"


@dataclass(frozen=True)
class TriggerPolicy:
    """A service's choice, in its dbtool.toml: `[triggers] sync = false` leaves every trigger alone
    (an adopted schema where updated_at means something else); `skip = ["table", ...]` per table."""

    sync: bool = True
    skip: frozenset[str] = frozenset()


def trigger_policy(schemas_dir: Path, service: str) -> TriggerPolicy:
    path = schemas_dir / service / "dbtool.toml"
    if not path.exists():
        return TriggerPolicy()
    section = load_toml(path).get("triggers", {})
    sync, skip = section.get("sync", True), section.get("skip", [])
    if not isinstance(sync, bool) or not isinstance(skip, list) or not all(isinstance(s, str) for s in skip):
        raise BadInput(f"{path}: [triggers] takes sync = true|false and skip = [\"table\", ...]; fix the file")
    return TriggerPolicy(sync, frozenset(skip))


@dataclass
class TriggerSync:
    """What a sync found and did: the tables kept current, and each change in the order it ran."""

    tables: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False


def trigger_name(table: str) -> str:
    # PostgreSQL truncates longer names; compare with what it will store, or we would recreate forever.
    return f"update_{table}_{COLUMN}".encode()[:NAMEDATALEN].decode(errors="ignore")


def _same_body(prosrc: str) -> bool:
    return re.sub(r"\s+", " ", prosrc).strip() == re.sub(r"\s+", " ", FUNCTION_BODY).strip()


def _create_trigger(table: str) -> str:
    return sql.SQL("CREATE TRIGGER {} BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
        sql.Identifier(trigger_name(table)), sql.Identifier(table), sql.Identifier(FUNCTION)
    ).as_string(None)


def _drop_trigger(name: str, table: str) -> str:
    return sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(name), sql.Identifier(table)).as_string(None)


def plan(conn: psycopg.Connection, policy: TriggerPolicy = TriggerPolicy(), catalog: tuple | None = None) -> TriggerSync:
    """The changes that bring the database to one trigger per updated_at table, nothing else.
    `catalog`: the row of CATALOG when the caller read it already (in the same round trip as others).

    Triggers are found by what they do (a row-level BEFORE UPDATE calling our function), not only by
    name: one left under an old name by a table renamed away and back is a duplicate, and goes."""
    if not policy.sync:
        return TriggerSync()
    names, fn_oid, prosrc, existing = catalog or conn.execute(CATALOG, CATALOG_PARAMS).fetchone()
    tables = [t for t in names if t not in policy.skip]
    function = (fn_oid, prosrc) if fn_oid is not None else None
    wanted = {trigger_name(t): t for t in tables}
    result = TriggerSync(tables=tables)
    changes = result.changes

    if tables and function is None:
        changes.append(Change("create", "function", f"{FUNCTION}()", None, (FUNCTION_SQL,)))
    elif tables and not _same_body(function[1]):
        changes.append(Change("replace", "function", f"{FUNCTION}()", None, (FUNCTION_SQL,)))

    kept: set[str] = set()
    remaining_users = 0  # triggers left calling the function once this plan has run
    for table, name, ours, as_expected in existing:
        if table in policy.skip:
            remaining_users += 1 if ours else 0  # the service manages this table's triggers itself
        elif wanted.get(name) == table and ours and as_expected:
            kept.add(table)
            remaining_users += 1
        elif wanted.get(name) == table:
            # Our name, another function or shape: the convention's trigger takes its place.
            stmts = (_drop_trigger(name, table), _create_trigger(table))
            changes.append(Change("replace", "trigger", name, table, stmts))
            kept.add(table)
            remaining_users += 1
        elif ours and table not in wanted.values():
            changes.append(Change("drop", "trigger", name, table, (_drop_trigger(name, table),)))
        elif ours and as_expected:
            # The convention's trigger under another name (a rename's leftover): the same work twice.
            changes.append(Change("drop", "trigger", name, table, (_drop_trigger(name, table),)))
        elif ours:
            remaining_users += 1  # someone else's trigger on our function: leave it alone
    for table in tables:
        if table not in kept:
            changes.append(Change("create", "trigger", trigger_name(table), table, (_create_trigger(table),)))
            remaining_users += 1

    if not tables and function is not None and remaining_users == 0:
        drop = sql.SQL("DROP FUNCTION {}()").format(sql.Identifier(FUNCTION)).as_string(None)
        changes.append(Change("drop", "function", f"{FUNCTION}()", None, (drop,)))
    return result


def sync_connection(conn: psycopg.Connection, dry_run: bool = False,
                    policy: TriggerPolicy = TriggerPolicy(), catalog: tuple | None = None) -> TriggerSync:
    """Plan and apply in one transaction, so a failure leaves the triggers as they were.

    `catalog`, the CATALOG row the caller read without a lock: when it shows nothing to change (most
    runs), that is the answer, with no transaction or lock taken. The catalog is committed state; a
    concurrent change to the tables syncs the triggers itself when it is done."""
    if catalog is not None:
        seen = plan(conn, policy, catalog)
        if not seen.changes:
            seen.dry_run = dry_run
            return seen
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK_KEYS)
            result = plan(conn, policy)
            result.dry_run = dry_run
            if not dry_run:
                for change in result.changes:
                    for statement in change.statements:
                        conn.execute(statement.encode())
    except psycopg.errors.InsufficientPrivilege as exc:
        raise Refused(
            f"{conn.info.dbname}: not allowed to manage the {COLUMN} triggers ({exc.diag.message_primary});"
            " run as the tables' owner"
        ) from None
    except psycopg.Error as exc:
        raise DbtoolError(
            f"{conn.info.dbname}: {COLUMN} trigger sync failed: {(exc.diag.message_primary or str(exc)).strip()};"
            " nothing was changed"
        ) from None
    return result

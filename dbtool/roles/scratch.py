"""The roles check of `dbtool verify`: on a scratch database, with roles of its own that it drops after.

The migrations ran as the scratch server's admin, like a database migrated before roles existed:
`roles` must bring it over (every object to the owner), a second run must plan nothing, nothing
may break least privilege, and a table the owner creates later must reach the app role by default.
"""

from __future__ import annotations

import dataclasses
import secrets

import psycopg
from psycopg import sql

from .. import server
from ..config import Settings
from .commands import ensure
from .drift import drift
from .names import RoleNames, names_for

NAME = "roles: owner, app and read-only roles hold and a second run changes nothing"


def check_roles(conninfo: str, service: str, settings: Settings) -> tuple[str, bool, str]:
    """(check name, ok, detail) for one service's scratch database."""
    names = names_for(service, f"{service[:20]}_scratch_{secrets.token_hex(4)}")
    quiet = dataclasses.replace(settings, env="test", environ={})  # no password variables, no prod notes
    with server.connect(conninfo, wait=settings.wait) as conn:
        try:
            first = ensure(conn, names, [], quiet)
            problems = [f.message for f in drift(conn, names, [])]
            problems += [f"a second run would run {s.sql}" for s in ensure(conn, names, [], quiet, dry_run=True).steps]
            if not _new_table_reaches_app(conn, names):
                problems.append(f"a table {names.owner} creates later is not writable by {names.app}")
        except psycopg.Error as exc:
            reason = (exc.diag.message_primary or str(exc)).strip()
            return NAME, False, (f"{reason}; the scratch server's role must be a superuser (or have CREATEROLE"
                                 " and own the database) to check the roles")
        finally:
            _drop(conn, names)
    if problems:
        return NAME, False, "; ".join(problems)
    return NAME, True, f"{len(first.steps)} statements gave the schema to {names.owner}; nothing left to change"


def _new_table_reaches_app(conn: psycopg.Connection, names: RoleNames) -> bool:
    with conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(names.owner)))
        conn.execute("CREATE TABLE _dbtool_roles_probe (id int)")
        row = conn.execute("SELECT has_table_privilege(%s, '_dbtool_roles_probe', 'INSERT'),"
                           " has_table_privilege(%s, '_dbtool_roles_probe', 'TRUNCATE')",
                           (names.app, names.app)).fetchone()
    return bool(row[0] and not row[1])


def _drop(conn: psycopg.Connection, names: RoleNames) -> None:
    """Give the objects back to the admin and drop the scratch roles: they exist for this check only."""
    if conn.closed or conn.broken:
        return
    existing = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(names.all),))]
    if not existing:
        return
    listed = sql.SQL(", ").join(map(sql.Identifier, existing))
    conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(listed))
    for role in reversed(existing):  # one at a time: one DROP OWNED for all trips on default ACLs
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    conn.execute(sql.SQL("DROP ROLE {}").format(listed))

"""Migrating as the service's owner role: what migrate and rollback wrap their work in.

Apart from the `roles` command's machinery (commands.py, plan.py), which loads only where dbtool
manages the roles itself (dev and test on the embedded server).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

import psycopg

from .names import role_names

if TYPE_CHECKING:
    from ..config import Settings, Target

SCHEMA = "public"  # the schema `roles` gives to the owner role


# Only where `roles` gave this database's schema to the owner: elsewhere on the same server (another
# env's database) the owner may not even create in public. set_config('role') is SET ROLE, as a value.
_BECOME = """SELECT set_config('role', rolname, false) IS NOT NULL FROM pg_roles
WHERE rolname = %s AND current_user <> rolname AND pg_has_role(current_user, oid, 'MEMBER')
  AND oid = (SELECT nspowner FROM pg_namespace WHERE nspname = %s)"""


def owner_statement(settings: Settings, target: Target) -> tuple[str, tuple] | None:
    """The one statement that becomes the service's owner role where it should (its row says it did),
    for a caller to send in its own first round trip; None where dbtool manages the roles, which are
    brought up to date first."""
    if _managed(settings, target, dry_run=False):
        return None
    return _BECOME, (role_names(settings, target.service).owner, SCHEMA)


def _managed(settings: Settings, target: Target, dry_run: bool) -> bool:
    return target.embedded and settings.env != "prod" and not dry_run


@contextmanager
def as_owner(conn: psycopg.Connection, settings: Settings, target: Target, dry_run: bool = False,
             became: bool | None = None) -> Iterator[None]:
    """Run what follows as the service's owner role, so every object it creates is the owner's.

    In dev and test on the embedded server the roles are first created or brought up to date;
    wherever the owner role owns the schema and this session may become it, dbtool becomes it (SET
    ROLE). Afterwards the roles are synced again there, which takes the app role's default grants off
    tracking tables that the first migration just created. `became`: the caller already ran
    `owner_statement`, and this is what its row said.
    """
    names = role_names(settings, target.service)
    managed = _managed(settings, target, dry_run)
    if managed:
        from .commands import _others, ensure  # the roles machinery, only where dbtool manages them

        ensure(conn, names, _others(settings, names), settings)
    if became is None:
        row = conn.execute(_BECOME, (names.owner, SCHEMA)).fetchone()
        became = bool(row and row[0])
    if not became:
        yield
        return
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        if not conn.closed and not conn.broken:
            try:
                conn.execute("RESET ROLE")
                if managed:
                    ensure(conn, names, _others(settings, names), settings)
            except psycopg.Error:
                if not failed:
                    raise  # otherwise the error on its way matters more

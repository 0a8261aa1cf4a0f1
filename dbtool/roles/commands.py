"""`dbtool roles`, and migrating as the owner role: callable from Python, settings first.

>>> from dbtool import config
>>> from dbtool.roles.commands import roles
>>> roles(config.make_settings(), ["identity"], dry_run=True)
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import psycopg

from .. import server
from ..config import Settings, Target, resolve_target, select_services
from ..databases import database_exists, locate
from ..errors import DatabaseUnavailable, Refused
from .drift import Finding, drift
from .names import RoleNames, every_service_names, role_names
from .plan import SCHEMA, Plan, compute, read_catalog

# Two int4 keys for pg_advisory_xact_lock, "dbtl" and "role" in ASCII: one roles run at a time per
# database, so concurrent `dbtool migrate` runs never race on CREATE ROLE or a GRANT.
LOCK_KEYS = (0x6462746C, 0x726F6C65)


@dataclass
class RolesResult:
    service: str
    where: str
    names: RoleNames
    plan: Plan
    applied: bool  # False for --dry-run and --check
    findings: list[Finding] = field(default_factory=list)


def _others(settings: Settings, names: RoleNames) -> list[RoleNames]:
    return [n for n in every_service_names(settings) if n.service != names.service]


def ensure(conn: psycopg.Connection, names: RoleNames, others: list[RoleNames], settings: Settings,
           dry_run: bool = False) -> Plan:
    """Plan from the catalog and apply, in one transaction under the roles lock: all of it or nothing."""
    with conn.transaction(force_rollback=dry_run):
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", LOCK_KEYS)
        plan = compute(conn, read_catalog(conn, names, others), names, others, settings.environ, settings.env)
        if not dry_run and plan.steps:
            for step in plan.steps:
                conn.execute(step.run if step.run is not None else step.sql.encode())
            # A GRANT or REVOKE the role may not make is only a warning in PostgreSQL: look again.
            left = compute(conn, read_catalog(conn, names, others), names, others, settings.environ, settings.env)
            if left.steps:
                raise DatabaseUnavailable(
                    f"{names.service}: permission denied: {conn.info.user} could not run '{left.steps[0].sql}'"
                    " (PostgreSQL only warns); run dbtool roles as a superuser or the role that owns the"
                    " objects and may create roles; nothing was changed")
    return plan


def roles(settings: Settings, services: list[str] | None = None, dry_run: bool = False, check: bool = False,
          target_event: Callable[[str, str], None] = lambda service, where: None) -> list[RolesResult]:
    """Create or bring up to date each service's roles and grants; with check, only report drift."""
    chosen = select_services(settings, services)
    named = {s: role_names(settings, s) for s in chosen}  # every dbtool.toml checked before any connection
    results = []
    for service in chosen:
        names = named[service]
        target = resolve_target(service, settings)
        conninfo, where = locate(target, settings)
        target_event(service, where)
        if target.may_create and not (dry_run or check):
            server.ensure_database(conninfo, wait=settings.wait)
        elif not database_exists(conninfo, settings):
            raise Refused(f"{service}: database {target.dbname} does not exist; run 'dbtool migrate {service}'"
                          " first; nothing was changed")
        with server.connect(conninfo, wait=settings.wait) as conn:
            others = _others(settings, names)
            plan = ensure(conn, names, others, settings, dry_run=dry_run or check)
            findings = drift(conn, names, others) if check else []
        results.append(RolesResult(service, where, names, plan, not (dry_run or check), findings))
    return results


@contextmanager
def as_owner(conn: psycopg.Connection, settings: Settings, target: Target, dry_run: bool = False) -> Iterator[None]:
    """Run what follows as the service's owner role, so every object it creates is the owner's.

    In dev and test on the embedded server the roles are first created or brought up to date;
    wherever the owner role owns the schema and this session may become it, dbtool becomes it (SET
    ROLE). Afterwards the roles are synced again there, which takes the app role's default grants off
    tracking tables that the first migration just created.
    """
    names = role_names(settings, target.service)
    managed = target.embedded and settings.env != "prod" and not dry_run
    if managed:
        ensure(conn, names, _others(settings, names), settings)
    # Only where `roles` gave this database's schema to the owner: elsewhere on the same server (another
    # env's database) the owner may not even create in public.
    row = conn.execute("SELECT current_user <> rolname AND pg_has_role(current_user, oid, 'MEMBER')"
                       " AND oid = (SELECT nspowner FROM pg_namespace WHERE nspname = %s)"
                       " FROM pg_roles WHERE rolname = %s", (SCHEMA, names.owner)).fetchone()
    if not (row and row[0]):
        yield
        return
    conn.execute(f"SET ROLE {names.owner}")
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

"""`dbtool roles`, and migrating as the owner role: callable from Python, settings first.

>>> from dbtool import config
>>> from dbtool.roles.commands import roles
>>> roles(config.make_settings(), ["identity"], dry_run=True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import psycopg

from .. import server
from ..config import Settings, resolve_target, select_services
from ..databases import database_exists, locate, missing_database
from ..errors import DatabaseUnavailable, Refused
from ..migrate.locks import MIGRATION_LOCK_KEYS
from .drift import Finding, drift
from .names import RoleNames, every_service_names, role_names
from .plan import Plan, compute, read_catalog

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
        _wait_for_migrate(conn, names.service, settings.lock_timeout)
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


def _wait_for_migrate(conn: psycopg.Connection, service: str, timeout: float) -> None:
    """Wait for a migrate of this database to finish: grants planned while it creates or drops tables
    would miss a table or name one that is gone. Migrate's own sync, in the session that holds the
    lock, passes straight through; the lock goes with this transaction."""
    before = conn.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                          (f"{round(timeout * 1000)}ms",)).fetchone()[0]
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK_KEYS)
    except psycopg.errors.LockNotAvailable:
        raise DatabaseUnavailable(f"{service}: a dbtool migrate of this database still runs after {timeout:g}s;"
                                  " wait for it to finish or raise --lock-timeout; nothing was changed") from None
    conn.execute("SELECT set_config('lock_timeout', %s, true)", (before,))


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
        elif not database_exists(conninfo, settings, service):
            if not target.may_create:  # prod: nothing will create it, so it is the URL or --env (exit 3)
                raise missing_database(settings, service, target.dbname)
            raise Refused(f"{service}: database {target.dbname} does not exist; run 'dbtool migrate {service}'"
                          " first; nothing was changed")
        with server.connect(conninfo, wait=settings.wait) as conn:
            others = _others(settings, names)
            plan = ensure(conn, names, others, settings, dry_run=dry_run or check)
            findings = drift(conn, names, others) if check else []
        results.append(RolesResult(service, where, names, plan, not (dry_run or check), findings))
    return results

"""Helpers for tests that need every service's database at once (seed, triggers, cross-service checks)."""

from __future__ import annotations

from conftest import SCHEMAS

SERVICES = sorted(p.name for p in SCHEMAS.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def databases(new_db) -> dict[str, str]:
    """A fresh database per service, as {service: conninfo}."""
    return {service: new_db(service) for service in SERVICES}


def env_for(dbs: dict[str, str]) -> dict[str, str]:
    """The <SERVICE>_DATABASE_URL variables that point dbtool at these databases."""
    return {f"{service.upper()}_DATABASE_URL": conninfo for service, conninfo in dbs.items()}


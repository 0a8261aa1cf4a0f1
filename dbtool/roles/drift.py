"""What breaks least privilege in a service's database, read from the catalog; `roles --check` and `verify` report it.

Four kinds, each a finding: an object the owner role does not own, a grant to PUBLIC, an app role
that can create or drop (or truncate), and a role of another service that can connect.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from .names import RoleNames
from .plan import PUBLIC, SCHEMA, read_catalog


@dataclass(frozen=True)
class Finding:
    kind: str  # missing-role, not-owned, public-grant, app-can-create, other-service-connect
    message: str


def drift(conn: psycopg.Connection, names: RoleNames, others: list[RoleNames]) -> list[Finding]:
    catalog = read_catalog(conn, names, others)
    found = [Finding("missing-role", f"role {r} does not exist") for r in names.all if r not in catalog.roles]
    owner = names.owner
    if catalog.schema_owner != owner:
        found.append(Finding("not-owned", f"schema {SCHEMA} is owned by {catalog.schema_owner}, not {owner}"))
    for obj in catalog.objects:
        if obj.owner != owner:
            found.append(Finding("not-owned", f"{obj.kind.lower()} {obj.name} is owned by {obj.owner}, not {owner}"))
    public = [(f'database "{catalog.database}"', catalog.database_grants), (f"schema {SCHEMA}", catalog.schema_grants)]
    public += [(f"{o.kind.lower()} {o.name}", o.grants) for o in catalog.objects]
    for what, grants in public:
        if grants.get(PUBLIC):
            found.append(Finding("public-grant", f"{what} grants {', '.join(sorted(grants[PUBLIC]))} to PUBLIC"))
    if catalog.functions_public_by_default:
        found.append(Finding("public-grant", f"functions {owner} creates get EXECUTE for PUBLIC by default"))
    if names.app in catalog.roles:
        found += [Finding("app-can-create", f"{names.app} {what}") for what in _app_powers(conn, names)]
    for other in others:
        for role in other.all:
            if role in catalog.roles and role not in names.all and conn.execute(
                    "SELECT has_database_privilege(%s, current_database(), 'CONNECT')", (role,)).fetchone()[0]:
                found.append(Finding("other-service-connect",
                                     f"{role} (service {other.service}) can connect to {catalog.database}"))
    return found


def _app_powers(conn: psycopg.Connection, names: RoleNames) -> list[str]:
    """What the app role may do beyond reading and writing rows, through any role it is a member of."""
    row = conn.execute(
        """SELECT r.rolsuper OR r.rolcreatedb OR r.rolcreaterole,
                  has_schema_privilege(r.oid, %(schema)s, 'CREATE'),
                  has_database_privilege(r.oid, current_database(), 'CREATE'),
                  pg_has_role(r.oid, (SELECT oid FROM pg_roles WHERE rolname = %(owner)s), 'USAGE'),
                  (SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c
                   WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p')
                     AND (pg_has_role(r.oid, c.relowner, 'USAGE')
                          OR has_table_privilege(r.oid, c.oid, 'TRUNCATE')))
           FROM pg_roles r WHERE r.rolname = %(app)s""",
        {"schema": SCHEMA, "owner": names.owner, "app": names.app}).fetchone()
    powers = []
    if row[0]:
        powers.append("is a superuser or may create databases or roles")
    if row[1]:
        powers.append(f"can create objects in schema {SCHEMA}")
    if row[2]:
        powers.append("can create schemas in the database")
    if row[3]:
        powers.append(f"has the rights of {names.owner} (a member of it): it can alter and drop every table")
    elif row[4]:
        powers.append(f"can drop or truncate {row[4]}")
    return powers

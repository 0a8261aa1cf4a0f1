"""The statements that bring one service's roles, ownership and grants to the desired state.

Everything is computed from the catalog as it is now (roles, owners, ACLs, default privileges), so
a second run plans nothing. The desired state:

- the three roles exist, none a superuser or able to create roles or databases; app and readonly
  log in, the owner logs in only when its password variable is set;
- the owner owns schema `public` and every table, sequence, view, function and type in it,
  dbtool's tracking tables and the updated_at trigger function included;
- app: SELECT, INSERT, UPDATE, DELETE on the tables (not the tracking tables), USAGE on the
  sequences, EXECUTE on the functions; readonly: SELECT on the tables; PUBLIC: nothing;
- the same grants by default for whatever the owner creates later;
- CONNECT on the database for the three roles only (and TEMPORARY for the owner and readonly, whose
  reports use temporary tables); not PUBLIC, not another service's roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import psycopg
from psycopg import sql

from ..migrate.state import TRACKING_TABLES
from .names import RoleNames, password_variable
from .owner import SCHEMA
from .passwords import matches, password_for, verifier

PUBLIC = "PUBLIC"
DML = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
_ORDER = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN",
          "USAGE", "EXECUTE", "CREATE", "CONNECT", "TEMPORARY")
# relkind -> the word ALTER ... OWNER TO uses.
_ALTER = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE", "S": "SEQUENCE"}

Grants = dict[str, set[str]]  # grantee (a role name or PUBLIC) -> privileges


@dataclass(frozen=True)
class Step:
    sql: str  # what is shown; a password never is
    run: Any = None  # what runs when it differs from the text shown (a password's verifier)


@dataclass
class Obj:
    """A relation, routine or type of the schema, with its owner and grants."""

    kind: str  # TABLE, SEQUENCE, ROUTINE, TYPE, DOMAIN, VIEW, ...
    name: str  # as SQL writes it (quoted where needed; a routine with its argument types)
    owner: str
    grants: Grants = field(default_factory=dict)
    linked: bool = False  # a sequence owned by a column: its owner follows the table's
    tracking: bool = False


@dataclass
class Catalog:
    database: str
    roles: dict[str, dict[str, Any]]  # rolname -> pg_roles row (+ password where readable)
    schema_owner: str
    schema_grants: Grants
    database_grants: Grants
    objects: list[Obj]
    defaults: dict[str, Grants]  # 'r' / 'S' / 'f' -> grants by default in the schema
    functions_public_by_default: bool  # the owner's new functions get EXECUTE for PUBLIC


@dataclass
class Plan:
    service: str
    database: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _grantee(column: str) -> str:
    return f"CASE WHEN {column} = 0 THEN 'PUBLIC' ELSE pg_get_userbyid({column}) END"


def _grants(rows) -> dict[Any, Grants]:  # noqa: ANN001 - rows of (key, grantee, privilege)
    found: dict[Any, Grants] = {}
    for key, grantee, privilege in rows:
        found.setdefault(key, {}).setdefault(grantee, set()).add(privilege)
    return found


def read_catalog(conn: psycopg.Connection, names: RoleNames, others: list[RoleNames]) -> Catalog:
    wanted = list(names.all) + [r for o in others for r in o.all]
    roles = {row[0]: dict(zip(("name", "login", "super", "createdb", "createrole", "bypassrls"), row))
             for row in conn.execute(
                 "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls"
                 " FROM pg_roles WHERE rolname = ANY(%s)", (wanted,))}
    if roles and conn.execute("SELECT has_table_privilege('pg_authid', 'SELECT')").fetchone()[0]:
        for name, password in conn.execute(
                "SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)", (list(roles),)):
            roles[name]["password"] = password
    database = conn.execute("SELECT current_database()").fetchone()[0]
    database_grants = _grants(conn.execute(
        f"SELECT 0, {_grantee('a.grantee')}, a.privilege_type FROM pg_database d,"
        " aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = current_database()")).get(0, {})
    schema_owner = conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
                                (SCHEMA,)).fetchone()[0]
    schema_grants = _grants(conn.execute(
        f"SELECT 0, {_grantee('a.grantee')}, a.privilege_type FROM pg_namespace n,"
        " aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a WHERE n.nspname = %s", (SCHEMA,))).get(0, {})
    objects = _objects(conn)
    defaults, public_functions = _defaults(conn, names.owner)
    return Catalog(database, roles, schema_owner, schema_grants, database_grants, objects, defaults,
                   public_functions)


_NOT_EXTENSION = """NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {cls}::regclass
                    AND e.objid = {oid} AND e.deptype = 'e')"""

_RELATIONS = f"""
SELECT c.oid, quote_ident(c.relname), c.relname, c.relkind, pg_get_userbyid(c.relowner),
       EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
FROM pg_class c
WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND {_NOT_EXTENSION.format(cls="'pg_class'", oid="c.oid")}
ORDER BY c.relname"""

_RELATION_GRANTS = f"""
SELECT c.oid, {_grantee('a.grantee')}, a.privilege_type
FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char",
                                                          c.relowner))) a
WHERE c.relnamespace = %(schema)s::regnamespace"""

_ROUTINES = f"""
SELECT p.oid, p.oid::regprocedure::text, pg_get_userbyid(p.proowner)
FROM pg_proc p
WHERE p.pronamespace = %(schema)s::regnamespace AND p.prokind IN ('f', 'p')
  AND {_NOT_EXTENSION.format(cls="'pg_proc'", oid="p.oid")}
ORDER BY 2"""

_ROUTINE_GRANTS = f"""
SELECT p.oid, {_grantee('a.grantee')}, a.privilege_type
FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
WHERE p.pronamespace = %(schema)s::regnamespace"""

# Enums, domains, ranges and stand-alone composite types; a table's row type follows the table.
_TYPES = f"""
SELECT t.oid::regtype::text, t.typtype, pg_get_userbyid(t.typowner)
FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE t.typnamespace = %(schema)s::regnamespace
  AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
  AND {_NOT_EXTENSION.format(cls="'pg_type'", oid="t.oid")}
ORDER BY 1"""


def _objects(conn: psycopg.Connection) -> list[Obj]:
    where = {"schema": SCHEMA}
    relation_grants = _grants(conn.execute(_RELATION_GRANTS, where))
    routine_grants = _grants(conn.execute(_ROUTINE_GRANTS, where))
    objects = [
        Obj(_ALTER[kind], quoted, owner, relation_grants.get(oid, {}), linked=linked and kind == "S",
            tracking=bare in TRACKING_TABLES)
        for oid, quoted, bare, kind, owner, linked in conn.execute(_RELATIONS, where)
    ]
    objects += [Obj("ROUTINE", name, owner, routine_grants.get(oid, {}))
                for oid, name, owner in conn.execute(_ROUTINES, where)]
    objects += [Obj("DOMAIN" if typtype == "d" else "TYPE", name, owner)
                for name, typtype, owner in conn.execute(_TYPES, where)]
    return objects


def _defaults(conn: psycopg.Connection, owner: str) -> tuple[dict[str, Grants], bool]:
    rows = conn.execute(
        f"""SELECT d.defaclnamespace <> 0, d.defaclobjtype, {_grantee('a.grantee')}, a.privilege_type
            FROM pg_default_acl d LEFT JOIN LATERAL aclexplode(d.defaclacl) a ON true
            WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = %s)
              AND d.defaclnamespace IN (0, %s::regnamespace)""", (owner, SCHEMA)).fetchall()
    in_schema = _grants(((objtype, grantee, priv) for scoped, objtype, grantee, priv in rows
                         if scoped and grantee is not None))
    # Without an entry of its own, PostgreSQL's built-in default gives PUBLIC EXECUTE on new functions.
    global_functions = [(grantee, priv) for scoped, objtype, grantee, priv in rows if not scoped and objtype == "f"]
    public = not global_functions or (PUBLIC, "EXECUTE") in global_functions
    return in_schema, public


# ---------------------------------------------------------------- the desired state


def desired_object(obj: Obj, names: RoleNames) -> Grants:
    none: set[str] = set()
    if obj.kind == "SEQUENCE":
        return {names.app: none if obj.tracking else {"USAGE"}, names.readonly: none, PUBLIC: none}
    if obj.kind == "ROUTINE":
        return {names.app: {"EXECUTE"}, names.readonly: none, PUBLIC: none}
    if obj.kind in ("TYPE", "DOMAIN"):
        return {}  # USAGE on types stays PostgreSQL's default: using a type grants no data
    return {names.app: none if obj.tracking else set(DML), names.readonly: {"SELECT"}, PUBLIC: none}


def desired_defaults(names: RoleNames) -> dict[str, Grants]:
    return {
        "r": {names.app: set(DML), names.readonly: {"SELECT"}, PUBLIC: set()},
        "S": {names.app: {"USAGE"}, names.readonly: set(), PUBLIC: set()},
        "f": {names.app: {"EXECUTE"}, names.readonly: set(), PUBLIC: set()},
    }


def desired_database(names: RoleNames, others: list[RoleNames], existing: set[str]) -> Grants:
    grants: Grants = {PUBLIC: set()}
    for other in others:
        for role in other.all:
            if role in existing and role not in names.all:
                grants[role] = set()
    # TEMPORARY for dbtool's reports (check-references streams values into a temporary table).
    grants.update({names.owner: {"CONNECT", "TEMPORARY"}, names.app: {"CONNECT"},
                   names.readonly: {"CONNECT", "TEMPORARY"}})
    return grants


def _privileges(privileges: set[str]) -> str:
    return ", ".join(sorted(privileges, key=lambda p: _ORDER.index(p) if p in _ORDER else len(_ORDER)))


def diff(current: Grants, desired: Grants, on: str, default_for: str | None = None) -> list[Step]:
    """GRANT what is missing and REVOKE what is extra, per grantee the desired state names."""
    prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {default_for} IN SCHEMA {SCHEMA} " if default_for else ""
    steps = []
    for grantee, wanted in desired.items():
        have = current.get(grantee, set())
        if have - wanted:
            steps.append(Step(f"{prefix}REVOKE {_privileges(have - wanted)} ON {on} FROM {grantee}"))
        if wanted - have:
            steps.append(Step(f"{prefix}GRANT {_privileges(wanted - have)} ON {on} TO {grantee}"))
    return steps


_DEFAULT_WORD = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS"}


def compute(conn: psycopg.Connection, catalog: Catalog, names: RoleNames, others: list[RoleNames],
            environ: Mapping[str, str], env: str) -> Plan:
    plan = Plan(names.service, catalog.database)
    for role in names.all:
        plan.steps += _role_steps(conn, catalog.roles.get(role), role, role != names.owner, environ)
        if role != names.owner and env == "prod" and not password_for(role, environ):
            plan.notes.append(f"{role} has no password from dbtool: set {password_variable(role)} and run"
                              " dbtool roles again, or give it one by hand")
    owner = names.owner
    if catalog.schema_owner != owner:
        plan.steps.append(Step(f"ALTER SCHEMA {SCHEMA} OWNER TO {owner}"))
    for obj in catalog.objects:
        if obj.owner != owner and not obj.linked:
            plan.steps.append(Step(f"ALTER {obj.kind} {obj.name} OWNER TO {owner}"))
    plan.steps += diff(catalog.database_grants, desired_database(names, others, set(catalog.roles)),
                       f'DATABASE "{catalog.database}"')
    plan.steps += diff(catalog.schema_grants, {names.app: {"USAGE"}, names.readonly: {"USAGE"}, PUBLIC: set()},
                       f"SCHEMA {SCHEMA}")
    for obj in catalog.objects:
        word = "TABLE" if obj.kind in ("VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE") else obj.kind
        plan.steps += diff(obj.grants, desired_object(obj, names), f"{word} {obj.name}")
    for objtype, desired in desired_defaults(names).items():
        plan.steps += diff(catalog.defaults.get(objtype, {}), desired, _DEFAULT_WORD[objtype], default_for=owner)
    if catalog.functions_public_by_default:
        plan.steps.append(Step(f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"))
    return plan


def _role_steps(conn: psycopg.Connection, row: dict | None, role: str, login: bool,
                environ: Mapping[str, str]) -> list[Step]:
    password = password_for(role, environ)
    login = login or password is not None  # the owner logs in where a team gives dbtool its own
    steps = []
    if row is None:
        steps.append(Step(f"CREATE ROLE {role} {'LOGIN' if login else 'NOLOGIN'}"))
    else:
        if login and not row["login"]:
            steps.append(Step(f"ALTER ROLE {role} LOGIN"))
        powers = [word for word, key in (("NOSUPERUSER", "super"), ("NOCREATEDB", "createdb"),
                                         ("NOCREATEROLE", "createrole"), ("NOBYPASSRLS", "bypassrls")) if row[key]]
        if powers:
            steps.append(Step(f"ALTER ROLE {role} {' '.join(powers)}"))
    # Set on creation, and again when the stored verifier (readable by a superuser) does not match.
    if password is not None and (row is None or ("password" in row and not matches(row["password"], password))):
        run = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                          sql.Literal(verifier(conn, role, password)))
        steps.append(Step(f"ALTER ROLE {role} PASSWORD '***'  -- from ${password_variable(role)}", run))
    return steps

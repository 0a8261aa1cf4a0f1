"""The one answer to "which database does a service use, does it exist, and in what migration state".
"""

from __future__ import annotations

from . import server
from .config import Settings, Target, creates_databases, resolve_target
from .errors import DatabaseUnavailable, Refused
from .migrate.state import State, read_state
from .migrate.tree import Migration, load_tree


def locate(target: Target, settings: Settings) -> tuple[str, str]:
    """The conninfo of a service's database (starting the embedded server if it is the one) and where
    it is, for people: host, database, user and how it was chosen; never the password."""
    conninfo = server.target_conninfo(target, settings)
    return conninfo, server.describe_target(target, conninfo)


def database_exists(conninfo: str, settings: Settings, service: str = "") -> bool:
    return _read_state(conninfo, [], settings, service).database_exists


def peek_state(conninfo: str, tree: list[Migration], settings: Settings) -> State:
    """The state without changing anything: a database that does not exist has nothing applied, where
    migrate would create it (dev, test). Where it never does (prod), a missing database is no state
    but a wrong URL or --env: exit 3, as in every command that reads one."""
    state = _read_state(conninfo, tree, settings)
    if not state.database_exists and not creates_databases(settings):
        from psycopg.conninfo import conninfo_to_dict

        dbname = str(conninfo_to_dict(conninfo)["dbname"])
        raise missing_database(settings, tree[0].service if tree else dbname, dbname)
    return state


def _read_state(conninfo: str, tree: list[Migration], settings: Settings, service: str = "") -> State:
    """The server's refusal says a database does not exist, on the one connection the state is read on."""
    from psycopg.conninfo import conninfo_to_dict

    dbname = str(conninfo_to_dict(conninfo)["dbname"])
    try:
        conn = server.connect(conninfo, wait=settings.wait)
    except DatabaseUnavailable as exc:
        if f'database "{dbname}" does not exist' in str(exc):
            return State(tree, {}, database_exists=False)
        raise
    with conn:
        return read_state(conn, tree, service)


def require_database(settings: Settings, service: str, then: str = "") -> tuple[str, str]:
    """(conninfo, where) of a service's database that must exist already: the one check, with the one
    exit code (3), that every command reading a database makes. `then` names what to run after."""
    target = resolve_target(service, settings)
    conninfo, where = locate(target, settings)
    if not database_exists(conninfo, settings, service):
        raise missing_database(settings, service, target.dbname, then)
    return conninfo, where


def missing_database(settings: Settings, service: str, dbname: str, then: str = "") -> DatabaseUnavailable:
    """Exit 3 and the fix: migrate where it creates the database, else create it or fix the URL or --env."""
    env = f" --env {settings.env}" if settings.env != "dev" else ""
    check = f", or check --env (now {settings.env})" if settings.env != "dev" else ""
    if not creates_databases(settings):
        return DatabaseUnavailable(
            f"{service}: database {dbname} does not exist, and --env {settings.env} never creates one; check the"
            f" database URL and --env (now {settings.env}), or create the database and run"
            f" 'dbtool migrate {service}{env}'{then}")
    return DatabaseUnavailable(f"{service}: database {dbname} does not exist; run 'dbtool migrate {service}{env}'"
                               f"{then} first{check}")


def migrated_conninfo(settings: Settings, service: str) -> tuple[str, str]:
    """(conninfo, description) of a service's database, refusing one that is missing or not fully migrated."""

    tree = load_tree(settings.schemas_dir / service)
    target = resolve_target(service, settings)
    conninfo = server.target_conninfo(target, settings)
    state = peek_state(conninfo, tree, settings)
    first = f"run 'dbtool migrate {service}' first; nothing was written"
    if not state.database_exists:
        raise missing_database(settings, service, target.dbname)
    if state.edited or state.missing:
        raise Refused(f"{service}: database {target.dbname} has drifted from its migrations;"
                      f" see 'dbtool status {service}'; nothing was written")
    if state.pending:
        ids = ", ".join(m.id for m in state.pending)
        raise Refused(f"{service}: database {target.dbname} has {len(state.pending)} pending"
                      f" migration(s) ({ids}); {first}")
    return conninfo, server.describe_target(target, conninfo)

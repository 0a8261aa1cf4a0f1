"""The one answer to "which database does a service use, does it exist, and in what migration state".
"""

from __future__ import annotations

from psycopg.conninfo import make_conninfo

from . import server
from .config import Settings, Target, resolve_target
from .errors import Refused
from .migrate.state import State, read_state
from .migrate.tree import Migration, load_tree


def locate(target: Target, settings: Settings) -> tuple[str, str]:
    """The conninfo of a service's database (starting the embedded server if it is the one) and where
    it is, for people: host, database, user and how it was chosen; never the password."""
    conninfo = server.target_conninfo(target, settings)
    return conninfo, server.describe_target(target, conninfo)


def database_exists(conninfo: str, settings: Settings) -> bool:
    return peek_state(conninfo, [], settings).database_exists


def peek_state(conninfo: str, tree: list[Migration], settings: Settings) -> State:
    """The state without changing anything: a database that does not exist has nothing applied."""
    from psycopg.conninfo import conninfo_to_dict

    dbname = str(conninfo_to_dict(conninfo)["dbname"])
    try:
        with server.connect(make_conninfo(conninfo, dbname="postgres"), wait=settings.wait) as admin:
            exists = server.has_database(admin, dbname)
    except Exception:
        exists = True  # no access to the maintenance database: let the real connection tell
    if not exists:
        return State(tree, {}, database_exists=False)
    with server.connect(conninfo, wait=settings.wait) as conn:
        return read_state(conn, tree)


def migrated_conninfo(settings: Settings, service: str) -> tuple[str, str]:
    """(conninfo, description) of a service's database, refusing one that is missing or not fully migrated."""

    tree = load_tree(settings.schemas_dir / service)
    target = resolve_target(service, settings)
    conninfo = server.target_conninfo(target, settings)
    state = peek_state(conninfo, tree, settings)
    first = f"run 'dbtool migrate {service}' first; nothing was written"
    if not state.database_exists:
        raise Refused(f"{service}: database {target.dbname} does not exist; {first}")
    if state.edited or state.missing:
        raise Refused(f"{service}: database {target.dbname} has drifted from its migrations;"
                      f" see 'dbtool status {service}'; nothing was written")
    if state.pending:
        ids = ", ".join(m.id for m in state.pending)
        raise Refused(f"{service}: database {target.dbname} has {len(state.pending)} pending"
                      f" migration(s) ({ids}); {first}")
    return conninfo, server.describe_target(target, conninfo)

"""What runs on each database of a fleet: the per-database core, one connection per target.

Fleet databases are never created: a tenant that does not exist is that target's failure.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .. import server
from ..config import Settings
from ..migrate.state import State, read_state
from ..migrate.tree import Migration
from .discover import Target
from .waves import Outcome


def version(state: State) -> int:
    """The highest applied migration of the tree; 0 for none."""
    return max((m.version for m in state.applied_migrations), default=0)


def migrating(settings: Settings, tree: list[Migration], to: int | None = None) -> Callable[[Target, Outcome], None]:
    from ..migrate.runner import migrate_connection

    def action(target: Target, outcome: Outcome) -> None:
        with server.connect(target.conninfo, wait=settings.wait) as conn:
            before = read_state(conn, tree)
            outcome.before = outcome.after = version(before)
            done = migrate_connection(conn, tree, to, settings.lock_timeout)
            outcome.applied = [m.id for m in done]
            if done:
                _sync_triggers(conn)
                outcome.after = max(m.version for m in done)

    return action


def rolling_back(settings: Settings, tree: list[Migration], steps: int | None, to: int | None,
                 everything: bool, force: bool) -> Callable[[Target, Outcome], None]:
    from ..migrate.runner import rollback_connection

    def action(target: Target, outcome: Outcome) -> None:
        with server.connect(target.conninfo, wait=settings.wait) as conn:
            outcome.before = version(read_state(conn, tree))
            done = rollback_connection(conn, tree, steps, to, everything, force, settings.lock_timeout)
            outcome.applied = [m.id for m in done]
            if done:
                _sync_triggers(conn)
            outcome.after = version(read_state(conn, tree))

    return action


def reading_status(settings: Settings, tree: list[Migration]) -> Callable[[Target, Outcome], None]:
    def action(target: Target, outcome: Outcome) -> None:
        with server.connect(target.conninfo, wait=settings.wait) as conn:
            state = read_state(conn, tree)
        outcome.before = outcome.after = version(state)
        outcome.detail = state

    return action


def auditing(settings: Settings, service: str, min_size: int | str) -> Callable[[Target, Outcome], None]:
    from ..inspect.audit import audit_connection, load_silences, parse_size

    silences, min_bytes = load_silences(settings, service), parse_size(min_size)

    def action(target: Target, outcome: Outcome) -> None:
        with server.connect(target.conninfo, wait=settings.wait) as conn:
            outcome.detail = audit_connection(conn, min_size_bytes=min_bytes, silences=silences)

    return action


def checking_schema(settings: Settings, service: str, scratch_dsn: str | None) -> Callable[[Target, Outcome], None]:
    from ..schemafile.commands import check

    def action(target: Target, outcome: Outcome) -> None:
        # The one-database check with this target as its --dsn: its rebuild, its comparison.
        outcome.detail = check(replace(settings, dsn=target.conninfo), [service], scratch_dsn)[0]

    return action


def _sync_triggers(conn) -> None:  # noqa: ANN001 - a psycopg connection
    # What `dbtool migrate` leaves, so `schema check` finds the fleet's databases like any other.
    from ..migrate.triggers import sync_connection

    sync_connection(conn)

"""Building a schema from a tree on a database, as `dbtool migrate` leaves it (migrations, then triggers).
"""

from __future__ import annotations

import psycopg

from .. import server
from ..config import Settings, secrets
from ..migrate.runner import migrate_connection
from ..migrate.tree import Migration
from ..migrate.triggers import TriggerPolicy, sync_connection, trigger_policy
from .dump import pg_dump


def migrate_and_sync(conn: psycopg.Connection, tree: list[Migration], to: int | None, lock_timeout: float) -> None:
    """As `dbtool migrate` leaves a database: the pending migrations, then the updated_at trigger sync."""
    migrate_connection(conn, tree, to, lock_timeout)
    sync_connection(conn, policy=policy_of(tree))


def policy_of(tree: list[Migration]) -> TriggerPolicy:
    """The trigger policy of the service a tree belongs to (its folder's dbtool.toml)."""
    return trigger_policy(tree[0].up.parent.parent, tree[0].service) if tree else TriggerPolicy()


def build(conninfo: str, tree: list[Migration], to: int | None = None, settings: Settings | None = None) -> str:
    """Migrate a (scratch) database as `dbtool migrate` does, triggers included; return its dump."""
    settings = settings or Settings()
    with server.connect(conninfo, wait=settings.wait) as conn:
        migrate_and_sync(conn, tree, to, settings.lock_timeout)
    return pg_dump(conninfo, settings.environ, secrets(settings))

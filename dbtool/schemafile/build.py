"""Building a schema from a tree on a database, as `dbtool migrate` leaves it (migrations, then triggers).
"""

from __future__ import annotations

import psycopg

from .. import server
from ..config import Settings, secrets
from ..migrate.runner import migrate_connection
from ..migrate.tree import Migration
from ..migrate.triggers import sync_connection
from .dump import pg_dump


def migrate_and_sync(conn: psycopg.Connection, tree: list[Migration], to: int | None, lock_timeout: float) -> None:
    """As `dbtool migrate` leaves a database: the pending migrations, then the updated_at trigger sync."""
    migrate_connection(conn, tree, to, lock_timeout)
    sync_connection(conn)


def build(conninfo: str, tree: list[Migration], to: int | None = None, settings: Settings | None = None) -> str:
    """Migrate a (scratch) database as `dbtool migrate` does, triggers included; return its dump."""
    settings = settings or Settings()
    with server.connect(conninfo, wait=settings.wait) as conn:
        migrate_and_sync(conn, tree, to, settings.lock_timeout)
    return pg_dump(conninfo, settings.environ, secrets(settings))

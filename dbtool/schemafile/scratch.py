"""Scratch databases: made for one check on a server we may build on, and always dropped after.

`dbtool verify` and `dbtool schema check` rebuild a service from its migrations on a database of
their own, never on the service's database. It lives on the service's own server (reached through
the maintenance database `postgres`), or on the server `--scratch-dsn` names; never on a prod
server unless `--scratch-dsn` says where.
"""

from __future__ import annotations

import secrets
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import server
from ..config import Settings, check_dsn, database_name, describe, resolve_target
from ..errors import DatabaseUnavailable, Refused

MAINTENANCE_DB = "postgres"
MARK = "_scratch_"  # in every scratch database's name, so a leftover is easy to spot
_FIX = "pass --scratch-dsn with the URL of a server and role that may create databases"


@dataclass(frozen=True)
class ScratchServer:
    admin: str  # conninfo of a database on that server we connect to in order to create others
    where: str  # for people: host, port, user and how we chose it; never the password

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(self.admin, dbname=dbname)


def scratch_server(settings: Settings, service: str, scratch_dsn: str | None) -> ScratchServer:
    """Where a service's scratch databases go: --scratch-dsn, else the server of its own database."""
    if scratch_dsn is not None:
        check_dsn(scratch_dsn, "--scratch-dsn")
        admin = scratch_dsn if conninfo_to_dict(scratch_dsn).get("dbname") else make_conninfo(
            scratch_dsn, dbname=MAINTENANCE_DB)
        return ScratchServer(admin, f"{describe(admin)} (--scratch-dsn)")
    if settings.env == "prod":
        raise Refused(f"{service}: --env prod: scratch databases are never made on a prod server;"
                      " pass --scratch-dsn with the URL of another server to build them on")
    target = resolve_target(service, settings)
    admin = make_conninfo(server.target_conninfo(target, settings), dbname=MAINTENANCE_DB)
    return ScratchServer(admin, server.describe_target(target, admin))


def scratch_name(service: str, settings: Settings) -> str:
    base = database_name(service, settings.env)[:40]  # PostgreSQL names stop at 63 bytes
    return f"{base}{MARK}{secrets.token_hex(4)}"


@contextmanager
def scratch_database(place: ScratchServer, name: str, wait: float = 0.0) -> Iterator[str]:
    """Create an empty database, yield its conninfo, drop it whatever happens (WITH (FORCE))."""
    try:
        admin = server.connect(place.admin, wait=wait)
    except DatabaseUnavailable as exc:
        raise DatabaseUnavailable(f"scratch server: {exc}; or {_FIX}") from None
    with admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            reason = (exc.diag.message_primary or str(exc)).strip()
            raise DatabaseUnavailable(
                f"cannot create a scratch database on {place.where}: {reason};"
                f" grant the role CREATEDB (ALTER ROLE ... CREATEDB), or {_FIX}"
            ) from None
        try:
            yield place.conninfo(name)
        finally:
            _drop(admin, place, name, failing=sys.exc_info()[0] is not None)


def _drop(admin: psycopg.Connection, place: ScratchServer, name: str, failing: bool) -> None:
    try:
        # FORCE ends the sessions a failed check may have left open on it.
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        if failing:
            return  # the error already on its way matters more; this one would hide it
        reason = (exc.diag.message_primary or str(exc)).strip()
        raise DatabaseUnavailable(f"scratch database {name} on {place.where} was not dropped: {reason};"
                                  f" drop it by hand (DROP DATABASE {name} WITH (FORCE))") from None

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

from .. import server, signals
from ..config import Settings, check_dsn, database_name, describe, resolve_target
from ..errors import DatabaseUnavailable, DbtoolError, MigrationTreeError, Refused, classify

MAINTENANCE_DB = "postgres"
MARK = "_scratch_"  # in every scratch database's name, so a leftover is easy to spot
_FIX = "pass --scratch-dsn with the URL of a server and role that may create databases"
_DROP_TRIES = 3  # a signal's cancellation may land on the DROP; a second signal's too


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
    signals.check()  # after a signal (a fleet's next target), make nothing that would need dropping
    try:
        admin = server.connect(place.admin, wait=wait)
    except DatabaseUnavailable as exc:
        raise DatabaseUnavailable(f"scratch server: {exc}; or {_FIX}") from None
    with admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            signals.check()  # the signal cancelled it: nothing was created, and no privilege is missing
            reason = (exc.diag.message_primary or str(exc)).strip()
            raise DatabaseUnavailable(
                f"cannot create a scratch database on {place.where}: {reason};"
                f" grant the role CREATEDB (ALTER ROLE ... CREATEDB), or {_FIX}"
            ) from None
        try:
            yield place.conninfo(name)
        finally:
            _drop(admin, place, name, failing=sys.exc_info()[1])


def _drop(admin: psycopg.Connection, place: ScratchServer, name: str, failing: BaseException | None) -> None:
    # FORCE ends the sessions a failed check may have left open on it.
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    for tries_left in reversed(range(_DROP_TRIES)):
        try:
            admin.execute(statement)
            return
        except psycopg.Error as exc:
            error = exc
        # A signal cancels the statement of every open connection, this DROP too when it is on its
        # way (it is slow, and a fleet's checks end at once); each signal cancels it once, so try again.
        if not (isinstance(error, psycopg.errors.QueryCanceled) and signals.received() and tries_left):
            break
    reason = (error.diag.message_primary or str(error)).strip()
    left = (f"scratch database {name} on {place.where} was not dropped: {reason};"
            f" drop it by hand (DROP DATABASE {name} WITH (FORCE))")
    if failing is not None and not signals.received():
        # The error on its way says what went wrong and keeps its exit code; the database it left
        # behind is said in the same line, or nobody would learn its name. A psycopg error or an
        # OSError is read as the command line would read it; a bug keeps its traceback.
        if isinstance(failing, (MigrationTreeError, signals.Interrupted)):
            return
        if isinstance(failing, (DbtoolError, psycopg.Error, OSError)):
            reported = classify(failing)
            raise type(reported)(f"{reported}; and {left}") from None
        return
    # After a signal the error on its way is only the cancellation: the database left behind matters more.
    raise DatabaseUnavailable(left) from None

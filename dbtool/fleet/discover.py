"""A wave's databases: listed in the file, or the rows a directory database answers its query with."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg.conninfo import conninfo_to_dict

from .. import server
from ..config import describe
from ..errors import BadInput
from .file import Fleet, Wave


@dataclass
class Target:
    wave: str
    label: str  # for people and JSON: user, host, database; never the password
    conninfo: str = field(repr=False)

    @property
    def password(self) -> str | None:
        value = conninfo_to_dict(self.conninfo).get("password")
        return str(value) if value else None


def discover(fleet: Fleet, wait: float = 0.0) -> list[Target]:
    """Every target of every wave, in order, before anything changes: a directory that does not
    answer, or a DSN that does not parse, stops the run while nothing has been touched."""
    targets: list[Target] = []
    seen: dict[str, str] = {}
    for wave in fleet.waves:
        for dsn in wave.targets if wave.query is None else _ask_directory(fleet, wave, wait):
            target = _target(fleet, wave, dsn)
            key = describe(target.conninfo)
            if key in seen:
                raise BadInput(f"{fleet.path}: {key} is listed in wave {seen[key]!r} and wave {wave.name!r};"
                               " list each database once")
            seen[key] = wave.name
            targets.append(target)
    return targets


def _target(fleet: Fleet, wave: Wave, dsn: str) -> Target:
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise BadInput(f"{fleet.path}: wave {wave.name!r}: a target is not a connection string; give"
                       " postgresql://user@host/dbname or host=... dbname=...") from None
    if not parts.get("dbname"):
        raise BadInput(f"{fleet.path}: wave {wave.name!r}: target {describe(dsn)} names no database;"
                       " add the database name to the DSN")
    return Target(wave.name, describe(dsn), dsn)


def _ask_directory(fleet: Fleet, wave: Wave, wait: float) -> list[str]:
    assert wave.directory is not None and wave.query is not None
    where = f"{fleet.path}: wave {wave.name!r}"
    with server.connect(wave.directory, wait=wait) as conn:
        try:
            # Read only, so a query in a fleet file can never change the directory.
            with conn.transaction():
                conn.execute("SET TRANSACTION READ ONLY")
                rows = conn.execute(wave.query.encode("utf-8")).fetchall()
        except psycopg.Error as exc:
            message = (exc.diag.message_primary or str(exc)).strip()
            raise BadInput(f"{where}: the directory query failed: {message}; fix the query") from None
    dsns = []
    for row in rows:
        if not row or not isinstance(row[0], str) or not row[0].strip():
            raise BadInput(f"{where}: the directory query returned a row without a connection string in"
                           " its first column; select the DSN first")
        dsns.append(row[0])
    return dsns  # none is a wave with nothing to do, not an error: every tenant may be inactive

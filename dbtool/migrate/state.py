"""What a database has applied, compared with the tree: pending, edited, missing; and what to run next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Mapping, Sequence

import psycopg
from psycopg import sql

from ..errors import BadInput, DatabaseUnavailable, Refused, classify
from .tree import Migration

CHECKSUM_TABLE = "_dbtool_checksum"

TRACKING_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock", CHECKSUM_TABLE)


@dataclass(frozen=True)
class Applied:
    id: str
    applied_at: datetime | None
    up_checksum: str | None  # None: applied by yoyo or another tool, without a dbtool record
    down_checksum: str | None


@dataclass
class State:
    migrations: list[Migration]
    applied: dict[str, Applied]
    database_exists: bool = True
    invalid_indexes: list[str] = field(default_factory=list)
    checksums_missing: bool = False  # yoyo's tables without dbtool's checksum table: yoyo alone migrated it

    @property
    def pending(self) -> list[Migration]:
        return [m for m in self.migrations if m.id not in self.applied]

    @property
    def applied_migrations(self) -> list[Migration]:
        return [m for m in self.migrations if m.id in self.applied]

    @property
    def edited(self) -> list[tuple[Migration, Path]]:
        """Applied migrations whose files changed since, with the changed file."""
        found = []
        for m in self.applied_migrations:
            rec = self.applied[m.id]
            if rec.up_checksum is not None and rec.up_checksum != m.up_checksum:
                found.append((m, m.up))
            elif rec.down_checksum is not None and rec.down_checksum != m.down_checksum:
                found.append((m, m.down))
        return found

    @property
    def missing(self) -> list[str]:
        """Applied migration ids whose files are gone."""
        ids = {m.id for m in self.migrations}
        return sorted(i for i in self.applied if i not in ids)

    @property
    def unknown(self) -> list[Migration]:
        """Applied without a dbtool checksum (by plain yoyo, say): nothing to compare against."""
        return [m for m in self.applied_migrations if self.applied[m.id].up_checksum is None]

    def state_of(self, m: Migration) -> str:
        if m.id not in self.applied:
            return "pending"
        if any(e is m for e, _ in self.edited):
            return "edited"
        return "unknown" if self.applied[m.id].up_checksum is None else "applied"


def tables_of(conn: psycopg.Connection, migrations: Sequence[Migration] = ()) -> set[str]:
    """The tracking tables in the session's current schema, where yoyo and dbtool keep them.

    Refused when there are none there but another schema holds a _yoyo_migration that records
    `migrations`: a search_path set on the role or database since the last migrate, read as a database
    that applied nothing, would apply every migration again into another schema."""
    schema, search_path, found, elsewhere = conn.execute(
        """SELECT current_schema(), current_setting('search_path'),
                  ARRAY(SELECT tablename::text FROM pg_tables
                        WHERE schemaname = current_schema() AND tablename = ANY(%s)),
                  ARRAY(SELECT schemaname::text FROM pg_tables WHERE tablename = '_yoyo_migration'
                        AND schemaname IS DISTINCT FROM current_schema() ORDER BY 1)""",
        (list(TRACKING_TABLES),),
    ).fetchone()
    ids = [m.id for m in migrations]
    if "_yoyo_migration" not in found and ids:
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {}._yoyo_migration WHERE migration_id = ANY(%s))")
        for other in elsewhere:
            if conn.execute(query.format(sql.Identifier(other)), (ids,)).fetchone()[0]:
                where = f"puts {schema} first" if schema else "names no schema that exists"
                raise Refused(
                    f"{conn.info.dbname}: {other}._yoyo_migration records this database's migrations, but"
                    f" the session's search_path ({search_path}) {where}, where none are recorded: a migrate"
                    " would apply them all again there; reset it (ALTER DATABASE {conn.info.dbname} RESET search_path, or ALTER ROLE"
                    f" {conn.info.user} RESET search_path) or put {other} first, then run again;"
                    " nothing was changed")
    if schema is None:
        raise BadInput(
            f"{conn.info.dbname}: the session's search_path ({search_path}) names no schema that exists,"
            " so there is nowhere to keep the migration records; set it to the service's schema"
            f" (ALTER ROLE {conn.info.user} SET search_path = public) or create the schema, then run again")
    return set(found)


_CURRENT = f"""SELECT m.migration_id, m.applied_at_utc, c.up_sha256, c.down_sha256
               FROM _yoyo_migration m LEFT JOIN {CHECKSUM_TABLE} c USING (migration_id)"""
_INVALID = """SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE NOT i.indisvalid AND n.nspname = current_schema() ORDER BY 1"""
Query = tuple[str, "Sequence[object] | Mapping[str, object]"]  # (SQL, parameters)


def read_state(conn: psycopg.Connection, migrations: list[Migration], service: str = "") -> State:
    return read_state_and(conn, migrations, service=service)[0]


def read_state_and(conn: psycopg.Connection, migrations: list[Migration], before: Query | None = None,
                   after: Query | None = None, service: str = "") -> tuple[State, tuple | None, tuple | None]:
    """The state, with the first rows of `before` (run first: the reads depend on it, as on a SET
    ROLE) and of `after`, in one round trip on an idle autocommit connection. The queries are
    pipelined, the applied rows read last as if the tracking tables were yoyo's current ones with
    dbtool's checksums, as in every database dbtool has migrated. Where they are not (a fresh
    database, one yoyo alone migrated, a missing privilege) that read fails, undoing `before` with
    it (one implicit transaction), and the state is asked again the long way. `after` is not: it
    comes back None, for the caller to ask when it needs it, since a database dbtool never migrated
    mostly has migrations to apply, after which that answer would be stale.

    A read the server refuses or cuts short (a missing privilege, a timeout) is one line that names
    the service (`service`, else the migrations') and the database, in the error's own class."""
    dbname, user = conn.info.dbname, conn.info.user  # while the connection is sure to be there
    try:
        return _read_state_and(conn, migrations, before, after)
    except psycopg.Error as exc:
        service = service or (migrations[0].service if migrations else "")
        who = f"{service}: database {dbname}" if service else f"database {dbname}"
        if exc.sqlstate == "42501":  # the role by name, and the grant it needs
            from ..roles.denied import explain

            what = explain(exc.diag.message_primary or "", "SELECT", user)
            raise DatabaseUnavailable(f"{who}: reading its migration state: {what}") from None
        error = classify(exc)
        raise type(error)(f"{who}: reading its migration state: {error}") from None


def _read_state_and(conn: psycopg.Connection, migrations: list[Migration], before: Query | None,
                    after: Query | None) -> tuple[State, tuple | None, tuple | None]:
    if (psycopg.Pipeline.is_supported() and conn.autocommit
            and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE):
        try:
            with conn.pipeline():
                first = conn.execute(*before) if before else None
                invalid = conn.execute(_INVALID)
                last = conn.execute(*after) if after else None
                rows = conn.execute(_CURRENT)
        except psycopg.Error:
            pass
        else:
            applied = {mid: Applied(mid, at, up, down) for mid, at, up, down in rows.fetchall()}
            state = State(migrations, applied, True, [r[0] for r in invalid.fetchall()])
            return state, first.fetchone() if first else None, last.fetchone() if last else None
    first_row = conn.execute(*before).fetchone() if before else None
    return _read_state(conn, migrations), first_row, None


def _read_state(conn: psycopg.Connection, migrations: list[Migration]) -> State:
    tables = tables_of(conn, migrations)
    applied: dict[str, Applied] = {}
    if "_yoyo_migration" in tables:
        query = _CURRENT if CHECKSUM_TABLE in tables else \
            "SELECT migration_id, applied_at_utc, NULL, NULL FROM _yoyo_migration"
        for mid, at, up, down in conn.execute(query).fetchall():
            applied[mid] = Applied(mid, at, up, down)
    return State(migrations, applied, True, invalid_indexes(conn),
                 checksums_missing="_yoyo_migration" in tables and CHECKSUM_TABLE not in tables)


def invalid_indexes(conn: psycopg.Connection, then: str = "") -> list[str]:
    """Indexes a failed or interrupted CREATE INDEX CONCURRENTLY left behind: written to, never read.

    `then`: statements without parameters to run in the same round trip, after this read."""
    return [r[0] for r in conn.execute(f"{_INVALID}; {then}" if then else _INVALID).fetchall()]


def refuse_drift(state: State) -> None:
    """An applied migration that changed or vanished means the tree no longer describes the database."""
    for m, path in state.edited:
        raise Refused(
            f"{path}: edited after it was applied; restore it and add a new migration,"
            f" or accept the edit with 'dbtool repair {m.service}'"
        )
    for mid in state.missing:
        raise Refused(
            f"{mid}: applied to the database but its file is gone; restore {mid}.sql and {mid}.down.sql"
        )


def plan_up(state: State, to: int | None) -> list[Migration]:
    pending = [m for m in state.pending if to is None or m.version <= to]
    applied_versions = [m.version for m in state.applied_migrations]
    if pending and applied_versions and pending[0].version < max(applied_versions):
        newest = max(applied_versions)
        raise Refused(
            f"{pending[0].up}: pending, but the later migration {newest:03d} is already applied;"
            f" renumber it after {newest:03d}"
        )
    return pending


def pending_up(conn: psycopg.Connection, migrations: list[Migration], to: int | None, before: Query | None = None,
               after: Query | None = None) -> tuple[list[Migration], tuple | None, tuple | None, State]:
    """What migrate would apply, with the first rows of `before` and `after` and the state read, from
    one read without the lock, in one round trip (read_state_and). Most runs find nothing to do and
    stop here, with no lock taken and neither yoyo nor the runner loaded. What is applied is
    committed, so a concurrent run cannot make an empty answer wrong; anything pending takes the
    locked path."""
    state, first, last = read_state_and(conn, migrations, before, after)
    refuse_drift(state)
    return plan_up(state, to), first, last, state


def plan_down(state: State, steps: int | None, to: int | None, everything: bool) -> list[Migration]:
    applied = sorted(state.applied_migrations, key=lambda m: m.version, reverse=True)
    if everything:
        return applied
    if to is not None:
        return [m for m in applied if m.version > to]
    return applied[: 1 if steps is None else steps]


def check_version(migrations: list[Migration], version: int | None, option: str) -> None:
    if version is None or version == 0:
        return
    if version not in {m.version for m in migrations}:
        have = ", ".join(f"{m.version:03d}" for m in migrations) or "none"
        service = migrations[0].service if migrations else "service"
        raise BadInput(f"{option} {version}: {service} has no migration with that number (have: {have})")

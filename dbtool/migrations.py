"""A service's migration tree: discovery, validation, checksums, and applying or rolling back.

yoyo-migrations provides the statement splitting, the directives and the tracking tables (so that
`yoyo list` still reads our databases). dbtool adds what yoyo lacks: `.down.sql` files, content
checksums, a session advisory lock, and one transaction for a migration and its record.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import psycopg
import sqlparse
from psycopg import sql
from yoyo.backends.core.postgresql import PostgresqlPsycopgBackend
from yoyo.connections import DatabaseURI
from yoyo.migrations import get_migration_hash, parse_metadata_from_sql_comments

from .errors import BadInput, DatabaseUnavailable, MigrationTreeError, Refused

FILE_NAME = re.compile(r"^(?P<version>\d{3,})_(?P<name>[a-z][a-z0-9]*(?:_[a-z0-9]+)*)(?P<down>\.down)?\.sql$")
# A down file that cannot undo its up file says so; rollback then refuses instead of doing nothing.
IRREVERSIBLE = re.compile(r"^\s*--\s*dbtool:\s*irreversible\b", re.MULTILINE | re.IGNORECASE)
# Files that live beside migrations but are not migrations.
NOT_MIGRATIONS = {"schema.sql"}
CHECKSUM_TABLE = "_dbtool_checksum"
TRACKING_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock", CHECKSUM_TABLE)
# Two int4 keys for pg_advisory_lock: "dbtl" and "migr" in ASCII. Per database, by nature.
LOCK_KEYS = (0x6462746C, 0x6D696772)


def parse_file_name(name: str) -> tuple[int, str, bool] | None:
    """(version, name, is_down) for a migration file name, None for anything else."""
    match = FILE_NAME.match(name)
    if not match:
        return None
    return int(match["version"]), match["name"], match["down"] is not None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Statement:
    sql: str
    line: int  # 1-based line of the statement's first character in its file


@dataclass(frozen=True)
class Migration:
    service: str
    version: int
    name: str
    up: Path
    down: Path
    up_bytes: bytes = field(repr=False)
    down_bytes: bytes = field(repr=False)

    @property
    def id(self) -> str:
        """The up file's name without .sql: what yoyo's tracking table shows."""
        return self.up.name[: -len(".sql")]

    @property
    def hash(self) -> str:
        return get_migration_hash(self.id)

    @property
    def up_checksum(self) -> str:
        return sha256(self.up_bytes)

    @property
    def down_checksum(self) -> str:
        return sha256(self.down_bytes)

    @property
    def irreversible(self) -> bool:
        return bool(IRREVERSIBLE.search(self.text("down"))) and not self.statements("down")

    def transactional(self, direction: str = "up") -> bool:
        return split_sql(self.text(direction))[0]

    def statements(self, direction: str = "up") -> list[Statement]:
        return split_sql(self.text(direction))[1]

    def text(self, direction: str = "up") -> str:
        return (self.up_bytes if direction == "up" else self.down_bytes).decode("utf-8")

    def path(self, direction: str) -> Path:
        return self.up if direction == "up" else self.down


@functools.lru_cache(maxsize=256)
def split_sql(text: str) -> tuple[bool, list[Statement]]:
    """yoyo's splitting and directives, plus the line each statement starts on.

    This is what yoyo's read_sql_migration does, but on the bytes dbtool already read and
    checksummed, so what runs is exactly what was recorded.
    """
    parts = sqlparse.split(text)
    directives: dict[str, str] = {}
    if parts:
        directives, _, parts[0] = parse_metadata_from_sql_comments(parts[0])
    statements, pos = [], 0
    for part in (p for p in parts if p.strip()):
        found = text.find(part.strip(), pos)
        start = found if found >= 0 else pos
        statements.append(Statement(part, text.count("\n", 0, start) + 1))
        pos = start + len(part.strip())
    transactional = directives.get("transactional", "true").strip().lower() != "false"
    return transactional, statements


def _has_sql(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def _content_problem(path: Path, data: bytes, is_down: bool) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8"
    if not _has_sql(text) and not (is_down and IRREVERSIBLE.search(text)):
        hint = " or mark it '-- dbtool: irreversible <reason>'" if is_down else ""
        return f"{path}: has no SQL statement; write the migration{hint}"
    return None


def load_tree(service_dir: Path) -> list[Migration]:
    """Every migration of one service, in order; MigrationTreeError lists every problem found."""
    service = service_dir.name
    problems: list[str] = []
    all_ups: dict[int, list[Path]] = {}
    all_downs: dict[int, list[Path]] = {}
    contents: dict[Path, bytes] = {}
    if not service_dir.is_dir():
        raise BadInput(f"{service_dir}: no such service folder; create it or check the name")
    for path in sorted(service_dir.iterdir()):
        if path.is_dir() or path.suffix != ".sql" or path.name in NOT_MIGRATIONS:
            continue
        parsed = parse_file_name(path.name)
        if parsed is None:
            problems.append(
                f"{path}: not a migration file name; rename it NNN_snake_case.sql or NNN_snake_case.down.sql"
            )
            continue
        version, _, is_down = parsed
        (all_downs if is_down else all_ups).setdefault(version, []).append(path)
        contents[path] = data = path.read_bytes()
        problem = _content_problem(path, data, is_down)
        if problem:
            problems.append(problem)
    ups = {v: paths[0] for v, paths in all_ups.items()}
    downs = {v: paths[0] for v, paths in all_downs.items()}
    for version, paths in all_ups.items():
        for extra in paths[1:]:
            problems.append(f"{extra}: duplicate number {version:03d} (also {paths[0].name}); renumber one")
    for version, paths in all_downs.items():
        up_stems = {p.name[:-4] for p in all_ups.get(version, [])}
        for extra in paths[1:]:
            # A duplicated down file that pairs with a duplicated up file is the same clash, told once.
            if extra.name[: -len(".down.sql")] not in up_stems or len(up_stems) < 2:
                problems.append(f"{extra}: duplicate number {version:03d} (also {paths[0].name}); renumber one")
    for version, up in ups.items():
        down = downs.get(version)
        if down is None:
            problems.append(f"{up}: has no down file; add {up.name[:-4]}.down.sql")
        elif down.name != up.name[:-4] + ".down.sql":
            problems.append(f"{down}: does not match its up file {up.name}; rename it {up.name[:-4]}.down.sql")
    for version, down in downs.items():
        if version not in ups:
            problems.append(f"{down}: down file without an up file; add {down.name.replace('.down', '')} or delete it")
    expected = 1
    for version in sorted(ups):
        if version != expected:
            missing = f"{expected:03d}" if version == expected + 1 else f"{expected:03d} to {version - 1:03d}"
            problems.append(f"{ups[version]}: gap before it, no migration {missing}; renumber to close the gap")
        expected = version + 1
    if problems:
        raise MigrationTreeError(problems)
    migrations = []
    for version in sorted(ups):
        up, down = ups[version], downs[version]
        name = parse_file_name(up.name)[1]  # type: ignore[index]
        migrations.append(Migration(service, version, name, up, down, contents[up], contents[down]))
    return migrations


# ---------------------------------------------------------------- database state


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


def _tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename = ANY(%s)",
        (list(TRACKING_TABLES),),
    ).fetchall()
    return {r[0] for r in rows}


def read_state(conn: psycopg.Connection, migrations: list[Migration]) -> State:
    tables = _tables(conn)
    applied: dict[str, Applied] = {}
    if "_yoyo_migration" in tables:
        if CHECKSUM_TABLE in tables:
            query = f"""SELECT m.migration_id, m.applied_at_utc, c.up_sha256, c.down_sha256
                        FROM _yoyo_migration m LEFT JOIN {CHECKSUM_TABLE} c USING (migration_id)"""
        else:
            query = "SELECT migration_id, applied_at_utc, NULL, NULL FROM _yoyo_migration"
        for mid, at, up, down in conn.execute(query).fetchall():
            applied[mid] = Applied(mid, at, up, down)
    return State(migrations, applied, True, invalid_indexes(conn))


def invalid_indexes(conn: psycopg.Connection) -> list[str]:
    """Indexes a failed or interrupted CREATE INDEX CONCURRENTLY left behind: written to, never read."""
    return [
        r[0]
        for r in conn.execute(
            """SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE NOT i.indisvalid AND n.nspname = current_schema() ORDER BY 1"""
        ).fetchall()
    ]


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


# ---------------------------------------------------------------- tracking and locking


class _Tracking(PostgresqlPsycopgBackend):
    """yoyo's backend on a connection dbtool opened (so it already holds our advisory lock)."""

    def __init__(self, conn: psycopg.Connection):
        self._given = conn
        uri = DatabaseURI("postgresql+psycopg", None, None, None, None, conn.info.dbname, {})
        super().__init__(uri, "_yoyo_migration")

    def connect(self, dburi):  # noqa: ANN001 - yoyo's signature
        return self._given

    def __exit__(self, *exc):  # the connection is dbtool's to close
        return None


def tracking(conn: psycopg.Connection) -> _Tracking:
    backend = _Tracking(conn)
    backend.create_lock_table()
    # yoyo's lock is a row that outlives a killed process; we hold the advisory lock, so any row
    # left there is stale and would only make yoyo's own schema upgrade wait and fail.
    conn.execute("DELETE FROM yoyo_lock")
    backend.ensure_internal_schema_updated()
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {CHECKSUM_TABLE} (
                migration_id TEXT PRIMARY KEY,
                up_sha256 TEXT NOT NULL,
                down_sha256 TEXT NOT NULL,
                recorded_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
    )
    return backend


@contextmanager
def advisory_lock(conn: psycopg.Connection, timeout: float, what: str) -> Iterator[None]:
    """Serialise dbtool runs per database; a session lock dies with its connection, even on SIGKILL."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", LOCK_KEYS).fetchone()[0]:
        if time.monotonic() >= deadline:
            holder = conn.execute(
                """SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
                   AND classid = %s AND objid = %s AND database = (SELECT oid FROM pg_database
                   WHERE datname = current_database())""",
                LOCK_KEYS,
            ).fetchone()
            pid = f" (server pid {holder[0]})" if holder else ""
            raise DatabaseUnavailable(
                f"{what}: another dbtool run holds the migration lock{pid} after {timeout:g}s;"
                " wait for it to finish or raise --lock-timeout"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", LOCK_KEYS)


# ---------------------------------------------------------------- running migrations


def _run(conn: psycopg.Connection, path: Path, statements: list[Statement], transactional: bool) -> None:
    for st in statements:
        try:
            conn.execute(st.sql.encode("utf-8"))
        except psycopg.Error as exc:
            line = st.line
            pos = getattr(exc.diag, "statement_position", None)
            if pos:
                line += st.sql[: int(pos) - 1].count("\n")
            message = (exc.diag.message_primary or str(exc)).strip()
            if transactional:
                state = "nothing of this migration was applied"
            else:
                state = "statements before this one were committed (non-transactional migration)"
            raise BadInput(f"{path}:{line}: {message}; {state}; fix the statement and run again") from None


def apply_one(backend: _Tracking, m: Migration) -> None:
    """Apply one migration; its changes and its record commit together, or neither does."""
    _step(backend, m, "up", _record)


def rollback_one(backend: _Tracking, m: Migration) -> None:
    _step(backend, m, "down", _unrecord)


def _step(backend: _Tracking, m: Migration, direction: str, bookkeeping: Callable[[_Tracking, Migration], None]) -> None:
    path, statements = m.path(direction), m.statements(direction)
    if m.transactional(direction):
        with backend.transaction():
            _run(backend.connection, path, statements, True)
            bookkeeping(backend, m)
    else:
        # Statements such as CREATE INDEX CONCURRENTLY cannot run in a transaction block: the
        # record can only follow them. Such migrations must be written to be re-runnable.
        conn, text = backend.connection, m.text(direction)
        # A concurrent build that failed or was killed leaves an invalid index under its name, which
        # a re-run's IF NOT EXISTS would pass over. It serves no reads, so drop it and build again.
        for name in _invalid_indexes_named(conn, text):
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
        _run(conn, path, statements, False)
        left = _invalid_indexes_named(conn, text)
        if left:
            raise BadInput(f"{path}: index {left[0]} is invalid after this migration; drop it with DROP INDEX"
                           " CONCURRENTLY and run again; the migration was not recorded")
        with backend.transaction():
            bookkeeping(backend, m)


def _invalid_indexes_named(conn: psycopg.Connection, text: str) -> list[str]:
    return [i for i in invalid_indexes(conn) if re.search(rf"\b{re.escape(i)}\b", text)]


def _record(backend: _Tracking, m: Migration) -> None:
    backend.mark_one(m, log=False)
    backend.log_migration(m, "apply")
    record_checksum(backend.connection, m)


def record_checksum(conn: psycopg.Connection, m: Migration) -> None:
    conn.execute(
        f"""INSERT INTO {CHECKSUM_TABLE} (migration_id, up_sha256, down_sha256) VALUES (%s, %s, %s)
            ON CONFLICT (migration_id) DO UPDATE
            SET up_sha256 = EXCLUDED.up_sha256, down_sha256 = EXCLUDED.down_sha256, recorded_at = now()""",
        (m.id, m.up_checksum, m.down_checksum),
    )


def _unrecord(backend: _Tracking, m: Migration) -> None:
    backend.unmark_one(m, log=False)
    backend.log_migration(m, "rollback")
    backend.connection.execute(f"DELETE FROM {CHECKSUM_TABLE} WHERE migration_id = %s", (m.id,))


Report = Callable[[Migration, float], None]


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


def migrate_connection(
    conn: psycopg.Connection, migrations: list[Migration], to: int | None = None,
    lock_timeout: float = 60.0, report: Report | None = None,
) -> list[Migration]:
    """Apply pending migrations on an open connection, under the advisory lock."""
    check_version(migrations, to, "--to")
    with advisory_lock(conn, lock_timeout, str(conn.info.dbname)):
        backend = tracking(conn)
        state = read_state(conn, migrations)
        refuse_drift(state)
        done = []
        for m in plan_up(state, to):
            started = time.perf_counter()
            apply_one(backend, m)
            done.append(m)
            if report:
                report(m, time.perf_counter() - started)
        return done


def rollback_connection(
    conn: psycopg.Connection, migrations: list[Migration], steps: int | None = None,
    to: int | None = None, everything: bool = False, force: bool = False,
    lock_timeout: float = 60.0, report: Report | None = None,
) -> list[Migration]:
    check_version(migrations, to, "--to")
    with advisory_lock(conn, lock_timeout, str(conn.info.dbname)):
        backend = tracking(conn)
        state = read_state(conn, migrations)
        refuse_drift(state)
        plan = plan_down(state, steps, to, everything)
        for m in plan:
            if m.irreversible:
                raise Refused(f"{m.down}: marked irreversible; this migration cannot be rolled back")
        if not force:
            refuse_data_loss(conn, plan)
        done = []
        for m in plan:
            started = time.perf_counter()
            rollback_one(backend, m)
            done.append(m)
            if report:
                report(m, time.perf_counter() - started)
        return done


# ---------------------------------------------------------------- the data-loss guard


def dropped_objects(sql: str) -> list[tuple[str, str | None]]:
    """(table, column) pairs a statement drops; column None for a whole table. Parsed, not matched."""
    from pglast import parse_sql
    from pglast.enums import AlterTableType, ObjectType

    found: list[tuple[str, str | None]] = []
    try:
        stmts = parse_sql(sql)
    except Exception:  # pglast raises its own ParseError; the server will report the real problem
        return found
    for raw in stmts:
        node = raw.stmt
        kind = type(node).__name__
        if kind == "DropStmt" and node.removeType == ObjectType.OBJECT_TABLE:
            for names in node.objects:
                found.append((".".join(n.sval for n in names), None))
        elif kind == "AlterTableStmt":
            table = node.relation.relname
            if node.relation.schemaname:
                table = f"{node.relation.schemaname}.{table}"
            for cmd in node.cmds:
                if cmd.subtype == AlterTableType.AT_DropColumn:
                    found.append((table, cmd.name))
    return found


def refuse_data_loss(conn: psycopg.Connection, plan: list[Migration]) -> None:
    for m in plan:
        for st in m.statements("down"):
            for table, column in dropped_objects(st.sql):
                if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
                    continue
                ident = sql.Identifier(*table.split("."))
                if column is None:
                    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident)
                    what = f"table {table}"
                else:
                    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NOT NULL)").format(
                        ident, sql.Identifier(column)
                    )
                    what = f"column {table}.{column}"
                if conn.execute(query).fetchone()[0]:
                    raise Refused(
                        f"{m.down}:{st.line}: drops {what}, which holds rows; back the data up,"
                        " then roll back with --force"
                    )

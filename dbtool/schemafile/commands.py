"""`dbtool schema dump` and `dbtool schema check`, callable from Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import signals
from ..config import Settings, read_utf8, resolve_target, secrets
from ..databases import locate, peek_state
from ..migrate.state import State
from ..migrate.tree import validate
from .build import build
from .compare import Difference, Side, compare
from .dump import SCHEMA_FILE, pg_dump, render_file
from .scratch import scratch_database, scratch_name, scratch_server


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
    from ..databases import migrated_conninfo

    results = []
    for service, tree in validate(settings, services).items():
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
        changed = not path.exists() or read_utf8(path) != content
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
    for service, tree in validate(settings, services).items():
        place = scratch_server(settings, service, scratch_dsn)  # before anything: prod is refused here
        live, where = locate(resolve_target(service, settings), settings)
        result = CheckResult(service, settings.schemas_dir / service / SCHEMA_FILE, where)
        newest = tree[-1].version if tree else 0
        with scratch_database(place, scratch_name(service, settings), settings.wait) as conninfo:
            version = _comparable_version(peek_state(live, tree, settings), result)
            at_live = build(conninfo, tree, version, settings) if version is not None and version < newest else None
            rebuilt = build(conninfo, tree, None, settings)
        # A signal that cancelled nothing (it came during pg_dump) still stops the check, not a pass.
        signals.check()
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
    committed = read_utf8(result.path)
    diff = compare(committed, expected, Side(str(result.path), "what the migrations build"),
                   (str(result.path), "migrations"))
    if diff:
        result.file, result.file_diff = "stale", diff


def _comparable_version(state: State, result: CheckResult) -> int | None:
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

"""Soft references across service databases: declared per service, checked against the live data.

A service's `schemas/<service>/references.toml` names the columns that hold ids of rows in another
service's database (the specification's soft references: no foreign key can cross databases), and
the columns that copy a value of the row pointed at (a denormalised name). `check` streams each
referencing column's distinct values into the referenced database and reports the ones that point
at no row there, and the copies that no longer match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg
from psycopg import sql

from .. import server
from ..config import Settings, discover_services, load_toml, select_services
from ..databases import migrated_conninfo
from ..errors import BadInput, DatabaseUnavailable

REFERENCES_FILE = "references.toml"


EXAMPLES = 5


_NAME = r"[a-z_][a-z0-9_]*"


@dataclass(frozen=True)
class SoftReference:
    service: str
    table: str
    column: str
    target_service: str
    target_table: str
    target_column: str
    copies: tuple[tuple[str, str], ...]  # (column here, column of the row pointed at)
    source: Path

    def describe(self) -> str:
        return (f"{self.service} {self.table}.{self.column} -> "
                f"{self.target_service} {self.target_table}.{self.target_column}")


def load_references(settings: Settings, service: str) -> list[SoftReference]:
    """A service's declared soft references; none when it has no references.toml."""
    path = settings.schemas_dir / service / REFERENCES_FILE
    if not path.exists():
        return []
    data = load_toml(path)
    known = discover_services(settings.schemas_dir)
    entries = data.get("reference", [])
    if not isinstance(entries, list) or set(data) - {"reference"}:
        raise BadInput(f"{path}: expected only [[reference]] tables; see the comment at the top of the file")
    return [_reference(path, service, n, entry, known) for n, entry in enumerate(entries, 1)]


def _reference(path: Path, service: str, n: int, entry: dict, known: list[str]) -> SoftReference:
    where = f"{path}: reference {n}"
    column, target = entry.get("column", ""), entry.get("points_at", "")
    copies = entry.get("copies", {})
    if set(entry) - {"column", "points_at", "copies"}:
        raise BadInput(f"{where}: unknown keys {sorted(set(entry) - {'column', 'points_at', 'copies'})};"
                       " use column, points_at and copies")
    if not re.fullmatch(rf"{_NAME}\.{_NAME}", str(column)):
        raise BadInput(f"{where}: column = {column!r}; write it as \"<table>.<column>\"")
    if not re.fullmatch(rf"{_NAME}\.{_NAME}\.{_NAME}", str(target)):
        raise BadInput(f"{where}: points_at = {target!r}; write it as \"<service>.<table>.<column>\"")
    if not isinstance(copies, dict) or not all(re.fullmatch(_NAME, str(k)) and re.fullmatch(_NAME, str(v))
                                               for k, v in copies.items()):
        raise BadInput(f"{where}: copies must map a column here to a column there, e.g. {{ name = \"name\" }}")
    target_service, target_table, target_column = target.split(".")
    if target_service not in known:
        raise BadInput(f"{where}: points at service {target_service!r}, which is no folder under "
                       f"{path.parent.parent}; fix points_at")
    table, col = column.split(".")
    return SoftReference(service, table, col, target_service, target_table, target_column,
                         tuple(copies.items()), path)


def referenced_services(settings: Settings, service: str) -> list[str]:
    return sorted({r.target_service for r in load_references(settings, service)} - {service})


def service_settings(settings: Settings, service: str, selected: list[str]) -> Settings:
    """--dsn names the one selected service's database; any other service resolves on its own."""
    if settings.dsn is not None and service not in selected:
        return replace(settings, dsn=None)
    return settings


@dataclass
class Mismatch:
    rows: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class ReferenceReport:
    reference: SoftReference
    rows: int = 0  # rows holding a reference
    dangling: Mismatch = field(default_factory=Mismatch)  # rows pointing at no row
    stale: dict[str, Mismatch] = field(default_factory=dict)  # per copy column, rows not matching

    @property
    def clean(self) -> bool:
        return self.dangling.rows == 0 and all(m.rows == 0 for m in self.stale.values())


def check(settings: Settings, services: list[str] | None = None) -> list[ReferenceReport]:
    """Check every declared soft reference of the selected services (all by default)."""
    selected = select_services(settings, services)
    reports = []
    for service in selected:
        refs = load_references(settings, service)
        if not refs:
            continue
        conninfo, _ = migrated_conninfo(settings, service)
        for ref in refs:
            target_settings = service_settings(settings, ref.target_service, selected)
            target_conninfo, _ = migrated_conninfo(target_settings, ref.target_service)
            with server.connect(conninfo, wait=settings.wait) as src, \
                    server.connect(target_conninfo, wait=settings.wait) as dst:
                reports.append(_check_one(src, dst, ref))
    return reports


def _column_type(conn: psycopg.Connection, table: str, column: str, ref: SoftReference, side: str) -> str:
    row = conn.execute(
        """SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
           WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped""",
        (table, column),
    ).fetchone()
    if row is None:
        raise BadInput(f"{ref.source}: {side} column {table}.{column} does not exist in {conn.info.dbname};"
                       f" fix {REFERENCES_FILE}")
    return row[0]


def _check_one(src: psycopg.Connection, dst: psycopg.Connection, ref: SoftReference) -> ReferenceReport:
    _column_type(src, ref.table, ref.column, ref, "the referencing")
    for here, there in ref.copies:
        _column_type(src, ref.table, here, ref, "the copying")
        _column_type(dst, ref.target_table, there, ref, "the copied")
    id_type = _column_type(dst, ref.target_table, ref.target_column, ref, "the referenced")
    copy_cols = [sql.Identifier(here) for here, _ in ref.copies]
    temp_cols = [sql.Identifier(f"c{n}") for n in range(len(ref.copies))]
    grouped = sql.SQL(", ").join([sql.Identifier(ref.column), *copy_cols])
    # One row per distinct (id, copies) with its row count: the data crosses once, however large.
    select = sql.SQL("COPY (SELECT {g}, count(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY {g}) TO STDOUT").format(
        g=grouped, t=sql.Identifier(ref.table), c=sql.Identifier(ref.column))
    try:
        with dst.transaction():
            dst.execute(sql.SQL("CREATE TEMP TABLE _dbtool_refs (id {}, {} n bigint) ON COMMIT DROP").format(
                sql.SQL(id_type), sql.SQL("").join(sql.SQL("{} text, ").format(c) for c in temp_cols)))
            with src.cursor().copy(select) as out, dst.cursor().copy("COPY _dbtool_refs FROM STDIN") as into:
                for chunk in out:
                    into.write(chunk)
            return _findings(dst, ref, temp_cols)
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"{ref.describe()}: check failed: {(exc.diag.message_primary or str(exc)).strip()};"
                                  " check both databases are reachable and migrated") from None


def _findings(dst: psycopg.Connection, ref: SoftReference, temp_cols: list[sql.Identifier]) -> ReferenceReport:
    report = ReferenceReport(ref)
    report.rows = int(dst.execute("SELECT coalesce(sum(n), 0) FROM _dbtool_refs").fetchone()[0])
    target, key = sql.Identifier(ref.target_table), sql.Identifier(ref.target_column)
    dangling = sql.SQL(
        """SELECT coalesce(sum(r.n), 0), (array_agg(DISTINCT r.id::text))[1:%s] FROM _dbtool_refs r
           WHERE NOT EXISTS (SELECT 1 FROM {t} x WHERE x.{k} = r.id)""").format(t=target, k=key)
    rows, examples = dst.execute(dangling, (EXAMPLES,)).fetchone()
    report.dangling = Mismatch(int(rows), examples or [])
    for (here, there), temp in zip(ref.copies, temp_cols):
        stale = sql.SQL(
            """SELECT coalesce(sum(r.n), 0), (array_agg(DISTINCT r.id::text))[1:%s] FROM _dbtool_refs r
               JOIN {t} x ON x.{k} = r.id WHERE x.{there}::text IS DISTINCT FROM r.{temp}""").format(
            t=target, k=key, there=sql.Identifier(there), temp=temp)
        rows, examples = dst.execute(stale, (EXAMPLES,)).fetchone()
        report.stale[here] = Mismatch(int(rows), examples or [])
    return report

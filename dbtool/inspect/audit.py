"""The index audit: unused, duplicate, redundant, invalid and missing indexes, read from the catalog.

`audit_connection` sends the same six catalog queries (four here, two in health.py) whatever the
size of the database (no query per table or index) and does the comparing in Python. It changes
nothing: every finding carries the SQL that would fix it, for a person to run.

Usage evidence (unused indexes, sequential scans) comes from the statistics collector. A database
whose collector has nothing (track_counts off, or no table ever written, read or analysed since the
last reset) gets the structural checks only, and a notice saying why the usage checks were skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psycopg
from pglast.stream import maybe_double_quote_name
from psycopg.conninfo import conninfo_to_dict

from .. import server
from ..config import (
    Settings,
    check_dsn,
    describe,
    load_toml,
    select_services,
)
from ..databases import require_database
from ..errors import BadInput
from ..migrate.state import TRACKING_TABLES
from .health import QUERIES as HEALTH_QUERIES
from .health import REPLICA_QUERIES, health_findings, replica_scans
from .indexes import INDEXES, USER_RELATION, AuditIndex, covers, duplicate_pairs, index_of

CONFIG_FILE = "dbtool.toml"
LEVELS = ("error", "warning", "info")  # most severe first
KIND_LEVEL = {
    "invalid": "error",
    "duplicate": "warning",
    "redundant": "warning",
    "fk-without-index": "warning",
    "bloat": "warning",
    "overflow": "warning",
    "low-selectivity": "info",
    "unused": "info",
    "seq-scan": "info",
}
# A table is worth an index when it is scanned whole often, over many rows, and rarely by an index.
SEQ_SCAN_MIN_SCANS = 50
SEQ_SCAN_MIN_ROWS = 10_000  # average rows read per sequential scan
_MAX_NAME = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer identifiers

# How long the statistics have been gathered: since their reset, or (never reset) at least since the
# server started, the latest moment they can be known to have begun.
_DATABASE = """
SELECT current_database(), d.stats_reset, current_setting('track_counts')::boolean,
       now() - coalesce(d.stats_reset, pg_postmaster_start_time())
FROM pg_stat_database d WHERE d.datname = current_database()"""

_FOREIGN_KEYS = f"""
SELECT k.conname, k.conrelid::int8, n.nspname, t.relname,
       quote_ident(n.nspname) || '.' || quote_ident(t.relname),
       k.conkey::int2[],
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.ord)::text[],
       pg_get_constraintdef(k.oid, true)
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE k.contype = 'f' AND k.conparentid = 0 AND {USER_RELATION}
ORDER BY n.nspname, t.relname, k.conname"""

_TABLES = f"""
SELECT t.oid::int8, n.nspname, t.relname, quote_ident(n.nspname) || '.' || quote_ident(t.relname),
       s.seq_scan, s.seq_tup_read, s.idx_scan, s.n_live_tup,
       coalesce(s.n_tup_ins + s.n_tup_upd + s.n_tup_del, 0),
       s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL,
       pg_table_size(t.oid)
FROM pg_class t
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = t.oid
WHERE t.relkind IN ('r', 'p', 'm') AND {USER_RELATION}
ORDER BY n.nspname, t.relname"""

QUERIES = 4 + HEALTH_QUERIES  # what audit_connection sends, whatever the database holds


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class AuditFinding:
    level: str
    kind: str
    schema: str
    table: str
    index: str | None  # None for a table-level finding
    subject: str  # what a silence names: the index, the foreign key, or the table
    size: int  # bytes of the index, or of the table for table-level findings
    evidence: str
    fix: str


@dataclass
class AuditReport:
    database: str
    stats_reset: datetime | None
    usage_checked: bool  # False when the collector had nothing, see notice
    notice: str | None
    tables: int
    indexes: int
    statements: int
    findings: list[AuditFinding] = field(default_factory=list)
    silenced: list[tuple[AuditFinding, str]] = field(default_factory=list)


@dataclass
class ServiceAudit:
    service: str  # the service, or the database name for a plain --dsn
    where: str
    report: AuditReport


# ---------------------------------------------------------------- options


def check_level(level: str | None, option: str = "--fail-on") -> str | None:
    if level is not None and level not in LEVELS:
        raise BadInput(f"{option}: unknown level {level!r}; use one of {', '.join(LEVELS)}")
    return level


_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def parse_size(text: str | int, option: str = "--min-size") -> int:
    """Bytes from '8kB', '1MB', '2GB' or a plain number of bytes; units of 1024 as PostgreSQL uses them."""
    if isinstance(text, int):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
        if not match or match[2].lower() not in _UNITS:
            raise BadInput(f"{option}: {text!r} is not a size; write bytes or a number with kB, MB, GB,"
                           " e.g. --min-size 1MB")
        value, unit = float(match[1]), match[2].lower()
    if value < 0:
        raise BadInput(f"{option}: {text!r} is negative; give a size such as 8kB")
    return int(value * _UNITS[unit])


def pretty_size(size: int) -> str:
    """Like pg_size_pretty: bytes below 10 kB, then kB, MB and GB."""
    if size < 10 * 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("kB", "MB", "GB"):
        value /= 1024
        if value < 10 * 1024 or unit == "GB":
            break
    return f"{value:.0f} {unit}"


def load_silences(settings: Settings, service: str) -> dict[str, str]:
    """{index name: reason} from [[audit.silence]] in the service's dbtool.toml; none without the file."""
    path = settings.schemas_dir / service / CONFIG_FILE
    if not path.exists():
        return {}
    section = load_toml(path).get("audit", {})
    entries = section.get("silence", []) if isinstance(section, dict) else None
    if not isinstance(entries, list):
        raise BadInput(f"{path}: [audit] silence must be a list of [[audit.silence]] tables with index and reason")
    silences = {}
    for n, entry in enumerate(entries, 1):
        name = entry.get("index") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise BadInput(f"{path}: [[audit.silence]] entry {n} names no index; add index = \"<index name>\"")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise BadInput(f"{path}: the silence of index {name} has no reason; add reason = \"<why it stays>\"")
        silences[name] = reason.strip()
    return silences


# ---------------------------------------------------------------- the audit


def audit(
    settings: Settings, services: list[str] | None = None, min_size: int | str = 0,
    fail_on: str | None = None, replicas: list[str] | None = None,
) -> list[ServiceAudit]:
    """Audit each selected service's database, or with --dsn and no SERVICE the --dsn database alone.

    `replicas` (the second and later --dsn) are hot standbys of that one database: their index scans
    count for the unused check, one catalog query each."""
    check_level(fail_on)
    min_bytes = parse_size(min_size)
    replicas = [check_dsn(r, "--dsn") for r in replicas or []]
    if replicas and settings.dsn is None:
        raise BadInput("--dsn: replicas need the primary first; give --dsn PRIMARY then --dsn REPLICA for each replica")
    if settings.dsn is not None and not services:
        # Any database at all: no service folder, so no silences.
        dbname = str(conninfo_to_dict(settings.dsn).get("dbname") or "")
        plans = [(dbname or "--dsn", settings.dsn, describe(settings.dsn) + " (--dsn)", {})]
    else:
        plans = []
        chosen = select_services(settings, services)
        silences = {s: load_silences(settings, s) for s in chosen}  # bad config fails before any connection
        for service in chosen:
            conninfo, where = require_database(settings, service)
            plans.append((service, conninfo, where, silences[service]))
    if replicas and len(plans) != 1:
        raise BadInput(f"--dsn given {len(replicas) + 1} times: the first is the primary and the others its"
                       " replicas, so audit one database: one SERVICE, or none")
    results = []
    for name, conninfo, where, silences_of in plans:
        scans = []
        for replica in replicas:
            with server.connect(replica, wait=settings.wait) as conn:
                scans.append(replica_scans(conn))
        with server.connect(conninfo, wait=settings.wait) as conn:
            report = audit_connection(conn, min_size_bytes=min_bytes, silences=silences_of, replicas=scans)
        report.statements += REPLICA_QUERIES * len(replicas)
        if replicas:
            where += f", with {len(replicas)} replica(s): {', '.join(describe(r) for r in replicas)}"
        results.append(ServiceAudit(name, where, report))
    return results


def reaches(results: list[ServiceAudit], level: str | None) -> bool:
    """True when any finding that is not silenced is at least as severe as level."""
    if level is None:
        return False
    worst = LEVELS.index(level)
    return any(LEVELS.index(f.level) <= worst for r in results for f in r.report.findings)


def audit_connection(
    conn: psycopg.Connection, *, min_size_bytes: int = 0, silences: dict[str, str] | None = None,
    replicas: list[dict[tuple[str, str], int]] | None = None,
) -> AuditReport:
    """Every finding on one open connection, with QUERIES catalog queries in all; `replicas` holds each
    replica's index scans (health.replica_scans), merged into the unused check."""
    params = {"skip": list(TRACKING_TABLES)}
    cur = conn.cursor()
    database, stats_reset, track_counts, stats_age = cur.execute(_DATABASE).fetchone()  # type: ignore[misc]
    indexes = [index_of(row) for row in cur.execute(INDEXES, params).fetchall()]
    foreign_keys = cur.execute(_FOREIGN_KEYS, params).fetchall()
    tables = cur.execute(_TABLES, params).fetchall()
    cur.close()
    health = [AuditFinding(KIND_LEVEL[h.kind], h.kind, h.schema, h.table, h.index, h.subject, h.size, h.evidence,
                           h.fix) for h in health_findings(conn)]
    if replicas:
        # An index any replica reads is used: the primary's zero alone does not make it unused.
        indexes = [replace(i, scans=i.scans + sum(r.get((i.schema, i.name), 0) for r in replicas))
                   if i.scans is not None else i for i in indexes]

    # Real reads only: an index scan, or more sequential scans than building the table's indexes
    # made. Rows written by a seed or an ANALYZE say nothing about which indexes queries use.
    built = {}
    for index in indexes:
        built[index.table_oid] = built.get(index.table_oid, 0) + 1
    has_stats = track_counts and (any(
        (idx or 0) > 0 or (seq or 0) > built.get(oid, 0)
        for oid, _, _, _, seq, _, idx, _, _, _, _ in tables
    ) or any(sum(scans.values()) > 0 for scans in replicas or []))  # reads may all go to the replicas
    notice = None
    if not tables:
        notice = f"database {database} has no user tables; nothing to audit"
    elif not track_counts:
        notice = (f"database {database} collects no statistics (track_counts is off); unused-index and"
                  " sequential-scan checks skipped; set track_counts = on and audit after a day of traffic")
    elif not has_stats:
        notice = (f"database {database} has no usage statistics yet (no query has read a table in the"
                  f" {_age(stats_age)} since the statistics began; writes and ANALYZE do not count);"
                  " unused-index and sequential-scan checks skipped; audit again after real traffic")

    findings: dict[tuple, AuditFinding] = {}  # one finding per subject: the first, most severe kind wins
    live = [i for i in indexes if i.valid and not i.partition]
    pairs = duplicate_pairs(live)
    for finding in (
        _invalid(indexes) + _duplicates(pairs) + _redundant(live, pairs)
        + _missing_fk_indexes(foreign_keys, indexes, tables) + health
        + (_unused(live, foreign_keys, stats_reset, stats_age, min_size_bytes, len(replicas or ())) + _seq_scans(tables)
           if has_stats else [])
    ):
        findings.setdefault((finding.schema, finding.table, finding.subject), finding)

    silences = silences or {}
    report = AuditReport(database, stats_reset, bool(has_stats), notice, len(tables), len(indexes), QUERIES)
    for finding in findings.values():
        reason = silences.get(finding.subject, silences.get(f"{finding.schema}.{finding.subject}"))
        if reason is not None:
            report.silenced.append((finding, reason))
        else:
            report.findings.append(finding)
    report.findings.sort(key=lambda f: (LEVELS.index(f.level), f.schema, f.table, f.subject))
    return report


def _finding(kind: str, index: AuditIndex, evidence: str, fix: str, level: str | None = None) -> AuditFinding:
    return AuditFinding(level or KIND_LEVEL[kind], kind, index.schema, index.table, index.name, index.name,
                        index.size, evidence, fix)


def _drop(index: AuditIndex) -> str:
    """The fix that removes an index: its constraint when it backs one, else the index itself."""
    if index.constraint:
        table = f"{maybe_double_quote_name(index.schema)}.{maybe_double_quote_name(index.table)}"
        return f"ALTER TABLE {table} DROP CONSTRAINT {maybe_double_quote_name(index.constraint)};"
    return f"DROP INDEX CONCURRENTLY IF EXISTS {index.qualified};"


def _invalid(indexes: list[AuditIndex]) -> list[AuditFinding]:
    found = []
    for index in indexes:
        if index.valid:
            continue
        if re.search(r"_cc(new|old)\d*$", index.name):
            # A leftover of a failed REINDEX CONCURRENTLY: the original index is still there.
            fix = f"DROP INDEX CONCURRENTLY IF EXISTS {index.qualified};"
            why = "left behind by a failed REINDEX CONCURRENTLY; the index it was rebuilding still serves"
        else:
            fix = f"REINDEX INDEX CONCURRENTLY {index.qualified};"
            why = ("a CREATE INDEX CONCURRENTLY failed (or is still running): the index is maintained on every"
                   " write but no query uses it; rebuild it, or DROP INDEX CONCURRENTLY and create it again")
            if index.unique:
                why += "; a unique index fails again until the duplicate rows are gone"
        found.append(_finding("invalid", index, f"{index.name} is not valid: {why}", fix))
    return found


def _duplicates(pairs: list[tuple[AuditIndex, AuditIndex]]) -> list[AuditFinding]:
    return [
        _finding("duplicate", index,
                 f"{index.describe()} duplicates {keep.describe()}: same columns, operator classes, expressions"
                 f" and predicate; keep {keep.name}", _drop(index))
        for index, keep in pairs
    ]


def _redundant(indexes: list[AuditIndex], pairs: list[tuple[AuditIndex, AuditIndex]]) -> list[AuditFinding]:
    """A plain index served by another: its leading prefix (btree), or its equal that enforces a rule."""
    dropped = {index.oid for index, _ in pairs}
    by_table: dict[int, list[AuditIndex]] = {}
    for index in indexes:
        by_table.setdefault(index.table_oid, []).append(index)
    found = []
    for index in indexes:
        if index.enforces or index.expressions is not None or index.oid in dropped:
            continue
        n = index.key_count
        serving = [other for other in by_table[index.table_oid]
                   if other is not index and other.oid not in dropped and covers(other, index)]
        if not serving:
            continue
        cover = min(serving, key=lambda o: (not o.enforces, o.key_count, o.name))
        how = "has the same columns as" if cover.key_count == n else "is a leading prefix of"
        found.append(_finding("redundant", index,
                              f"{index.describe()} {how} {cover.describe()}, which serves every query it does",
                              _drop(index)))
    return found


def _leads_with(index: AuditIndex, attnums: set[int]) -> bool:
    """Whether a lookup by exactly these columns can use the index: they are its first key columns."""
    n = len(attnums)
    return (index.valid and index.predicate is None and index.key_count >= n
            and set(index.key[:n]) == attnums and index.am in ("btree", "hash"))


def _missing_fk_indexes(foreign_keys: list[tuple], indexes: list[AuditIndex], tables: list[tuple]) -> list[AuditFinding]:
    size_rows = {oid: (size, live) for oid, _, _, _, _, _, _, live, _, _, size in tables}
    by_table: dict[int, list[AuditIndex]] = {}
    for index in indexes:
        by_table.setdefault(index.table_oid, []).append(index)
    taken = {(i.schema, i.name) for i in indexes}
    found = []
    for conname, table_oid, schema, table, qualified, conkey, columns, definition in foreign_keys:
        size, rows = size_rows.get(table_oid, (0, None))
        if any(_leads_with(i, set(conkey)) for i in by_table.get(table_oid, [])):
            continue
        # IF NOT EXISTS would quietly keep another index that has the name; pick a free one.
        base = name = f"idx_{table}_{'_'.join(columns)}"[:_MAX_NAME]
        n = 1
        while (schema, name) in taken:
            n += 1
            name = f"{base[:_MAX_NAME - len(str(n)) - 1]}_{n}"
        taken.add((schema, name))
        cols = ", ".join(maybe_double_quote_name(c) for c in columns)
        fix = (f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {maybe_double_quote_name(name)}"
               f" ON {qualified} ({cols});")
        rows_note = f" ({rows:,} rows)" if rows else ""
        evidence = (f"foreign key {conname} {definition}: no valid index on {table}{rows_note} leads with"
                    f" ({', '.join(columns)}), so each delete or key update of a referenced row scans {table}"
                    " and joins on it cannot use an index")
        found.append(AuditFinding(KIND_LEVEL["fk-without-index"], "fk-without-index", schema, table, None, conname,
                             size, evidence, fix))
    return found


UNUSED_SURE = timedelta(days=7)  # a week of traffic covers the weekly jobs and reports
UNUSED_TOO_SOON = timedelta(days=1)


def unused_level(stats_age: timedelta) -> str:
    """An index unused for a week of statistics is worth a warning; for less, it may serve a job that
    has not run yet: information, with the age said."""
    return "warning" if stats_age >= UNUSED_SURE else "info"


def _age(age: timedelta) -> str:
    if age >= timedelta(days=2):
        return f"{age.days} days"
    hours = int(age.total_seconds() // 3600)
    return f"{hours} h {int(age.total_seconds() // 60) % 60} min" if hours else f"{int(age.total_seconds() // 60)} min"


def _unused(indexes: list[AuditIndex], foreign_keys: list[tuple], stats_reset: datetime | None,
            stats_age: timedelta, min_size: int, replicas: int = 0) -> list[AuditFinding]:
    fk_columns: dict[int, list[set[int]]] = {}
    for fk in foreign_keys:
        fk_columns.setdefault(fk[1], []).append(set(fk[5]))  # conrelid, conkey
    since = (f"in the {_age(stats_age)} since the statistics were reset at"
             f" {stats_reset:%Y-%m-%d %H:%M:%S %Z}".rstrip() if stats_reset
             else f"in the {_age(stats_age)} (at least) since the statistics began")
    if stats_age < UNUSED_TOO_SOON:
        since += "; too soon to be sure, audit again after a week of traffic"
    found = []
    for index in indexes:
        if index.scans != 0 or index.enforces or index.constraint or index.size < min_size:
            continue
        if any(_leads_with(index, cols) for cols in fk_columns.get(index.table_oid, [])):
            continue  # it serves a foreign key's checks, which are not counted as scans
        found.append(_finding(
            "unused", index, level=unused_level(stats_age), evidence=
            f"{index.describe()} was never scanned {since}{_on_hosts(replicas)};"
            f" it costs {pretty_size(index.size)} and slows every write",
            fix=f"DROP INDEX CONCURRENTLY IF EXISTS {index.qualified};"))
    return found


def _on_hosts(replicas: int) -> str:
    return f", on the primary nor on its {replicas} replica(s)" if replicas else ""


def _seq_scans(tables: list[tuple]) -> list[AuditFinding]:
    found = []
    for _, schema, table, qualified, seq, seq_read, idx, live, _, _, size in tables:
        if not seq or seq < SEQ_SCAN_MIN_SCANS or seq_read / seq < SEQ_SCAN_MIN_ROWS or (idx or 0) >= seq:
            continue
        evidence = (f"{seq:,} sequential scans read {seq_read:,} rows ({seq_read // seq:,} per scan) against"
                    f" {idx or 0:,} index scans; {table} holds {live or 0:,} rows")
        fix = (f"-- find the filtered columns with EXPLAIN ANALYZE of the queries on {table}, then:\n"
               f"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{table}_<columns> ON {qualified} (<columns>);")
        found.append(AuditFinding(KIND_LEVEL["seq-scan"], "seq-scan", schema, table, None, table, size, evidence, fix))
    return found

"""`dbtool redis audit`: the live keyspace against the declared keys (schemas/<service>/redis.toml).

SCAN walks the keyspace in bounded batches (never KEYS, which blocks the server); each batch's TTL,
TYPE, MEMORY USAGE and GET go out in one read-only script call, so a batch costs two round trips
whatever its size. Reported, per declared pattern with counts and example keys:

- stray: a key no declaration matches;            - no-ttl / ttl-too-long: a key that outlives its TTL;
- wrong-type: a hash where a string is declared;  - bad-json / wrong-shape: a value that does not parse
- bad-placeholder: an id segment of the wrong type   or lacks a required field of the declared type;
- too-large: over max_size (MEMORY USAGE);        - dangling: a placeholder pointing at no row.

Placeholder values are checked against the database in one query per reference per batch of ids.
Nothing is changed, in Redis or in a database.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Iterable

import psycopg
import redis
from psycopg import sql

from .. import server
from ..config import Settings, resolve_target, select_services
from ..errors import BadInput, DatabaseUnavailable
from . import client as rclient
from . import keyspace, locate
from .keyspace import KeyDecl, Reference

LEVELS = ("error", "warning", "info")  # most severe first, as audit-indexes
KIND_LEVEL = {
    "wrong-type": "error",
    "bad-json": "error",
    "stray": "warning",
    "no-ttl": "warning",
    "ttl-too-long": "warning",
    "wrong-shape": "warning",
    "bad-placeholder": "warning",
    "too-large": "warning",
    "dangling": "warning",
}
FIXES = {
    "stray": "declare the key in schemas/<service>/redis.toml, or stop writing it (and DEL the keys)",
    "no-ttl": "write the key with SET ... EX <ttl> (or EXPIRE it); every key must expire",
    "ttl-too-long": "write the key with the declared TTL, or raise ttl in redis.toml",
    "wrong-type": "write the declared value type, or fix value in redis.toml",
    "bad-json": "write the value with a JSON encoder; the reader cannot parse this one",
    "wrong-shape": "write the value in the declared shape, or fix value or json in redis.toml",
    "bad-placeholder": "build the key from a real id of the declared type",
    "too-large": "keep fewer items in the value, or raise max_size in redis.toml",
    "dangling": "invalidate (DEL) cache keys when their row is deleted",
}
SCAN_COUNT = 1000  # keys per SCAN batch: large enough to amortise a round trip, small enough never to block
EXAMPLES = 3
ID_BATCH = 50_000  # ids per reference query


@dataclass
class Finding:
    """One kind of problem on one pattern: how many keys, and a few of them."""

    level: str
    kind: str
    service: str
    pattern: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    detail: str = ""  # what is wrong with the first example

    @property
    def fix(self) -> str:
        return FIXES[self.kind]


@dataclass
class PatternStats:
    service: str
    name: str
    pattern: str
    ttl: str
    keys: int = 0
    checked: int = 0  # keys whose value, size and references were checked (all unless --sample)
    findings: int = 0  # findings on keys of this pattern


@dataclass
class KeyReference:
    """One declared reference of a key pattern, as `check-references` reports it."""

    service: str
    pattern: str
    reference: str  # "{session_id} -> chat.chat_sessions.id"
    keys: int = 0  # keys checked
    dangling: int = 0  # keys pointing at no row
    examples: list[str] = field(default_factory=list)


@dataclass
class RedisAudit:
    where: str
    services: list[str]
    keys: int = 0  # every key SCAN returned
    patterns: list[PatternStats] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    references: list[KeyReference] = field(default_factory=list)
    scan_batches: int = 0
    inspect_calls: int = 0  # one script call per batch: TTL, TYPE, GET, MEMORY USAGE
    queries: int = 0  # reference queries sent to the databases
    seconds: float = 0.0
    reference_seconds: float = 0.0  # of which checking ids against the databases

    @property
    def round_trips(self) -> int:
        return self.scan_batches + self.inspect_calls

    @property
    def stray(self) -> int:
        return sum(f.count for f in self.findings if f.kind == "stray")


def check_level(level: str | None) -> str | None:
    if level is not None and level not in LEVELS:
        raise BadInput(f"--fail-on: unknown level {level!r}; use one of {', '.join(LEVELS)}")
    return level


def reaches(results: list[RedisAudit], level: str | None) -> bool:
    """True when any finding is at least as severe as level (None: never)."""
    if level is None:
        return False
    worst = LEVELS.index(level)
    return any(LEVELS.index(f.level) <= worst for r in results for f in r.findings)


def audit(settings: Settings, services: list[str] | None = None, redis_url: str | None = None,
          fail_on: str | None = None, sample: int | None = None) -> list[RedisAudit]:
    """Audit the Redis of each selected service that declares keys; one report per distinct Redis."""
    check_level(fail_on)
    if sample is not None and sample < 1:
        raise BadInput(f"--sample {sample}: give how many keys per pattern to check the values of, 1 or more")
    selected = select_services(settings, services)
    declared = keyspace.load_all(settings)  # every service's patterns: a key of another one is no stray
    users = [s for s in selected if declared.get(s)]
    if not users:
        raise BadInput(f"no selected service declares Redis keys; add schemas/<service>/{keyspace.REDIS_FILE}")
    by_url: dict[str, tuple[locate.RedisTarget, list[str]]] = {}
    for service in users:
        target = locate.resolve(settings, service, redis_url)
        url = locate.url_of(target, settings)
        by_url.setdefault(url, (target, []))[1].append(service)
    decls = [d for ds in declared.values() for d in ds]
    strays_of = None if not services else set(selected)
    return [_audit_one(settings, url, target, names, decls, strays_of, sample)
            for url, (target, names) in by_url.items()]


def check_references(settings: Settings, services: list[str] | None = None) -> list[KeyReference]:
    """`check-references` for Redis: the declared references of every key pattern, checked by an audit."""
    selected = select_services(settings, services)
    declared = keyspace.load_all(settings)
    users = [s for s in selected if any(d.references for d in declared.get(s, []))]
    if not users:
        return []
    # Only patterns that have keys: a reference no key holds yet has nothing to check.
    return [ref for result in audit(settings, users) for ref in result.references]


class _Scan:
    """What one audit accumulates while the batches go by."""

    def __init__(self, report: RedisAudit, decls: list[KeyDecl], services: list[str], strays_of: set[str] | None,
                 sample: int | None) -> None:
        self.report = report
        self.decls = [(d, d.regex()) for d in decls]
        self.stats = {d: PatternStats(d.service, d.name, d.pattern, d.ttl_text) for d in decls if d.service in services}
        self.strays_of = strays_of
        self.sample = sample
        self.groups: dict[tuple[str, str, str], Finding] = {}
        # Per reference: id -> keys holding it, and id -> the first such key; checked against the
        # database at the end. Plain str/int values, no list per id: a million small containers
        # would make every garbage collection walk them all.
        self.ids: dict[tuple[KeyDecl, Reference], dict[str, int]] = {}
        self.first: dict[tuple[KeyDecl, Reference], dict[str, str]] = {}
        self.inspect = None  # the registered _INSPECT script

    def add(self, kind: str, service: str, pattern: str, key: str, detail: str) -> None:
        finding = self.groups.get((kind, service, pattern))
        if finding is None:
            finding = self.groups[(kind, service, pattern)] = Finding(KIND_LEVEL[kind], kind, service, pattern,
                                                                      detail=detail)
        finding.count += 1
        if len(finding.examples) < EXAMPLES:
            finding.examples.append(key)

    def match(self, key: str) -> tuple[KeyDecl, dict[str, str]] | None:
        for decl, regex in self.decls:
            m = regex.fullmatch(key)
            if m:
                return decl, m.groupdict()
        return None


def _audit_one(settings: Settings, url: str, target: locate.RedisTarget, services: list[str],
               decls: list[KeyDecl], strays_of: set[str] | None, sample: int | None) -> RedisAudit:
    started = time.perf_counter()
    report = RedisAudit(locate.describe(target, url), services)
    scan = _Scan(report, decls, services, strays_of, sample)
    conn = rclient.connect(url, decode=False)
    try:
        cursor = 0
        while True:
            cursor, keys = rclient.retrying(lambda: conn.scan(cursor, count=SCAN_COUNT), url)
            report.scan_batches += 1
            if keys:
                _batch(conn, url, scan, keys)
            if cursor == 0:
                break
    except redis.ResponseError as exc:  # e.g. a managed Redis that renamed SCAN, EVALSHA or MEMORY
        raise DatabaseUnavailable(f"Redis at {locate.mask(url)} refused a command the audit needs ({exc});"
                                  " audit a Redis that allows SCAN, EVALSHA and MEMORY USAGE") from None
    finally:
        conn.close()
    checking = time.perf_counter()
    _references(settings, scan)
    report.reference_seconds = time.perf_counter() - checking
    report.patterns = list(scan.stats.values())
    report.findings = sorted(scan.groups.values(), key=lambda f: (LEVELS.index(f.level), f.service, f.pattern, f.kind))
    report.seconds = time.perf_counter() - started
    return report


# One call per SCAN batch: for each key its TTL, TYPE, value (flag "v") and MEMORY USAGE (flag "s"),
# four entries per key, false where not asked. A script rather than a pipeline of 4 commands a key:
# the batch costs one round trip, and the client packs and parses one command instead of thousands.
# It reads only, and a batch is bounded by SCAN's COUNT, so it holds the server for milliseconds.
_INSPECT = """
local out = {}
for i, key in ipairs(KEYS) do
  local flags = ARGV[i]
  out[#out + 1] = redis.call('TTL', key)
  local kind = redis.call('TYPE', key).ok
  out[#out + 1] = kind
  if kind == 'string' and string.find(flags, 'v', 1, true) then
    out[#out + 1] = redis.call('GET', key)
  else
    out[#out + 1] = false
  end
  if kind ~= 'none' and string.find(flags, 's', 1, true) then
    out[#out + 1] = redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') or false
  else
    out[#out + 1] = false
  end
end
return out
"""


def _batch(conn, url: str, scan: _Scan, raw_keys: list[bytes]) -> None:
    """One script call for the batch: TTL and TYPE of every key; GET and MEMORY USAGE where they are checked."""
    plan = []  # (key, decl, placeholder values, checked)
    keys: list[bytes] = []
    flags: list[str] = []
    for raw in raw_keys:
        key = raw.decode("utf-8", "backslashreplace")
        scan.report.keys += 1
        found = scan.match(key)
        if found is None:
            service = key.split(":", 1)[0]
            if scan.strays_of is None or service in scan.strays_of:
                prefix = ":".join(key.split(":")[:2]) + ":*" if ":" in key else key
                scan.add("stray", service, prefix, key, "matches no declared pattern")
            continue
        decl, groups = found
        stats = scan.stats.get(decl)
        if stats is None:
            continue  # a key of a service not selected
        stats.keys += 1
        checked = scan.sample is None or stats.checked < scan.sample
        if checked:
            stats.checked += 1
        keys.append(raw)
        flags.append(("v" if checked and decl.value in ("json", "integer") else "")
                     + ("s" if checked and decl.max_size is not None else "") or "-")
        plan.append((key, decl, groups, checked))
    if not plan:
        return
    if scan.inspect is None:
        scan.inspect = conn.register_script(_INSPECT)
    replies = rclient.retrying(lambda: scan.inspect(keys=keys, args=flags), url)
    scan.report.inspect_calls += 1
    for n, (key, decl, groups, checked) in enumerate(plan):
        ttl, kind, value, size = replies[4 * n: 4 * n + 4]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if ttl == -2 or kind == "none":
            continue  # expired between SCAN and now
        problems = _check_key(scan, key, decl, groups, checked, ttl, kind, value, size)
        if problems:
            scan.stats[decl].findings += problems


def _check_key(scan: _Scan, key: str, decl: KeyDecl, groups: dict[str, str], checked: bool, ttl, kind, value,
               size) -> int:
    before = sum(f.count for f in scan.groups.values())

    def add(kind_: str, detail: str) -> None:
        scan.add(kind_, decl.service, decl.pattern, key, detail)

    if ttl == -1:
        add("no-ttl", f"no TTL; declared {decl.ttl_text}")
    elif isinstance(ttl, int) and ttl > decl.ttl_max:
        add("ttl-too-long", f"TTL {ttl} s, declared {decl.ttl_text}")
    if kind != keyspace.REDIS_TYPE[decl.value]:
        add("wrong-type", f"a {kind}, declared {decl.value}")
    elif checked and isinstance(value, bytes):
        _check_value(add, decl, value)
    bad_ids = [ph for ph, t in decl.placeholders if not keyspace.placeholder_ok(t, groups[ph])]
    if bad_ids:
        ph = bad_ids[0]
        add("bad-placeholder", f"{{{ph}}} = {groups[ph]!r} is no {dict(decl.placeholders)[ph]}")
    if isinstance(size, int) and decl.max_size is not None and size > decl.max_size:
        add("too-large", f"{size:,} bytes, declared at most {decl.max_size:,}")
    if checked:
        for ref in decl.references:
            if ref.placeholder not in bad_ids:
                value = groups[ref.placeholder]
                counts = scan.ids.setdefault((decl, ref), {})
                if value not in counts:
                    counts[value] = 0
                    scan.first.setdefault((decl, ref), {})[value] = key
                counts[value] += 1
    return sum(f.count for f in scan.groups.values()) - before


_JSON_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def _json_type(value: object) -> str:
    for name, ok in _JSON_CHECKS.items():
        if ok(value):
            return name
    return "null"


def _check_value(add, decl: KeyDecl, value: bytes) -> None:
    if decl.value == "integer":
        try:
            int(value)
        except ValueError:
            add("wrong-shape", f"value {value[:20].decode('utf-8', 'backslashreplace')!r} is no integer")
        return
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        add("bad-json", f"not JSON: {str(exc).split(':')[0]}")
        return
    if not decl.json_fields:
        return
    if not isinstance(doc, dict):
        add("wrong-shape", f"a JSON {_json_type(doc)}, declared an object with {', '.join(f for f, _ in decl.json_fields)}")
        return
    for name, wanted in decl.json_fields:
        if name not in doc:
            add("wrong-shape", f"no field {name!r} ({wanted})")
            return
        if not _JSON_CHECKS[wanted](doc[name]):
            add("wrong-shape", f"field {name!r} is a {_json_type(doc[name])}, declared {wanted}")
            return


# ---------------------------------------------------------------- references


_SQL_TYPE = {"uuid": "uuid", "int": "bigint"}


def _references(settings: Settings, scan: _Scan) -> None:
    """Each reference's distinct ids, in batches, against the table they point at: the missing ones dangle."""
    conns: dict[str, psycopg.Connection] = {}
    try:
        for (decl, ref), ids in scan.ids.items():
            conn = conns.get(ref.service)
            if conn is None:
                target = resolve_target(ref.service, settings)
                conn = conns[ref.service] = server.connect(server.target_conninfo(target, settings), wait=settings.wait)
            kind = dict(decl.placeholders)[ref.placeholder]
            checked = KeyReference(decl.service, decl.pattern, ref.describe(), sum(ids.values()))
            scan.report.references.append(checked)
            # Sorted, the ids walk the index in order: each batch touches neighbouring pages.
            for missing in _missing(conn, decl, ref, kind, sorted(ids), scan):
                count, key = ids[missing], scan.first[(decl, ref)][missing]
                checked.dangling += count
                if len(checked.examples) < EXAMPLES:
                    checked.examples.append(key)
                for _ in range(count):
                    scan.add("dangling", decl.service, decl.pattern, key,
                             f"{{{ref.placeholder}}} {missing} is no row of {ref.service}.{ref.table}")
                scan.stats[decl].findings += count
    finally:
        for conn in conns.values():
            conn.close()


def _missing(conn: psycopg.Connection, decl: KeyDecl, ref: Reference, kind: str, ids: list[str],
             scan: _Scan) -> Iterable[str]:
    cast = _SQL_TYPE.get(kind)
    column = sql.Identifier(ref.column)
    compare = (sql.SQL("t.{} = x.id::{}").format(column, sql.SQL(cast)) if cast
               else sql.SQL("t.{}::text = x.id").format(column))
    query = sql.SQL("SELECT x.id FROM unnest(%s::text[]) AS x(id)"
                    " WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE {})").format(sql.Identifier(ref.table), compare)
    for start in range(0, len(ids), ID_BATCH):
        try:
            rows = conn.execute(query, (ids[start:start + ID_BATCH],)).fetchall()
        except psycopg.errors.UndefinedTable:
            raise BadInput(f"{decl.where}: {ref.describe()}: table {ref.table} does not exist in"
                           f" {conn.info.dbname}; run 'dbtool migrate {ref.service}' or fix references") from None
        except psycopg.errors.UndefinedColumn:
            raise BadInput(f"{decl.where}: {ref.describe()}: column {ref.table}.{ref.column} does not exist in"
                           f" {conn.info.dbname}; fix references") from None
        except psycopg.Error as exc:
            raise DatabaseUnavailable(f"{decl.where}: checking {ref.describe()} failed:"
                                      f" {(exc.diag.message_primary or str(exc)).strip()}") from None
        scan.report.queries += 1
        yield from (row[0] for row in rows)

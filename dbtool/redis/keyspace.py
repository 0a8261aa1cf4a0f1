"""The declared Redis keys of each service: schemas/<service>/redis.toml, loaded and validated.

One [[key]] table per key pattern:

    [[key]]
    name = "context"
    pattern = "chat:context:{session_id}"          # {service}:{resource}:{id}:{field}
    placeholders = { session_id = "uuid" }          # uuid, date (yyyymmdd), int, slug
    value = "json"                                  # string, integer, json, hash, list, set, zset
    json = { messages = "array", message_count = "integer", last_updated = "string" }
    ttl = "1h"                                      # seconds, "60s", "5m", "1h", or a range [min, max]
    max_size = "64kB"                               # MEMORY USAGE limit, bytes or kB/MB
    references = { session_id = "chat.chat_sessions.id" }

Every error names the file and line and says what to write instead (exit 2).
"""

from __future__ import annotations

import re
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import Settings, discover_services
from ..errors import BadInput

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REDIS_FILE = "redis.toml"
VALUE_TYPES = ("string", "integer", "json", "hash", "list", "set", "zset")
# What Redis's TYPE answers for each declared value type.
REDIS_TYPE = {"string": "string", "integer": "string", "json": "string", "hash": "hash", "list": "list",
              "set": "set", "zset": "zset"}
JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")
PLACEHOLDER_TYPES = ("uuid", "date", "int", "slug")
KEY_FIELDS = {"name", "pattern", "placeholders", "value", "json", "ttl", "max_size", "references"}
_LITERAL = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_NAME = r"[a-z_][a-z0-9_]*"
_DURATION = re.compile(r"(\d+)\s*(s|m|h|d)?")
_SECONDS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"(\d+)\s*(b|bytes|kb|mb|gb)?", re.IGNORECASE)
_BYTES = {None: 1, "b": 1, "bytes": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


@dataclass(frozen=True)
class Reference:
    placeholder: str
    service: str
    table: str
    column: str

    def describe(self) -> str:
        return f"{{{self.placeholder}}} -> {self.service}.{self.table}.{self.column}"


@dataclass(frozen=True)
class KeyDecl:
    service: str
    name: str
    pattern: str
    placeholders: tuple[tuple[str, str], ...]  # (name, type) in the order they appear
    value: str
    json_fields: tuple[tuple[str, str], ...]  # required (field, JSON type) of a json value
    ttl_min: int
    ttl_max: int
    max_size: int | None
    references: tuple[Reference, ...]
    source: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def ttl_text(self) -> str:
        return f"{self.ttl_max} s" if self.ttl_min == self.ttl_max else f"{self.ttl_min}-{self.ttl_max} s"

    def regex(self) -> re.Pattern[str]:
        # A placeholder is one whole segment: anything but ':'; its type is checked after the match.
        parts = [f"(?P<{m[1:-1]}>[^:]+)" if _PLACEHOLDER.fullmatch(m) else re.escape(m)
                 for m in self.pattern.split(":")]
        return re.compile(":".join(parts))


def placeholder_ok(kind: str, text: str) -> bool:
    """Whether a key's segment is a valid value of its placeholder's declared type."""
    if kind == "uuid":
        try:
            return str(uuid.UUID(text)) == text.lower() and len(text) == 36
        except ValueError:
            return False
    if kind == "date":
        try:
            datetime.strptime(text, "%Y%m%d")
            return len(text) == 8
        except ValueError:
            return False
    if kind == "int":
        return text.isdigit()
    return re.fullmatch(r"[a-z0-9][a-z0-9_-]*", text) is not None  # slug


def load_service(settings: Settings, service: str) -> list[KeyDecl]:
    """A service's declared keys; none when it has no redis.toml."""
    path = settings.schemas_dir / service / REDIS_FILE
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}:1: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = found.group(1) if found else "1"
        reason = re.sub(r"\s*\(at .*\)$", "", str(exc))
        raise BadInput(f"{path}:{line}: not valid TOML ({reason}); fix the file") from None
    lines = text.splitlines()
    if set(data) - {"key"} or not isinstance(data.get("key", []), list):
        raise BadInput(f"{path}:1: expected only [[key]] tables; see the comment at the top of"
                       " dbtool/redis/keyspace.py for the format")
    known = discover_services(settings.schemas_dir)
    decls = [_key(path, lines, service, n, entry, known) for n, entry in enumerate(data.get("key", []))]
    seen: dict[str, KeyDecl] = {}
    for decl in decls:
        for other in seen.values():
            if decl.name == other.name or decl.pattern == other.pattern:
                raise BadInput(f"{decl.where}: key {decl.name!r} ({decl.pattern}) repeats the one at line"
                               f" {other.line}; give each key its own name and pattern")
        seen[decl.name] = decl
    return decls


def load_all(settings: Settings, services: list[str] | None = None) -> dict[str, list[KeyDecl]]:
    """{service: declared keys} for the services named, or every service folder."""
    names = services if services else discover_services(settings.schemas_dir)
    return {s: load_service(settings, s) for s in names}


# ---------------------------------------------------------------- one [[key]] table


def _line_of(lines: list[str], n: int, field: str | None = None) -> int:
    """The line of the n-th [[key]] header, or of `field = ...` inside that table (1-based)."""
    headers = [i for i, text in enumerate(lines) if re.match(r"\s*\[\[\s*key\s*\]\]", text)]
    if n >= len(headers):
        return 1
    start = headers[n]
    if field is None:
        return start + 1
    end = headers[n + 1] if n + 1 < len(headers) else len(lines)
    for i in range(start, end):
        if re.match(rf"\s*{re.escape(field)}\s*=", lines[i]):
            return i + 1
    return start + 1


def _key(path: Path, lines: list[str], service: str, n: int, entry: dict, known: list[str]) -> KeyDecl:
    def fail(field: str | None, message: str) -> BadInput:
        return BadInput(f"{path}:{_line_of(lines, n, field)}: {message}")

    unknown = set(entry) - KEY_FIELDS
    if unknown:
        raise fail(sorted(unknown)[0], f"unknown field {sorted(unknown)[0]!r}; use {', '.join(sorted(KEY_FIELDS))}")
    name, pattern = entry.get("name"), entry.get("pattern")
    if not isinstance(name, str) or not _LITERAL.fullmatch(name):
        raise fail("name" if "name" in entry else None, "name must be a lower_snake_case word, e.g. name = \"context\"")
    if not isinstance(pattern, str):
        raise fail(None, f"key {name!r} has no pattern; add e.g. pattern = \"{service}:context:{{session_id}}\"")
    names = _check_pattern(pattern, service, lambda m: fail("pattern", m))

    placeholders = entry.get("placeholders", {})
    if not isinstance(placeholders, dict):
        raise fail("placeholders", "placeholders must map each {name} to a type, e.g. { session_id = \"uuid\" }")
    for ph in names:
        if ph not in placeholders:
            raise fail("placeholders" if "placeholders" in entry else "pattern",
                       f"placeholder {{{ph}}} has no type; add {ph} = \"uuid\" (or date, int, slug) to placeholders")
    for ph, kind in placeholders.items():
        if ph not in names:
            raise fail("placeholders", f"placeholder {ph!r} is not in the pattern {pattern}; remove it or add {{{ph}}}")
        if kind not in PLACEHOLDER_TYPES:
            raise fail("placeholders", f"placeholder {ph} has type {kind!r}; use one of {', '.join(PLACEHOLDER_TYPES)}")

    value = entry.get("value")
    if value not in VALUE_TYPES:
        raise fail("value" if "value" in entry else None,
                   f"value = {value!r}; use one of {', '.join(VALUE_TYPES)}")
    fields = entry.get("json", {})
    if fields and value != "json":
        raise fail("json", f"json fields are for value = \"json\", not {value!r}; remove them or change value")
    if not isinstance(fields, dict) or any(t not in JSON_TYPES for t in fields.values()):
        raise fail("json", f"json must map each required field to a type: {', '.join(JSON_TYPES)}")

    ttl_min, ttl_max = _ttl(entry.get("ttl"), lambda m: fail("ttl" if "ttl" in entry else None, m))
    max_size = None
    if "max_size" in entry:
        max_size = _size(entry["max_size"], lambda m: fail("max_size", m))

    refs = entry.get("references", {})
    if not isinstance(refs, dict):
        raise fail("references", "references must map a placeholder to \"<service>.<table>.<column>\"")
    references = []
    for ph, target in refs.items():
        if ph not in names:
            raise fail("references", f"references names {ph!r}, which is no placeholder of {pattern}")
        if not isinstance(target, str) or not re.fullmatch(rf"{_NAME}\.{_NAME}\.{_NAME}", target):
            raise fail("references", f"{ph} = {target!r}; write it as \"<service>.<table>.<column>\"")
        target_service, table, column = target.split(".")
        if target_service not in known:
            raise fail("references", f"{ph} points at service {target_service!r}, which is no folder under"
                                     f" {path.parent.parent}; fix the reference")
        references.append(Reference(ph, target_service, table, column))

    return KeyDecl(service, name, pattern, tuple((ph, placeholders[ph]) for ph in names), value,
                   tuple(fields.items()), ttl_min, ttl_max, max_size, tuple(references), path,
                   _line_of(lines, n))


def _check_pattern(pattern: str, service: str, fail) -> list[str]:
    """The naming convention {service}:{resource}:{id}:{field}; returns the placeholder names."""
    segments = pattern.split(":")
    shape = f"write it as {service}:<resource>:<id>[:<field>], e.g. {service}:context:{{session_id}}"
    if not 3 <= len(segments) <= 4:
        raise fail(f"pattern {pattern!r} has {len(segments)} segment(s), the convention has 3 or 4; {shape}")
    if segments[0] != service:
        raise fail(f"pattern {pattern!r} must start with the service name {service!r}; {shape}")
    if not _LITERAL.fullmatch(segments[1]):
        raise fail(f"pattern {pattern!r}: the resource {segments[1]!r} must be a lower_snake_case word; {shape}")
    names = []
    for segment in segments[2:]:
        ph = _PLACEHOLDER.fullmatch(segment)
        if ph:
            if ph.group(1) in names:
                raise fail(f"pattern {pattern!r} repeats {{{ph.group(1)}}}; give each placeholder its own name")
            names.append(ph.group(1))
        elif not _LITERAL.fullmatch(segment):
            raise fail(f"pattern {pattern!r}: segment {segment!r} is neither a lower_snake_case word nor one"
                       f" {{placeholder}}; {shape}")
    return names


def parse_seconds(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _DURATION.fullmatch(value.strip().lower())
        if m:
            return int(m.group(1)) * _SECONDS[m.group(2)]
    return None


def _ttl(value: object, fail) -> tuple[int, int]:
    fix = "give seconds or e.g. \"1h\", \"5m\", \"60s\", or a range [\"1m\", \"5m\"]"
    if value is None:
        raise fail(f"no ttl; every key expires: add ttl = \"1h\" ({fix})")
    bounds = value if isinstance(value, list) else [value, value]
    if len(bounds) != 2:
        raise fail(f"ttl = {value!r}: a range has two bounds; {fix}")
    low, high = (parse_seconds(b) for b in bounds)
    if low is None or high is None:
        raise fail(f"ttl = {value!r} is not a duration; {fix}")
    if low <= 0 or high <= 0:
        raise fail(f"ttl = {value!r}: a TTL of zero or less keeps nothing (or everything forever); {fix}")
    if low > high:
        raise fail(f"ttl = {value!r}: the range's first bound is above its second; write [min, max]")
    return low, high


def _size(value: object, fail) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value.strip())
        if m and int(m.group(1)) > 0:
            unit = m.group(2).lower() if m.group(2) else None
            return int(m.group(1)) * _BYTES[unit]
    raise fail(f"max_size = {value!r}; give bytes above zero, or e.g. \"64kB\", \"1MB\"")

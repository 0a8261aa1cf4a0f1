"""fleet.toml: ordered waves of targets, ${VAR} expanded from the environment, literal passwords refused.

```toml
[[wave]]
name = "canary"
targets = ["postgresql://deploy@db1/tenant_01", "${TENANT_02_URL}"]

[[wave]]
name = "rest"
jobs = 8
query = "SELECT dsn FROM tenants WHERE active ORDER BY id"
directory = "${TENANT_DIRECTORY_URL}"
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..config import load_toml
from ..errors import BadInput

WAVE_KEYS = {"name", "targets", "query", "directory", "jobs"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Where a connection string carries a password: user:PASSWORD@ in a URL, ?password= in its query,
# password=... in a key/value string.
_PASSWORDS = (
    re.compile(r"://[^/@:?]*:([^@/?]*)@"),
    re.compile(r"[?&]password=([^&]*)", re.IGNORECASE),
    re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE),
)


@dataclass(frozen=True)
class Wave:
    name: str
    targets: list[str] = field(default_factory=list)  # expanded connection strings
    query: str | None = None
    directory: str | None = None  # expanded connection string of the database answering `query`
    jobs: int | None = None


@dataclass(frozen=True)
class Fleet:
    path: Path
    waves: list[Wave]


def load_fleet(path: Path, environ: Mapping[str, str]) -> Fleet:
    """Every problem is one BadInput line naming the file, the wave and the fix; nothing connects."""
    if path.is_dir():
        inside = path / "fleet.toml"
        fix = (f"pass --fleet {inside}" if inside.is_file() else
               "give the path of a fleet file (e.g. fleet.toml) listing the databases in [[wave]] tables")
        raise BadInput(f"--fleet {path}: is a folder, and --fleet takes a file; {fix}")
    if not path.is_file():
        raise BadInput(f"--fleet {path}: no such file; give the path of a fleet.toml")
    data = load_toml(path)
    unknown = sorted(set(data) - {"wave"})
    if unknown:
        raise BadInput(f"{path}: unknown table or key {unknown[0]!r}; a fleet file holds [[wave]] tables only")
    raw_waves = data.get("wave")
    if not isinstance(raw_waves, list) or not raw_waves or not all(isinstance(w, dict) for w in raw_waves):
        raise BadInput(f"{path}: no [[wave]] tables; list the targets in [[wave]] tables with a name each")
    waves, names = [], set()
    for number, raw in enumerate(raw_waves, 1):
        wave = _wave(path, number, raw, environ)
        if wave.name in names:
            raise BadInput(f"{path}: wave {wave.name!r} appears twice; give each wave its own name")
        names.add(wave.name)
        waves.append(wave)
    return Fleet(path, waves)


def _wave(path: Path, number: int, raw: dict, environ: Mapping[str, str]) -> Wave:
    name = raw.get("name")
    where = f"{path}: wave {name!r}" if isinstance(name, str) and name else f"{path}: wave {number}"
    unknown = sorted(set(raw) - WAVE_KEYS)
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}; a wave takes {', '.join(sorted(WAVE_KEYS))}")
    if not isinstance(name, str) or not name.strip():
        raise BadInput(f"{where}: no name; give the wave name = \"...\"")
    jobs = raw.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise BadInput(f"{where}: jobs = {jobs!r}; give a whole number of at least 1")
    has_targets, has_query = "targets" in raw, "query" in raw
    if has_targets == has_query:
        raise BadInput(f"{where}: give either targets = [...] or query = \"...\" with directory = \"...\"")
    if has_targets:
        targets = raw["targets"]
        if not isinstance(targets, list) or not targets:
            raise BadInput(f"{where}: targets must be a non-empty list of connection strings")
        return Wave(name, [_dsn(where, f"target {i}", t, environ) for i, t in enumerate(targets, 1)], jobs=jobs)
    query, directory = raw["query"], raw.get("directory")
    if not isinstance(query, str) or not query.strip():
        raise BadInput(f"{where}: query must be a SELECT whose first column is a connection string")
    if directory is None:
        raise BadInput(f"{where}: query needs directory = \"...\", the database that answers it")
    return Wave(name, query=_expand(where, "query", query, environ), jobs=jobs,
                directory=_dsn(where, "directory", directory, environ))


def _dsn(where: str, what: str, value: object, environ: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{where}: {what} has no connection string; give a DSN such as"
                       " \"postgresql://deploy@db1/tenant_01\" or \"${TENANT_URL}\"")
    refuse_literal_password(where, what, value)
    expanded = _expand(where, what, value, environ)
    if not expanded.strip():
        raise BadInput(f"{where}: {what} ({value}) expands to nothing; set the variable to a DSN")
    return expanded


def refuse_literal_password(where: str, what: str, value: str) -> None:
    """A password may come only from the environment: the file is committed, the variable is not."""
    for pattern in _PASSWORDS:
        for match in pattern.finditer(value):
            secret = match.group(1).strip("'")
            if secret and _VARIABLE.sub("", secret):
                raise BadInput(f"{where}: {what} has a literal password; put the password (or the whole"
                               " DSN) in an environment variable and write ${VAR} in the file")


def _expand(where: str, what: str, value: str, environ: Mapping[str, str]) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in environ:
            raise BadInput(f"{where}: {what} uses ${{{name}}}, which is not set; export {name}")
        return environ[name]

    return _VARIABLE.sub(one, value)

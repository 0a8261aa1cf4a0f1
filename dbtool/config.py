"""Settings, service discovery, per-service TOML files, and the one function that decides where a
database comes from.

psycopg is imported inside the functions that parse connection strings, so that offline commands
(`--help`, `validate`, `lint`) never load it.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .errors import BadInput

ENVIRONMENTS = ("dev", "test", "prod")
# Folders under schemas/ that hold something other than a service.
_NOT_A_SERVICE = re.compile(r"^[._]")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Settings:
    schemas_dir: Path = Path("schemas")
    env: str = "dev"
    dsn: str | None = None
    wait: float = 0.0
    lock_timeout: float = 60.0
    # Bounded lock waits of each migration's statements (dbtool/migrate/locks.py), in seconds.
    ddl_lock_timeout: float = 1.0
    ddl_retries: int = 10
    statement_timeout: float = 3600.0
    # Where the embedded server keeps its data; None means <project>/.dbtool.
    data_dir: Path | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def embedded_dir(self) -> Path:
        if self.data_dir is not None:
            return self.data_dir
        if "DBTOOL_DATA_DIR" in self.environ:
            return Path(self.environ["DBTOOL_DATA_DIR"])
        return self.schemas_dir.resolve().parent / ".dbtool"


def make_settings(
    schemas_dir: Path | str = "schemas",
    env: str = "dev",
    dsn: str | None = None,
    wait: float = 0.0,
    lock_timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
    data_dir: Path | None = None,
    ddl_lock_timeout: str | float = 1.0,
    ddl_retries: int = 10,
    statement_timeout: str | float = 3600.0,
) -> Settings:
    if env not in ENVIRONMENTS:
        raise BadInput(f"--env: unknown environment {env!r}; use one of {', '.join(ENVIRONMENTS)}")
    if wait < 0:
        raise BadInput(f"--wait: {wait} is negative; give the seconds to wait, e.g. --wait 30")
    if lock_timeout < 0:
        raise BadInput(f"--lock-timeout: {lock_timeout} is negative; give seconds, e.g. --lock-timeout 60")
    if dsn is not None:
        check_dsn(dsn, "--dsn")
    from .migrate.locks import (  # no psycopg: offline commands stay light
        parse_duration,
        parse_retries,
    )

    if isinstance(ddl_lock_timeout, str):
        ddl_lock_timeout = parse_duration(ddl_lock_timeout, "--ddl-lock-timeout")
    if isinstance(statement_timeout, str):
        statement_timeout = parse_duration(statement_timeout, "--statement-timeout")
    ddl_retries = parse_retries(ddl_retries, "--ddl-retries")
    return Settings(
        schemas_dir=Path(schemas_dir),
        env=env,
        dsn=dsn,
        wait=wait,
        lock_timeout=lock_timeout,
        environ=dict(os.environ) if environ is None else dict(environ),
        data_dir=data_dir,
        ddl_lock_timeout=ddl_lock_timeout,
        ddl_retries=ddl_retries,
        statement_timeout=statement_timeout,
    )


def discover_services(schemas_dir: Path) -> list[str]:
    if not schemas_dir.is_dir():
        raise BadInput(
            f"{schemas_dir}: no schemas directory; run dbtool from the project root or pass --schemas-dir"
        )
    return sorted(
        p.name for p in schemas_dir.iterdir() if p.is_dir() and not _NOT_A_SERVICE.match(p.name)
    )


def select_services(settings: Settings, names: list[str] | None) -> list[str]:
    """The services a command works on: the ones named, or every folder under schemas/."""
    known = discover_services(settings.schemas_dir)
    chosen = list(dict.fromkeys(names)) if names else known
    for name in chosen:
        if name in known and not SERVICE_NAME.match(name):
            # It names databases (<service>_db_<env>) and environment variables (<SERVICE>_DATABASE_URL).
            raise BadInput(
                f"{settings.schemas_dir / name}: a service folder name must be a lower-case identifier"
                f" (letters, digits, _; starting with a letter), e.g. {_suggest(name)}; rename the folder"
            )
        if name in known and len(database_name(name, "prod")) > 63:
            # PostgreSQL cuts a longer database name at 63 bytes without a word: <service>_db_<env>.
            raise BadInput(f"{settings.schemas_dir / name}: a service folder name may have at most"
                           f" {63 - len(database_name('', 'prod'))} characters, so that its database name"
                           " (<service>_db_<env>) fits PostgreSQL's 63 bytes; rename the folder")
        if name not in known:
            where = settings.schemas_dir / name
            listing = ", ".join(known) or "none"
            raise BadInput(
                f"{where}: no such service folder (services: {listing}); check the name or create the folder"
            )
    if not chosen:
        raise BadInput(f"{settings.schemas_dir}: holds no service folders; add one, e.g. schemas/identity/")
    if settings.dsn is not None and len(chosen) != 1:
        raise BadInput(
            f"--dsn names one database but {len(chosen)} services were selected; name one SERVICE with --dsn"
            " or use <SERVICE>_DATABASE_URL per service"
        )
    return chosen


def _suggest(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "service"
    return slug if slug[0].isalpha() else f"s_{slug}"


@dataclass(frozen=True)
class Target:
    """Where one service's database lives, and how we learned it."""

    service: str
    source: str  # "--dsn", "IDENTITY_DATABASE_URL", "DB_HOST", "embedded"
    dbname: str
    conninfo: str | None  # None for the embedded server, known once it runs
    may_create: bool  # dev and test create a missing database; prod never does

    @property
    def embedded(self) -> bool:
        return self.conninfo is None


def creates_databases(settings: Settings) -> bool:
    """Whether migrate creates a database it finds missing: dev and test do, prod never does."""
    return settings.env != "prod"


def database_name(service: str, env: str) -> str:
    return f"{service}_db_{env}"


def url_variable(service: str) -> str:
    return f"{service.upper()}_DATABASE_URL"


def resolve_target(service: str, settings: Settings) -> Target:
    """First match wins: --dsn, <SERVICE>_DATABASE_URL, DB_HOST & co, then the embedded server."""
    from psycopg.conninfo import make_conninfo
    env = settings.environ
    may_create = creates_databases(settings)
    if settings.dsn is not None:
        return Target(service, "--dsn", _dbname_of(settings.dsn, "--dsn"), settings.dsn, may_create)
    var = url_variable(service)
    if env.get(var):
        dsn = check_dsn(env[var], var)
        return Target(service, var, _dbname_of(dsn, var), dsn, may_create)
    dbname = database_name(service, settings.env)
    if env.get("DB_HOST"):
        parts = {"host": env["DB_HOST"], "dbname": dbname}
        for key, var in (("port", "DB_PORT"), ("user", "DB_USER"), ("password", "DB_PASSWORD")):
            if env.get(var):
                parts[key] = env[var]
        return Target(service, "DB_HOST", dbname, make_conninfo(**parts), may_create)
    if settings.env == "prod":
        raise BadInput(
            f"{service}: no database configured for prod; set {var}, or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD,"
            " or pass --dsn (prod never uses the embedded server)"
        )
    return Target(service, "embedded", dbname, None, may_create)


def check_dsn(dsn: str, where: str) -> str:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict
    try:
        conninfo_to_dict(dsn)
    except ProgrammingError:
        raise BadInput(
            f"{where}: not a PostgreSQL connection string; use postgresql://user:password@host:port/dbname"
        ) from None
    return dsn


def _dbname_of(dsn: str, where: str) -> str:
    from psycopg.conninfo import conninfo_to_dict
    name = conninfo_to_dict(dsn).get("dbname")
    if not name:
        raise BadInput(f"{where}: names no database; add it, e.g. postgresql://host:5432/identity_db_dev")
    return str(name)


def secrets(settings: Settings) -> list[str]:
    """Every password the settings could hand to a connection, so output can be scrubbed of them."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict
    found = []
    candidates = [settings.dsn] + [
        v for k, v in settings.environ.items() if k.endswith("_DATABASE_URL") or k == "DBTOOL_TEST_DSN"
    ]
    for dsn in candidates:
        if dsn:
            try:
                pw = conninfo_to_dict(dsn).get("password")
            except ProgrammingError:
                pw = _password_in_url(dsn)
            if pw:
                found.append(str(pw))
    for var in ("DB_PASSWORD", "PGPASSWORD"):
        if settings.environ.get(var):
            found.append(settings.environ[var])
    return found


def _password_in_url(text: str) -> str | None:
    match = re.search(r"://[^:/@]+:([^@]+)@", text)
    return match.group(1) if match else None


def redact(text: str, hidden: list[str]) -> str:
    """`text` with each secret shown as ***, where it stands alone: not inside a longer word or
    number, so that a short password such as "e" does not turn "refused" into "r***fus***d"."""
    for secret in sorted(set(hidden), key=len, reverse=True):
        if secret:
            text = re.sub(rf"(?<![^\W_]){re.escape(secret)}(?![^\W_])", "***", text)
    return text


def describe(conninfo: str) -> str:
    """A connection string for humans: host, port, database, user; never the password."""
    from psycopg.conninfo import conninfo_to_dict
    parts = conninfo_to_dict(conninfo)
    host = str(parts.get("host") or "localhost")
    port = parts.get("port")
    user = f"{parts['user']}@" if parts.get("user") else ""
    if host.startswith("/"):  # a Unix socket directory
        return f"{user}{parts.get('dbname', '')} via socket {host}"
    where = f"{host}:{port}" if port else host
    return f"{user}{where}/{parts.get('dbname', '')}"


def load_toml(path: Path) -> dict:
    """A per-service TOML file (dbtool.toml, references.toml, ...), or one clear line saying what is wrong."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(_text(plain_bytes(path)))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: not valid TOML ({exc}); fix the file") from None


def plain_bytes(path: Path) -> bytes:
    """A file's bytes, refusing what is no regular file: reading a FIFO waits for a writer that never
    comes, and a device never ends. A symlink to a regular file is fine."""
    try:
        regular = stat.S_ISREG(path.stat().st_mode)
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror or exc}; check the path and its permissions") from None
    if not regular:
        raise BadInput(f"{path}: not a regular file (a FIFO, socket or device); replace it with a plain"
                       " file or move it out of the folder")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror or exc}; check the path and its permissions") from None


def read_utf8(path: Path) -> str:
    """A text file the user keeps (schema.sql, a seed, a key query), or one line naming it and the fix."""
    try:
        return _text(plain_bytes(path))
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None


def _text(data: bytes) -> str:
    # As open() in text mode reads it: universal newlines.
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")

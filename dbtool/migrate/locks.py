"""Bounded lock waits for migrations: lock_timeout and statement_timeout, retries with growing waits,
and a description of whoever blocks a waiting statement.

A DDL statement that queues for its lock holds up every later reader and writer of the table for as
long as it waits. So a migration waits at most `lock_timeout`; on `lock_not_available` (55P03) the
whole transaction is rolled back, the lock is released, the queue behind it drains, and the
migration is tried again after a growing, jittered wait. Non-transactional migrations get the same
per statement. A watcher on a second connection (blockers.py) sees what the waiting statement waits on.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterator

from .. import signals
from ..errors import LOCK_NOT_AVAILABLE, BadInput, DatabaseUnavailable
from ..signals import Interrupted

# PostgreSQL's own time units for lock_timeout and statement_timeout; a bare number is milliseconds.
_UNITS = {"us": 0.000001, "ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
# Directives a migration's leading comments may carry, e.g. "-- lock-timeout: 300ms".
_DIRECTIVE = re.compile(r"^\s*--\s*(lock-timeout|retries|statement-timeout)\s*:\s*(.*?)\s*$", re.IGNORECASE)
# Two int4 keys for the migration's advisory lock, "dbtl" and "migr" in ASCII; per database, by nature.
# Here, not in tracking.py, so that roles can wait on it without loading yoyo.
MIGRATION_LOCK_KEYS = (0x6462746C, 0x6D696772)

if TYPE_CHECKING:
    import psycopg

    from .blockers import Wait, Watcher
# psycopg, the watcher and random are imported where they are used, so that `validate` and `lint`,
# which read the directives through tree.py, and the settings of every command stay light.


# PostgreSQL keeps lock_timeout and statement_timeout as int milliseconds: this is the longest.
LONGEST = 2147483.647  # seconds, some 24 days


def parse_duration(text: str, where: str) -> float:
    """Seconds, from a duration as PostgreSQL writes one: 300ms, 1s, 10min (a bare number is ms)."""
    match = _DURATION.match(str(text))
    if not match:
        raise BadInput(f"{where}: {text!r} is not a duration; write it as PostgreSQL does, e.g. 300ms, 2s or 10min")
    seconds = float(match[1]) * _UNITS[match[2] or "ms"]
    if seconds > LONGEST:
        raise BadInput(f"{where}: {text!r} is longer than PostgreSQL allows (2147483647ms, about 24 days);"
                       " give a shorter one, or 0 for no limit")
    return seconds


def parse_retries(text: str | int, where: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise BadInput(f"{where}: {text!r} is not a number of retries; give a whole number from 0, e.g. 10")
    return value


def show(seconds: float) -> str:
    """A duration for people and for SET: 300ms, 2s, 10min."""
    ms = round(seconds * 1000)
    if ms % 60000 == 0 and ms:
        return f"{ms // 60000}min"
    if ms % 1000 == 0 and ms:
        return f"{ms // 1000}s"
    return f"{ms}ms"


@dataclass(frozen=True)
class LockPolicy:
    """How long a migration's statements may wait for a lock and run, and how often it is retried."""

    lock_timeout: float = 1.0  # seconds; 0 means wait forever, as in PostgreSQL
    retries: int = 10  # tries after the first
    statement_timeout: float = 3600.0  # seconds; 0 means no limit
    where: str = "--ddl-lock-timeout"  # which setting the lock timeout came from, for the fix

    @property
    def patience(self) -> float:
        """How old a transaction holding a lock the migration needs may be before the migration stops
        queueing behind it (queue.py): one that old has shown it runs long, and would likely outlast
        the wait while the writers queue up; a younger one probably ends within the wait."""
        return self.lock_timeout / 4

    def wait_before(self, retry: int) -> float:
        """The pause before retry n (1-based): doubling from 0.25 s to at most 10 s, jittered by half,
        so retrying runs do not fall into step with each other or with the blocker's rhythm."""
        import random

        return min(0.25 * 2 ** (retry - 1), 10.0) * random.uniform(0.5, 1.5)


def file_policy(text: str, path: object, base: LockPolicy) -> LockPolicy:
    """The run's policy with what the file's leading comments say instead."""
    policy = base
    for line in text.splitlines():
        if line.strip() and not line.strip().startswith("--"):
            break  # directives live in the leading comments only
        match = _DIRECTIVE.match(line)
        if not match:
            continue
        key, value = match[1].lower(), match[2]
        where = f"{path}: -- {key}"
        if key == "lock-timeout":
            policy = replace(policy, lock_timeout=parse_duration(value, where), where=where)
        elif key == "retries":
            policy = replace(policy, retries=parse_retries(value, where))
        else:
            policy = replace(policy, statement_timeout=parse_duration(value, where))
    return policy


def timeouts_sql(policy: LockPolicy, local: bool) -> str:
    """Both timeouts as one text without parameters, which psycopg sends as one simple query: on its
    own, or after another statement in the same round trip."""
    scope = "LOCAL " if local else ""
    return (f"SET {scope}lock_timeout = '{round(policy.lock_timeout * 1000)}ms';"
            f" SET {scope}statement_timeout = '{round(policy.statement_timeout * 1000)}ms'")


# ---------------------------------------------------------------- the retry loop

OnRetry = Callable[[str], None]  # one line: what blocked, and the next wait


def is_lock_timeout(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE  # a psycopg.Error of that SQLSTATE


@contextmanager
def watching(conn: psycopg.Connection, on_retry: OnRetry | None) -> Iterator[Watcher]:
    """A watcher for a run of migrations; a long wait (a concurrent build waiting for old
    transactions) is reported while it lasts, under the name of the migration that waits."""
    from .blockers import Watcher

    watcher: Watcher

    def long_wait(wait: Wait) -> None:
        if on_retry:
            on_retry(f"{watcher.what}: waiting {time.monotonic() - wait.since:.0f}s for {wait.describe()}")

    with Watcher(conn, long_wait) as watcher:
        yield watcher


def with_retries(attempt: Callable[[], None], policy: LockPolicy, watcher: Watcher, what: str,
                 on_retry: OnRetry | None, left: str = "nothing of this migration was applied",
                 look: Callable[..., str | None] | None = None) -> None:
    """Run attempt(); on a lock timeout, wait and run it again, up to policy.retries more times.

    attempt() must leave nothing behind when it fails (a rolled-back transaction, one statement).
    look(), before each attempt, names an old transaction the attempt would queue behind (queue.py):
    then the attempt is not made at all, and the wait ends as soon as that transaction does.
    """
    for retry in range(1, policy.retries + 2):
        held = look() if look else None
        if held is None:
            try:
                with watcher.attempt():
                    attempt()
                return
            except Exception as exc:
                if not is_lock_timeout(exc):
                    raise
            # What the watcher saw; else (a wait too short for it) who holds a conflicting lock now.
            blocked = watcher.last.describe() if watcher.last.blockers or not look else \
                (look(0.0) or watcher.last.describe())
            reason = f"lock timeout after {show(policy.lock_timeout)} waiting for {blocked}"
        else:
            blocked = held
            reason = f"not queuing behind {held}, open longer than {show(policy.patience)}"
        if retry > policy.retries:
            raise DatabaseUnavailable(
                f"{what}: could not get its lock within {show(policy.lock_timeout)} in {retry} attempt(s):"
                f" waiting for {blocked}; {left}; end or wait out that"
                f" session, or raise {policy.where} or --ddl-retries")
        pause = policy.wait_before(retry)
        if on_retry:
            on_retry(f"{what}: {reason}; retry {retry}/{policy.retries} in {pause:.1f}s"
                     + (" or once it ends" if held else ""))
        if not _pause(pause, look if held else None):
            raise Interrupted(f"{what}: interrupted by {signals.name()} while waiting to retry; {left};"
                              " run the command again")


def _pause(seconds: float, look: Callable[..., str | None] | None) -> bool:
    """Sleep; while an old transaction is what stands in the way, look again every 100 ms (a catalog
    read, which queues behind nobody) and go as soon as it has ended. False when a signal came: a
    wait runs in a service's thread, where the handler cannot cut it short (it cancels statements)."""
    until = time.monotonic() + seconds
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
        if signals.received():
            return False
        if look and look() is None:
            return True
    return True


def policy_of(settings: object) -> LockPolicy:
    """The run's policy from Settings (--ddl-lock-timeout, --ddl-retries, --statement-timeout)."""
    return LockPolicy(getattr(settings, "ddl_lock_timeout", 1.0), getattr(settings, "ddl_retries", 10),
                      getattr(settings, "statement_timeout", 3600.0))


def directive_problem(text: str, path: object) -> str | None:
    """A malformed -- lock-timeout:, -- retries: or -- statement-timeout: line, as a tree problem."""
    try:
        file_policy(text, path, LockPolicy())
    except BadInput as exc:
        return str(exc)
    return None

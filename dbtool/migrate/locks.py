"""Bounded lock waits for migrations: lock_timeout and statement_timeout, retries with growing waits,
and a description of whoever blocks a waiting statement.

A DDL statement that queues for its lock holds up every later reader and writer of the table for as
long as it waits. So a migration waits at most `lock_timeout`; on `lock_not_available` (55P03) the
whole transaction is rolled back, the lock is released, the queue behind it drains, and the
migration is tried again after a growing, jittered wait. Non-transactional migrations get the same
per statement. A watcher on a second connection sees what the waiting statement waits on.
"""

from __future__ import annotations

import random
import re
import threading
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
# psycopg is imported where a connection is used, so that `validate` and `lint`, which read the
# directives through tree.py, stay offline and light.


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
    scope = "LOCAL " if local else ""
    return (f"SET {scope}lock_timeout = '{round(policy.lock_timeout * 1000)}ms';"
            f" SET {scope}statement_timeout = '{round(policy.statement_timeout * 1000)}ms'")


def set_timeouts(conn: psycopg.Connection, policy: LockPolicy, local: bool) -> None:
    # One round trip: without parameters psycopg sends both as one simple query.
    conn.execute(timeouts_sql(policy, local))


# ---------------------------------------------------------------- who blocks whom

# Who blocks the waiting backend, and the relation it asks for (a CREATE INDEX CONCURRENTLY waits on
# transactions instead), in one statement: asked apart, the wait could end between the two.
_BLOCKERS = """
SELECT (SELECT coalesce(l.relation::regclass::text, l.locktype) FROM pg_locks l
        WHERE l.pid = %(pid)s AND NOT l.granted LIMIT 1),
       a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(a.state, '?'),
       extract(epoch FROM now() - a.xact_start), left(split_part(a.query, E'\\n', 1), 60)
FROM unnest(pg_blocking_pids(%(pid)s)) AS b(pid) JOIN pg_stat_activity a ON a.pid = b.pid
ORDER BY a.xact_start NULLS LAST
"""


@dataclass(frozen=True)
class Blocker:
    pid: int
    application: str
    state: str
    open_for: float | None  # seconds its transaction has been open
    query: str  # the first line, shortened; only what pg_stat_activity shows, never a password

    def describe(self) -> str:
        age = f", transaction open {self.open_for:.1f}s" if self.open_for is not None else ""
        query = self.query.strip() or "?"
        return f"pid {self.pid} ({self.application}, {self.state}{age}: {query})"


@dataclass
class Wait:
    """What the watcher last saw the statement wait on."""

    relation: str = ""
    blockers: tuple[Blocker, ...] = ()
    since: float = 0.0  # monotonic time the wait was first seen

    def describe(self) -> str:
        who = "; ".join(b.describe() for b in self.blockers) or "a backend that was gone by then"
        return f"{self.relation or 'a lock'} held by {who}"


def _redacted_query(query: str, hidden: list[str]) -> str:
    # pg_stat_activity shows other sessions' SQL as written: an ALTER ROLE ... PASSWORD would show it.
    from ..config import redact

    return redact(re.sub(r"(?i)(password\s+)('[^']*'|\S+)", r"\1***", query), hidden)


class Watcher:
    """A second connection that polls what the migration's backend waits on, while it waits.

    One per run, shared by its migrations (`what` names the current one). It connects only once an
    attempt has run for `after` seconds, in its own thread: most migrations finish sooner and the run
    never opens a second connection (one less backend, and nothing for a connection limit to refuse)."""

    def __init__(self, conn: psycopg.Connection, on_long_wait: Callable[[Wait], None] | None = None,
                 report_after: float = 2.0, interval: float = 0.02, after: float = 0.05):
        from psycopg.conninfo import make_conninfo

        self.pid = conn.info.backend_pid
        self.password = conn.info.password or ""
        self.conninfo = make_conninfo(conn.info.dsn, password=conn.info.password) if conn.info.password \
            else conn.info.dsn
        self.on_long_wait, self.report_after, self.interval, self.after = on_long_wait, report_after, interval, after
        self.what = ""
        self.last = Wait()
        self._current: Wait | None = None
        self._stop = threading.Event()
        self._busy = threading.Event()  # set while an attempt runs
        self._attempts = 0  # attempts begun: tells one attempt that lasts from quick ones back to back
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    def __enter__(self) -> "Watcher":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._busy.set()  # wakes the thread to see the stop
        if self._thread:
            self._thread.join()

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Around one attempt: what the watcher watches."""
        self.last, self._current = Wait(), None
        self._attempts += 1
        self._busy.set()
        try:
            yield
        finally:
            self._busy.clear()

    def _run(self) -> None:
        import psycopg

        try:
            while not self._stop.is_set():
                self._busy.wait()
                attempt = self._attempts
                if self._stop.wait(self.after) or not self._busy.is_set() or self._attempts != attempt:
                    continue  # stopped, or the attempt was quicker than any wait worth naming
                if self._conn is None:
                    try:
                        self._conn = psycopg.connect(self.conninfo, autocommit=True,
                                                     application_name="dbtool lock watcher")
                    except psycopg.Error:
                        return  # no second connection allowed: retries still work, blockers go unnamed
                if not self._poll():
                    return
        finally:
            if self._conn is not None:
                self._conn.close()

    def _poll(self) -> bool:
        """Poll while the attempt runs; False when the watching connection failed."""
        import psycopg

        reported = 0.0
        while self._busy.is_set() and not self._stop.is_set():
            try:
                wait = self._look()
            except psycopg.Error:
                return False
            if wait is None:
                self._current, reported = None, 0.0
            else:
                if self._current is not None:
                    # The same wait: its start, and its relation if this look came as the wait ended.
                    wait.since, wait.relation = self._current.since, wait.relation or self._current.relation
                else:
                    wait.since = time.monotonic()
                self._current = self.last = wait
                waited = time.monotonic() - wait.since + self.after
                if self.on_long_wait and waited >= self.report_after and waited - reported >= self.report_after:
                    reported = waited
                    self.on_long_wait(wait)
            self._stop.wait(self.interval)
        return True

    def _look(self) -> Wait | None:
        assert self._conn is not None
        rows = self._conn.execute(_BLOCKERS, {"pid": self.pid}).fetchall()
        if not rows:
            return None
        blockers = tuple(
            Blocker(pid, app, state, float(age) if age is not None else None,
                    _redacted_query(query or "", [self.password]))
            for _, pid, app, state, age, query in rows
        )
        return Wait(rows[0][0] or "", blockers)


# ---------------------------------------------------------------- the retry loop

OnRetry = Callable[[str], None]  # one line: what blocked, and the next wait


def is_lock_timeout(exc: BaseException) -> bool:
    return getattr(exc, "sqlstate", None) == LOCK_NOT_AVAILABLE  # a psycopg.Error of that SQLSTATE


@contextmanager
def watching(conn: psycopg.Connection, on_retry: OnRetry | None) -> Iterator[Watcher]:
    """A watcher for a run of migrations; a long wait (a concurrent build waiting for old
    transactions) is reported while it lasts, under the name of the migration that waits."""
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

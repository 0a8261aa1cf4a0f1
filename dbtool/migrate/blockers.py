"""Who blocks a waiting migration: a watcher on a second connection reads what the migration's
backend waits on, and who holds it, while it waits, so a retry line or a long wait can name them.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    import psycopg

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


def redacted_query(query: str, hidden: list[str]) -> str:
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
                    redacted_query(query or "", [self.password]))
            for _, pid, app, state, age, query in rows
        )
        return Wait(rows[0][0] or "", blockers)

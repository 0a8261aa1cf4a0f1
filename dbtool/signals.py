"""Stopping calmly on SIGTERM (what CI runners, systemd and Kubernetes send) and SIGINT.

The handler does not unwind the stack at a random point: it marks the run as stopping and asks the
server to cancel what each open connection is running. The statement fails with a cancellation,
its transaction rolls back as any failure does, the advisory lock goes with the connection, and
the runner reports an Interrupted error naming where each database was left. A rerun right after
finds no lock and nothing half-done.
"""

from __future__ import annotations

import signal
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

from .errors import DbtoolError, ExitCode

_open: "weakref.WeakSet" = weakref.WeakSet()  # every connection dbtool opened and has not closed
_stopping: list[int] = []  # the signal received, once one is


class Interrupted(DbtoolError):
    def __init__(self, message: str, signum: int | None = None):
        self.signum = signum if signum is not None else received() or signal.SIGINT
        self.exit_code = ExitCode.TERMINATED if self.signum == signal.SIGTERM else ExitCode.INTERRUPTED
        super().__init__(message)


def received() -> int | None:
    return _stopping[0] if _stopping else None


def name() -> str:
    return signal.Signals(received() or signal.SIGINT).name


def track(conn) -> None:  # noqa: ANN001 - psycopg.Connection, not imported here
    _open.add(conn)


def check() -> None:
    """Between statements: stop before starting anything new."""
    if _stopping:
        raise Interrupted(f"interrupted by {name()} before the next statement; run the command again")


def _handle(signum: int, frame: object) -> None:
    if not _stopping:
        _stopping.append(signum)
    # Which connections were open when the signal came: a worker thread may close its own while they
    # are cancelled, and its work (a scratch database's drop, say) was still running on a server.
    running = [conn for conn in list(_open) if not conn.closed]
    for conn in running:
        try:
            conn.cancel_safe(timeout=5)
        except Exception:  # noqa: BLE001 - a connection that cannot be cancelled is closing anyway
            pass
    if not running and threading.current_thread() is threading.main_thread():
        # Nothing runs on a server: there is nothing to roll back, so stop here.
        raise Interrupted(f"interrupted by {name()}; nothing was running on a database", signum)


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM stop the command calmly while it runs (only the main thread may install)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stopping.clear()

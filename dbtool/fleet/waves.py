"""Running one action on every target, wave by wave, at most `jobs` databases (and connections) at once.

Each database keeps its own guarantees (its lock, one transaction per migration), so the fleet needs
no state of its own: a rerun asks each database where it is and picks up there.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import redact
from ..errors import (
    BadInput,
    DatabaseUnavailable,
    DbtoolError,
    InternalError,
    Refused,
    classify,
)
from .discover import Target
from .file import Fleet

PENDING, RUNNING, DONE, FAILED, SKIPPED = "pending", "running", "done", "failed", "skipped"


@dataclass
class Outcome:
    """One target's part of a fleet run."""

    target: Target
    state: str = PENDING
    before: int | None = None  # the version (highest applied migration) before the run
    after: int | None = None
    applied: list[str] = field(default_factory=list)  # migration ids applied or rolled back
    seconds: float = 0.0
    error: str | None = None
    error_type: type[DbtoolError] | None = field(default=None, repr=False)
    detail: Any = field(default=None, repr=False)  # what the action reports (a State, an audit, a check)


# The action: run on one target, fill its outcome; raise to fail it.
Action = Callable[[Target, Outcome], None]
OnChange = Callable[[Outcome], None]


def run_waves(fleet: Fleet, targets: list[Target], action: Action, jobs: int | None = None,
              continue_on_error: bool = False, on_change: OnChange | None = None) -> list[Outcome]:
    """Waves in order; within one, up to `jobs` (else the wave's own `jobs`, else 4) at once. After a
    failure the databases in flight finish, no new one starts and no later wave begins, unless
    `continue_on_error`. Every outcome is returned, in target order."""
    notify = on_change or (lambda outcome: None)
    outcomes = [Outcome(t) for t in targets]
    lock = threading.Lock()
    stop = threading.Event()
    hidden = [t.password for t in targets if t.password]
    for outcome in outcomes:
        notify(outcome)  # every database is shown as pending from the start

    def one(outcome: Outcome) -> None:
        with lock:
            if stop.is_set():
                outcome.state = SKIPPED
                notify(outcome)
                return
            outcome.state = RUNNING
            notify(outcome)
        started = time.perf_counter()
        try:
            action(outcome.target, outcome)
            state = DONE
        except Exception as exc:  # noqa: BLE001 - one database's failure is its outcome, not the run's
            error = classify(exc)
            outcome.error, outcome.error_type = redact(str(error), hidden), type(error)
            state = FAILED
        outcome.seconds = time.perf_counter() - started
        with lock:
            outcome.state = state
            if state == FAILED and not continue_on_error:
                stop.set()
            notify(outcome)

    for wave in fleet.waves:
        members = [o for o in outcomes if o.target.wave == wave.name]
        if stop.is_set():
            break
        if not members:
            continue
        with ThreadPoolExecutor(max_workers=min(jobs or wave.jobs or 4, len(members))) as pool:
            list(pool.map(one, members))
    for outcome in outcomes:
        if outcome.state == PENDING:  # a later wave that never began
            outcome.state = SKIPPED
            notify(outcome)
    return outcomes


def failure(outcomes: list[Outcome], changes: bool) -> DbtoolError | None:
    """The error a run that failed somewhere ends with: the first failed target's kind (and exit code)."""
    failed = [o for o in outcomes if o.state == FAILED]
    if not failed:
        return None
    skipped = sum(o.state == SKIPPED for o in outcomes)
    code = (failed[0].error_type or InternalError).exit_code
    kind = next((k for k in (BadInput, DatabaseUnavailable, Refused) if k.exit_code == code), InternalError)
    rest = f", {skipped} not started" if skipped else ""
    then = "fix it and run again: each database resumes where it stopped" if changes else "the others answered"
    first, label = failed[0].error or "", failed[0].target.label
    first = first if label in first else f"{label}: {first}"
    return kind(f"{len(failed)} of {len(outcomes)} databases failed{rest} (first: {first}); {then}")

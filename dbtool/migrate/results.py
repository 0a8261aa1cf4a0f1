"""What the migration commands tell their user while they work (Events) and what they return.

Light on purpose: the renderers import it, and `dbtool --help` or `validate` must not load psycopg.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .runner import OnMigration
    from .state import State
    from .sqltext import Statement
    from .tree import Migration
    from .triggers import TriggerSync


@dataclass
class Events:
    """What a command tells its user while it works; the CLI renders these, Python callers may not."""

    target: Callable[[str, str], None] = lambda service, where: None
    migration: Callable[[str, Migration, float], None] = lambda service, m, seconds: None
    triggers: Callable[[str, TriggerSync], None] = lambda service, sync: None
    retry: Callable[[str, str], None] = lambda service, line: None  # a lock wait, a retry


@dataclass
class ServiceResult:
    service: str
    where: str
    done: list[Migration] = field(default_factory=list)
    state: State | None = None
    sql: list[tuple[Migration, list[Statement]]] = field(default_factory=list)
    triggers: TriggerSync | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # migration id -> time it took

    @property
    def drifted(self) -> bool:
        """Anything pending, edited or missing: what `status --exit-code` fails on."""
        return bool(self.state and (self.state.pending or self.state.edited or self.state.missing))

    def reporter(self, events: Events) -> OnMigration:
        def report(m: Migration, seconds: float) -> None:
            self.seconds[m.id] = seconds
            events.migration(self.service, m, seconds)

        return report


class InOrder:
    """Relays the events of services that run concurrently in the order the services were given:
    the first unfinished service speaks live, the others are held until those before them finish."""

    def __init__(self, events: Events, services: list[str]):
        self._to, self._order, self._position = events, services, 0
        self._held: dict[str, list[Callable[[], None]]] = {s: [] for s in services}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self.events = Events(
            target=lambda s, where: self._say(s, lambda: self._to.target(s, where)),
            migration=lambda s, m, seconds: self._say(s, lambda: self._to.migration(s, m, seconds)),
            triggers=lambda s, sync: self._say(s, lambda: self._to.triggers(s, sync)),
            retry=lambda s, text: self._say(s, lambda: self._to.retry(s, text)),
        )

    def _say(self, service: str, call: Callable[[], None]) -> None:
        with self._lock:
            if self._order[self._position] == service:
                call()
            else:
                self._held[service].append(call)

    def finish(self, service: str) -> None:
        with self._lock:
            self._finished.add(service)
            while self._position < len(self._order) and self._order[self._position] in self._finished:
                self._position += 1
                if self._position < len(self._order):
                    for call in self._held.pop(self._order[self._position]):
                        call()
                    self._held[self._order[self._position]] = []

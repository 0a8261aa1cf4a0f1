"""The migration commands, callable from Python: settings first, then services, then options.

>>> from dbtool import config
>>> from dbtool.migrate.commands import migrate
>>> migrate(config.make_settings(), ["identity"])

The runner and yoyo's tracking are imported by the commands that write, so a read-only `status`
never loads yoyo.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .. import server, signals
from ..config import Settings, Target, resolve_target, select_services
from ..databases import locate, peek_state, require_database
from ..errors import BadInput, classify
from ..roles.owner import as_owner, owner_statement
from ..signals import Interrupted
from .results import Events, InOrder, ServiceResult
from .state import check_version, pending_up, plan_down, plan_up, read_state, refuse_drift
from .tree import Migration, validate
from .triggers import CATALOG, CATALOG_PARAMS, TriggerSync, sync_connection, trigger_policy


def _trees_to(settings: Settings, services: list[str] | None, to: int | None) -> dict[str, list[Migration]]:
    """The valid trees of the selected services, with --to (one service's version) checked before any
    connection."""
    trees = validate(settings, services)
    if to is not None and len(trees) > 1:
        raise BadInput("--to names one service's version; name one SERVICE with --to")
    for tree in trees.values():
        check_version(tree, to, "--to")
    return trees


def migrate(
    settings: Settings, services: list[str] | None = None, to: int | None = None,
    dry_run: bool = False, events: Events | None = None,
) -> list[ServiceResult]:
    """Apply each service's pending migrations; the services' databases are migrated concurrently."""
    events = events or Events()
    trees = _trees_to(settings, services, to)

    def work(service: str, tree: list[Migration], target: Target, conninfo: str, result: ServiceResult,
             relay: Events) -> None:
        if dry_run:
            state = peek_state(conninfo, tree, settings)
            refuse_drift(state)
            result.sql = [(m, m.statements("up")) for m in plan_up(state, to)]
            return
        with server.connect(conninfo, wait=settings.wait, create=target.may_create) as conn:
            # One round trip answers a run with nothing to do: becoming the owner, the state and the
            # trigger catalog.
            become = owner_statement(settings, target)
            pending, owner_row, catalog, state = pending_up(conn, tree, to, become, (CATALOG, CATALOG_PARAMS))
            with as_owner(conn, settings, target, became=owner_row is not None if become else None):
                _migrate(conn, settings, service, tree, to, result, relay, pending, catalog,
                         adopt=state.checksums_missing)

    return _each_service(settings, trees, events, work)


def _migrate(conn, settings: Settings, service: str, tree: list[Migration], to: int | None,
             result: ServiceResult, relay: Events, pending: list[Migration], catalog: tuple | None,
             adopt: bool = False) -> None:
    if pending:
        from .locks import policy_of
        from .runner import apply_pending

        result.done = apply_pending(conn, tree, to, settings.lock_timeout, report=result.reporter(relay),
                                    policy=policy_of(settings), on_retry=functools.partial(relay.retry, service))
        catalog = None  # the migrations changed the tables: read it again
    elif adopt:
        from .tracking import keep_checksums

        keep_checksums(conn)
    result.triggers = _sync_triggers(conn, settings, service, relay, catalog=catalog)


def rollback(
    settings: Settings, services: list[str] | None = None, steps: int | None = None,
    to: int | None = None, everything: bool = False, force: bool = False,
    dry_run: bool = False, events: Events | None = None,
) -> list[ServiceResult]:
    """Roll back each service's newest migrations with their down files, the services concurrently."""
    events = events or Events()
    chosen = [o for o in (steps is not None, to is not None, everything) if o]
    if len(chosen) > 1:
        raise BadInput("--steps, --to and --all choose what to roll back; give only one of them")
    if steps is not None and steps < 1:
        raise BadInput(f"--steps {steps}: give a positive number of migrations to roll back")
    trees = _trees_to(settings, services, to)

    def work(service: str, tree: list[Migration], target: Target, conninfo: str, result: ServiceResult,
             relay: Events) -> None:
        if dry_run:
            state = peek_state(conninfo, tree, settings)
            refuse_drift(state)
            result.sql = [(m, m.statements("down")) for m in plan_down(state, steps, to, everything)]
            return
        from .locks import policy_of
        from .runner import rollback_connection

        with server.connect(conninfo, wait=settings.wait) as conn, as_owner(conn, settings, target):
            result.done = rollback_connection(conn, tree, steps, to, everything, force, settings.lock_timeout,
                                              report=result.reporter(relay), policy=policy_of(settings),
                                              on_retry=functools.partial(relay.retry, service))
            result.triggers = _sync_triggers(conn, settings, service, relay)

    return _each_service(settings, trees, events, work)


def _each_service(settings: Settings, trees: dict[str, list[Migration]], events: Events, work: Callable) -> list[ServiceResult]:
    """Run `work` for every service at once: each is its own database, under its own advisory lock,
    with its own transactions, so nothing is shared but the output, which `InOrder` keeps in service
    order. Every target is resolved first (bad configuration changes nothing). A failing service
    does not stop the others mid-migration; the first failure in service order is raised after all
    have finished."""
    located = []
    for service in trees:
        target = resolve_target(service, settings)
        located.append((service, target, *locate(target, settings)))
    relay = InOrder(events, list(trees))
    results = {service: ServiceResult(service, where) for service, _, _, where in located}

    def one(service: str, target: Target, conninfo: str, where: str) -> None:
        try:
            relay.events.target(service, where)
            work(service, trees[service], target, conninfo, results[service], relay.events)
        finally:
            relay.finish(service)

    with ThreadPoolExecutor(max_workers=max(len(located), 1)) as pool:
        futures = [pool.submit(one, *item) for item in located]
    failures = {service: f.exception() for (service, *_), f in zip(located, futures)}
    if any(isinstance(e, Interrupted) for e in failures.values()) or signals.received():
        # A signal stopped every service at once: say where each database was left, one line each.
        raise Interrupted("\n".join(_where_left(s, failures[s], len(results[s].done)) for s in results))
    for future in futures:
        future.result()  # re-raises the first failure, in service order
    return list(results.values())


def _where_left(service: str, failure: BaseException | None, done: int) -> str:
    if failure is None:
        return f"{service}: finished before the signal ({done} done)"
    if isinstance(failure, Interrupted):
        return str(failure)
    # Cancelled outside a migration's step (connecting, reading the state, the tracking tables or
    # the triggers): each of those is one transaction or none, so nothing is half-done.
    return (f"{service}: interrupted by {signals.name()} ({classify(failure)}); {done} migration(s) applied"
            " before it, nothing half-done; run the command again")


def _sync_triggers(conn, settings: Settings, service: str, events: Events, dry_run: bool = False,
                   catalog: tuple | None = None) -> TriggerSync:
    """The updated_at triggers follow the schema the migrations just left, on the same connection."""
    sync = sync_connection(conn, dry_run=dry_run, policy=trigger_policy(settings.schemas_dir, service),
                           catalog=catalog)
    events.triggers(service, sync)
    return sync


def sync_triggers(
    settings: Settings, services: list[str] | None = None, dry_run: bool = False, events: Events | None = None,
) -> list[ServiceResult]:
    """Give every table with an updated_at column its trigger, and take it from tables without one."""
    events = events or Events()
    results = []
    for service in select_services(settings, services):
        conninfo, where = require_database(settings, service)
        events.target(service, where)
        result = ServiceResult(service, where)
        with server.connect(conninfo, wait=settings.wait) as conn, \
                as_owner(conn, settings, resolve_target(service, settings), dry_run):
            result.triggers = _sync_triggers(conn, settings, service, events, dry_run)
        results.append(result)
    return results


def status(settings: Settings, services: list[str] | None = None, events: Events | None = None) -> list[ServiceResult]:
    events = events or Events()
    trees = validate(settings, services, statements=False)  # read-only: nothing is split or run
    results = []
    for service, tree in trees.items():
        target = resolve_target(service, settings)
        conninfo, where = locate(target, settings)
        events.target(service, where)
        results.append(ServiceResult(service, where, state=peek_state(conninfo, tree, settings)))
    return results


def repair(settings: Settings, services: list[str] | None = None) -> list[tuple[str, Migration]]:
    """Accept intended edits: record the current checksums of edited or unrecorded applied migrations."""
    from .tracking import advisory_lock, record_checksum, tracking

    trees = validate(settings, services)
    accepted = []
    for service, tree in trees.items():
        conninfo, _ = locate(resolve_target(service, settings), settings)
        with server.connect(conninfo, wait=settings.wait) as conn:
            with advisory_lock(conn, settings.lock_timeout, service):
                tracking(conn)
                state = read_state(conn, tree)
                for m in [e for e, _ in state.edited] + state.unknown:
                    record_checksum(conn, m)
                    accepted.append((service, m))
    return accepted



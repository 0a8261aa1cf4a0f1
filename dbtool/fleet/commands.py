"""The fleet commands, callable from Python: settings, the service, the fleet file, then options.

>>> from dbtool import config
>>> from dbtool.fleet.commands import migrate
>>> from pathlib import Path
>>> migrate(config.make_settings(), ["course"], Path("schemas/course/fleet.toml"), jobs=4)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..config import Settings
from ..errors import BadInput
from ..migrate.state import check_version
from ..migrate.tree import Migration, validate
from . import actions
from .discover import Target, discover
from .file import load_fleet
from .waves import OnChange, Outcome, run_waves


def prepare(settings: Settings, services: list[str] | None, path: Path, jobs: int | None,
            option: str = "--fleet") -> tuple[str, list[Migration], list[Target], Callable]:
    """Everything checked before any database changes: one service, its tree, the file, every target."""
    if jobs is not None and jobs < 1:
        raise BadInput(f"--jobs {jobs}: give the number of databases to work on at once, at least 1")
    if not services or len(services) != 1:
        raise BadInput(f"{option} applies one service's migrations; name exactly one SERVICE")
    if settings.dsn is not None:
        raise BadInput(f"--dsn and {option} both name databases; give one of them")
    service, tree = next(iter(validate(settings, services).items()))
    fleet = load_fleet(path, settings.environ)
    targets = discover(fleet, settings.wait)

    def run(action: Callable, continue_on_error: bool, on_change: OnChange | None) -> list[Outcome]:
        return run_waves(fleet, targets, action, jobs, continue_on_error, on_change)

    return service, tree, targets, run


def migrate(settings: Settings, services: list[str] | None, path: Path, jobs: int | None = None,
            continue_on_error: bool = False, to: int | None = None,
            on_change: OnChange | None = None) -> list[Outcome]:
    _, tree, _, run = prepare(settings, services, path, jobs)
    check_version(tree, to, "--to")
    return run(actions.migrating(settings, tree, to), continue_on_error, on_change)


def rollback(settings: Settings, services: list[str] | None, path: Path, jobs: int | None = None,
             continue_on_error: bool = False, steps: int | None = None, to: int | None = None,
             everything: bool = False, force: bool = False, on_change: OnChange | None = None) -> list[Outcome]:
    if sum(o for o in (steps is not None, to is not None, everything)) > 1:
        raise BadInput("--steps, --to and --all choose what to roll back; give only one of them")
    if steps is not None and steps < 1:
        raise BadInput(f"--steps {steps}: give a positive number of migrations to roll back")
    _, tree, _, run = prepare(settings, services, path, jobs)
    check_version(tree, to, "--to")
    return run(actions.rolling_back(settings, tree, steps, to, everything, force), continue_on_error, on_change)


def status(settings: Settings, services: list[str] | None, path: Path,
           on_change: OnChange | None = None) -> tuple[list[Migration], list[Outcome]]:
    """The version matrix: read-only, so every database is asked, whatever fails."""
    _, tree, _, run = prepare(settings, services, path, None)
    return tree, run(actions.reading_status(settings, tree), True, on_change)


def audit(settings: Settings, services: list[str] | None, path: Path, min_size: int | str = 0,
          fail_on: str | None = None, on_change: OnChange | None = None) -> list[Outcome]:
    from ..inspect.audit import check_level

    check_level(fail_on)
    service, _, _, run = prepare(settings, services, path, None)
    return run(actions.auditing(settings, service, min_size), True, on_change)


def check(settings: Settings, services: list[str] | None, path: Path, scratch_dsn: str | None = None,
          on_change: OnChange | None = None) -> list[Outcome]:
    service, _, _, run = prepare(settings, services, path, None)
    return run(actions.checking_schema(settings, service, scratch_dsn), True, on_change)

"""The command line: parse, build settings, call one core function, render.

Each command imports its core function and its renderer inside its body, so `dbtool --help` and the
offline commands load neither psycopg, pglast nor yoyo. The shared options are declared once
(`SHARED`) and added to a command's signature by `command()`, which is also the one error boundary
and the one place where "findings" becomes exit 1.
"""

# No `from __future__ import annotations`: Typer reads these annotations as objects.
import functools
import inspect
import os
import signal
import sys
import traceback as tracebacks
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Iterator, Optional

import typer

from .errors import BadInput, ExitCode, MigrationTreeError, Refused, classify

if TYPE_CHECKING:  # config loads when a command runs, not for --help
    from .config import Settings

_SETTINGS = dict(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
_HELP = "Schema-first SQL migrations, checks and reports for PostgreSQL."
_app = typer.Typer(help=_HELP, **_SETTINGS)
server_app = typer.Typer(help="The embedded PostgreSQL server used when nothing else is configured.",
                         no_args_is_help=True)
schema_app = typer.Typer(help="The schema a service's migrations build, kept in schemas/<service>/schema.sql.",
                         no_args_is_help=True)
_app.add_typer(server_app, name="server")
_app.add_typer(schema_app, name="schema")

Services = Annotated[Optional[list[str]], typer.Argument(help="Service folders under schemas/; none means all.",
                                                         show_default=False)]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout, nothing else there.")]
Yes = Annotated[bool, typer.Option("--yes", help="Confirm a change to a prod database.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print what would run or change; change nothing.")]
ScratchDsn = Annotated[Optional[str], typer.Option(
    "--scratch-dsn", envvar="DBTOOL_SCRATCH_DSN", show_envvar=True,
    help="Admin URL of a server to build scratch databases on (default: each service's own server;"
         " required with --env prod).")]
FleetFile = Annotated[Optional[Path], typer.Option(
    "--fleet", help="A fleet.toml: run on every database its waves list (one SERVICE), wave by wave.",
    show_default=False)]
Jobs = Annotated[Optional[int], typer.Option(
    "--jobs", help="With --fleet: databases worked on at once (default: the wave's jobs, else 4).",
    show_default=False)]
ContinueOnError = Annotated[bool, typer.Option(
    "--continue-on-error", help="With --fleet: go on after a database fails (default: finish those in"
                                " flight, start no new one).")]
FailOn = Annotated[Optional[str], typer.Option(
    "--fail-on", help="Exit 1 when a finding reaches this level: error, warning or info (default: never).",
    show_default=False)]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The options every database command shares, declared once. `settings` below says which ones a
# command takes; the wrapper turns them into one Settings.
SHARED = {
    "env": _option("env", Annotated[str, typer.Option("--env", help="Environment: dev, test or prod.")], "dev"),
    "schemas_dir": _option("schemas_dir", Annotated[Path, typer.Option(
        "--schemas-dir", help="Folder holding one folder per service.")], Path("schemas")),
    "dsn": _option("dsn", Annotated[Optional[str], typer.Option(
        "--dsn", help="Connection URL of the database (one service only).")], None),
    "wait": _option("wait", Annotated[float, typer.Option(
        "--wait", help="Seconds to keep retrying a server that is starting.")], 0.0),
    "lock_timeout": _option("lock_timeout", Annotated[float, typer.Option(
        "--lock-timeout", help="Seconds to wait for another dbtool run on the same database (its"
                               " migration lock); not the lock a DDL statement waits for.")], 60.0),
    "ddl_lock_timeout": _option("ddl_lock_timeout", Annotated[str, typer.Option(
        "--ddl-lock-timeout", help="How long each migration statement may wait for a table lock (300ms, 2s,"
                                   " 1min; 0 waits forever) before its migration is rolled back and retried;"
                                   " a session holding one for over a quarter of it is waited out without"
                                   " queueing; not --lock-timeout, the wait for another dbtool run.")], "1s"),
    "ddl_retries": _option("ddl_retries", Annotated[int, typer.Option(
        "--ddl-retries", help="How often a migration that could not get its locks is retried, after"
                              " a growing, jittered wait.")], 10),
    "statement_timeout": _option("statement_timeout", Annotated[str, typer.Option(
        "--statement-timeout", help="How long each migration statement may run (e.g. 30s, 10min, 1h; 0 is"
                                    " no limit).")], "1h"),
    "traceback": _option("traceback", Annotated[bool, typer.Option(
        "--traceback", help="Show the full traceback of an error (the exit code stays the same).")], False),
}
DATABASE = ("env", "schemas_dir", "dsn", "wait", "traceback")
LOCKING = DATABASE + ("lock_timeout",)
DDL = LOCKING + ("ddl_lock_timeout", "ddl_retries", "statement_timeout")
OFFLINE = ("schemas_dir", "traceback")


@contextmanager
def boundary(show_traceback: bool, urls: list[str | None]) -> Iterator[None]:
    """The one place an error becomes a line on stderr and its exit code; passwords never get out."""
    from . import signals

    stopped_by: list[int | None] = []  # read before handled() forgets the signal on its way out
    try:
        with signals.handled():
            try:
                yield
            finally:
                stopped_by.append(signals.received())
    except BrokenPipeError:
        # `dbtool status | head`: whoever read the output has gone. Stop as a command SIGPIPE kills
        # does, silently; each migration is whole or not there, so stopping between them is safe.
        _stdout_to_devnull()
        raise typer.Exit(int(ExitCode.PIPE_CLOSED)) from None
    except KeyboardInterrupt:
        _fail("interrupted; every migration either finished or left no trace, run the command again",
              ExitCode.INTERRUPTED, [])
    except Exception as exc:  # the one last resort: nothing leaves as a bare traceback
        from .config import Settings, secrets

        error = classify(exc)
        signum = stopped_by[0] if stopped_by else None
        if signum and not isinstance(error, signals.Interrupted):
            # What failed did so because the signal cancelled it: say that first.
            error = signals.Interrupted(f"interrupted by {signal.Signals(signum).name}; the running statement"
                                        f" was cancelled and rolled back ({error}); run the command again", signum)
        try:
            hidden = [s for url in urls if url for s in secrets(Settings(dsn=url))] + secrets(Settings())
        except ImportError:  # a signal cut an import short (psycopg's, at start-up): nothing connected yet
            hidden = []
        if show_traceback:
            sys.stderr.write(_redact("".join(tracebacks.format_exception(exc)), hidden))
        message = str(error)
        if not isinstance(error, (MigrationTreeError, signals.Interrupted)):  # one line each, by design
            message = " ".join(message.splitlines())  # a server's message may quote SQL across lines
        _fail(message, error.exit_code, hidden)


def _stdout_to_devnull() -> None:
    """So that Python's own flush of stdout at exit does not fail on the closed pipe again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file (a test's captured output): nothing will be flushed to a pipe


def _redact(text: str, hidden: list[str]) -> str:
    from .config import redact

    return redact(text, hidden)


def _fail(message: str, code: int, hidden: list[str]) -> None:
    from .render.console import error

    for text in message.splitlines() or ["error"]:
        error(_redact(text, hidden))
    raise typer.Exit(int(code)) from None


# Every command as declared: (Typer app, name, shared options, function). They are handed to Typer
# only when the command line is parsed, and then only the one it names where it names one: building
# Typer's parameters for all commands costs more than a no-op migrate does.
_DECLARED: list[tuple[typer.Typer, str, tuple[str, ...], Callable]] = []


def command(typer_app: typer.Typer, name: str | None = None, shared: tuple[str, ...] = DATABASE) -> Callable:
    """Declare a command whose function takes `settings` first: the shared options are added to its
    signature, errors become one line and their exit code, and a true return value means exit 1."""

    def decorate(func: Callable) -> Callable:
        _DECLARED.append((typer_app, name or func.__name__.replace("_", "-"), shared, func))
        return func

    return decorate


def _register(target: typer.Typer, name: str, shared: tuple[str, ...], func: Callable) -> None:
    signature = inspect.signature(func)
    own = [p for p in signature.parameters.values() if p.name != "settings"]
    params = own + [SHARED[n] for n in shared]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> None:
        common = {n: kwargs.pop(n) for n in shared}
        hidden = [common.get("dsn"), kwargs.get("scratch_dsn"), *(kwargs.get("dsns") or [])]
        with boundary(common.pop("traceback"), hidden):
            from .config import make_settings

            _finite({**common, **kwargs})
            settings = make_settings(**common)
            findings = func(settings, **kwargs)
        if findings:
            raise typer.Exit(int(ExitCode.FINDINGS))

    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # Typer must see the new signature, not the function's own
    target.command(name)(wrapper)


def _finite(options: dict[str, Any]) -> None:
    """Click reads "nan" and "inf" as floats, and every range check lets NaN through."""
    import math

    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise BadInput(f"--{name.replace('_', '-')} {value}: give a finite number")


@functools.lru_cache(maxsize=None)
def full_app() -> typer.Typer:
    """The whole command line, every command registered: for --help, groups, and tests."""
    for declared in _DECLARED:
        _register(*declared)
    return _app


def __getattr__(name: str) -> Any:
    if name == "app":  # `from dbtool.cli import app`: the whole command line
        return full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _confirm_prod(settings: "Settings", yes: bool, action: str) -> None:
    if settings.env != "prod" or yes:
        return
    if sys.stdin.isatty() and typer.confirm(f"{action} the prod databases?"):
        return
    raise Refused(f"--env prod: {action} needs --yes (or an answer at the prompt); nothing was changed")


def _fleet_mode(fleet: Optional[Path], jobs: Optional[int], continue_on_error: bool, dry_run: bool) -> bool:
    if fleet is None and (jobs is not None or continue_on_error):
        raise BadInput("--jobs and --continue-on-error apply to a fleet; add --fleet FILE")
    if fleet is not None and dry_run:
        raise BadInput("--dry-run and --fleet: a fleet run cannot be dry; use --dry-run --dsn on one database")
    return fleet is not None


def _fleet(run: Callable, verb: str, json: bool) -> None:
    """Run a fleet command with its progress shown; a failed database ends it with that error's code."""
    from .fleet.waves import failure
    from .render.fleet import progress, summary

    with progress(verb, json) as on_change:
        outcomes = run(on_change)
    summary(outcomes, verb, json)
    error = failure(outcomes, changes=True)
    if error:
        raise error


def _fleet_report(outcomes: list, show: Callable[[], None]) -> None:
    """A read-only fleet command: every database was asked; one that did not answer ends it with its code."""
    from .fleet.waves import failure

    show()
    error = failure(outcomes, changes=False)
    if error:
        raise error


# ---------------------------------------------------------------- migrations


@command(_app, shared=DDL)
def migrate(
    settings: "Settings", services: Services = None,
    to: Annotated[Optional[int], typer.Option("--to", help="Apply up to and including this version.")] = None,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
    fleet: FleetFile = None, jobs: Jobs = None, continue_on_error: ContinueOnError = False,
) -> None:
    """Apply pending migrations, each in one transaction with its record."""
    from .migrate.commands import migrate
    from .render.migrate import progress, summary

    if not dry_run:
        _confirm_prod(settings, yes, "migrate")
    if _fleet_mode(fleet, jobs, continue_on_error, dry_run):
        from .fleet import commands

        return _fleet(lambda on_change: commands.migrate(settings, services, fleet, jobs, continue_on_error, to,
                                                         on_change), "applied", json)
    results = migrate(settings, services, to=to, dry_run=dry_run, events=progress("applied", json))
    summary(results, "applied", dry_run, json)


@command(_app, shared=DDL)
def rollback(
    settings: "Settings", services: Services = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Roll back this many migrations (default 1).")] = None,
    to: Annotated[Optional[int], typer.Option("--to", help="Roll back every migration after this version.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Roll back every applied migration.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Roll back even when a down file drops rows.")] = False,
    dry_run: DryRun = False, yes: Yes = False, json: Json = False,
    fleet: FleetFile = None, jobs: Jobs = None, continue_on_error: ContinueOnError = False,
) -> None:
    """Roll back applied migrations with their down files, newest first."""
    from .migrate.commands import rollback
    from .render.migrate import progress, summary

    if not dry_run:
        _confirm_prod(settings, yes, "roll back")
    if _fleet_mode(fleet, jobs, continue_on_error, dry_run):
        from .fleet import commands

        return _fleet(lambda on_change: commands.rollback(settings, services, fleet, jobs, continue_on_error, steps,
                                                          to, everything, force, on_change),
                      "rolled back", json)
    results = rollback(settings, services, steps=steps, to=to, everything=everything, force=force,
                       dry_run=dry_run, events=progress("rolled back", json))
    summary(results, "rolled back", dry_run, json)


@command(_app)
def status(
    settings: "Settings", services: Services = None,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when anything is pending or drifted.")] = False,
    json: Json = False, fleet: FleetFile = None,
) -> bool:
    """Show applied, pending, edited and missing migrations per service.

    With --fleet: the version matrix, which database is at which version, behind or drifted.
    """
    from .migrate.commands import status
    from .render.migrate import status as show

    if fleet is not None:
        from .fleet import commands
        from .render.fleet import matrix

        tree, outcomes = commands.status(settings, services, fleet)
        _fleet_report(outcomes, lambda: matrix(tree, outcomes, json))
        return exit_code and any(o.detail.pending or o.detail.edited or o.detail.missing for o in outcomes)
    results = status(settings, services)
    show(results, json)
    return exit_code and any(r.drifted for r in results)


@command(_app, shared=OFFLINE)
def validate(settings: "Settings", services: Services = None) -> None:
    """Check the migration tree offline: names, numbering, up/down pairs, encoding."""
    from .migrate.tree import validate
    from .render.migrate import validated

    validated(validate(settings, services))


@command(_app, shared=OFFLINE)
def new(
    settings: "Settings",
    service: Annotated[str, typer.Argument(help="The service folder under schemas/.")],
    name: Annotated[str, typer.Argument(help="What the migration does, e.g. add_user_bio_column.")],
) -> None:
    """Write the next numbered up/down migration pair of a service."""
    from .migrate.tree import new_migration
    from .render.console import line

    up, down = new_migration(settings, service, name)
    line(f"created {up}\ncreated {down}")


@command(_app, shared=LOCKING)
def repair(settings: "Settings", services: Services = None, yes: Yes = False) -> None:
    """Accept intended edits of applied migrations by recording their current checksums."""
    from .migrate.commands import repair
    from .render.migrate import repaired

    _confirm_prod(settings, yes, "repair")
    repaired(repair(settings, services))


@command(_app)
def triggers(settings: "Settings", services: Services = None, dry_run: DryRun = False, yes: Yes = False,
             json: Json = False) -> None:
    """Give every table with an updated_at column its update_<table>_updated_at trigger; drop stale ones.

    migrate and rollback run this at their end; run it by hand after changing a schema outside dbtool.
    """
    from .migrate.commands import sync_triggers
    from .render.migrate import trigger_progress, triggers

    if not dry_run:
        _confirm_prod(settings, yes, "sync triggers in")
    triggers(sync_triggers(settings, services, dry_run=dry_run, events=trigger_progress(json)), json)


@command(_app, shared=LOCKING)
def roles(
    settings: "Settings", services: Services = None, dry_run: DryRun = False, yes: Yes = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Change nothing; report drift (objects the owner does not own, grants to PUBLIC,"
                        " an app role that can create or drop, another service's role that can connect)"
                        " and exit 1 on any.")] = False,
    json: Json = False,
) -> bool:
    """Create or bring up to date each service's owner, app and read-only roles, ownership and grants.

    Login passwords come from <ROLE>_PASSWORD variables (e.g. IDENTITY_APP_PASSWORD), never from
    output. Running it again changes nothing and says so.
    """
    from .render.roles import roles as show
    from .roles.commands import roles

    if not (dry_run or check):
        _confirm_prod(settings, yes, "change roles and grants of")
    results = roles(settings, services, dry_run=dry_run, check=check)
    show(results, json, check)
    return check and any(r.findings or r.plan.steps for r in results)


# ---------------------------------------------------------------- data


@command(_app)
def seed(
    settings: "Settings", services: Services = None,
    scale: Annotated[Optional[int], typer.Option(
        "--scale", help="Load deterministic synthetic data instead: 1 is small, 5000 puts"
                        " 1,000,000 rows in courses.")] = None,
    json: Json = False,
) -> None:
    """Load development rows from schemas/<service>/seeds/*.sql, or synthetic data with --scale.

    The services a seeded service's soft references point at are seeded first. Every database must
    be migrated (exit 4 otherwise); prod is refused (exit 4); running it twice adds nothing.
    """
    from .data.seed import seed
    from .render.console import line
    from .render.data import seed_progress, seed_summary

    with seed_progress(json) as events:
        report = seed(settings, services, scale=scale, events=events, redis_cache=True)
    for note in [] if json else report.notes:  # the chat context cache fill, or why it was skipped
        line(note)
    seed_summary(report, json)


@command(_app, "check-references")
def check_references(settings: "Settings", services: Services = None, json: Json = False) -> bool:
    """Report soft references that point at no row of the other service's database. Exit 1 when any.

    The references are declared in schemas/<service>/references.toml; a copied column (a
    denormalised name) that no longer matches the row it points at is reported too, and so are
    Redis keys whose ids point at no row (references in schemas/<service>/redis.toml).
    """
    from .data.references import check
    from .redis.audit import check_references
    from .render.redis import references

    reports = check(settings, services)
    key_refs = check_references(settings, services)  # the ids in declared Redis keys point at rows too
    references(reports, key_refs, json)
    return any(not r.clean for r in reports) or any(k.dangling for k in key_refs)


# ---------------------------------------------------------------- inspecting a live database


@command(_app, "audit-indexes", shared=("env", "schemas_dir", "wait", "traceback"))
def audit_indexes(
    settings: "Settings", services: Services = None, fail_on: FailOn = None,
    min_size: Annotated[str, typer.Option(
        "--min-size", help="Report unused indexes only from this size on: bytes, or e.g. 8kB, 1MB.")] = "0",
    dsns: Annotated[Optional[list[str]], typer.Option(
        "--dsn", help="Connection URL of the database (one service only); repeat it for the primary's"
                      " replicas, whose index scans count for 'unused'.")] = None,
    json: Json = False, fleet: FleetFile = None,
) -> bool:
    """Report unused, duplicate, redundant, invalid, bloated and unselective indexes, foreign keys
    without an index, sequences near overflow, and tables read by sequential scans, each with the SQL
    that fixes it. Changes nothing.

    With --dsn and no SERVICE it audits any database, every user schema. Silence a finding in
    schemas/<service>/dbtool.toml with [[audit.silence]] index = "..." and reason = "...".
    """
    from dataclasses import replace

    from .config import check_dsn
    from .inspect.audit import audit, reaches
    from .render.audit import audit as show

    if fleet is not None:
        from .fleet import commands
        from .inspect.audit import ServiceAudit
        from .render.fleet import audits

        outcomes = commands.audit(settings, services, fleet, min_size, fail_on)
        _fleet_report(outcomes, lambda: audits(outcomes, json))
        return reaches([ServiceAudit("", "", o.detail) for o in outcomes], fail_on)
    primary, *replicas = dsns or [None]
    settings = replace(settings, dsn=check_dsn(primary, "--dsn") if primary else None)
    results = audit(settings, services, min_size=min_size, fail_on=fail_on, replicas=replicas)
    show(results, json)
    return reaches(results, fail_on)


@command(_app)
def explain(
    settings: "Settings", services: Services = None,
    query: Annotated[Optional[list[str]], typer.Option(
        "--query", help="Explain only this key query (file stem under queries/); repeat for more.")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", help="Also write a report with every plan to this file: HTML for a .html name (plans drawn"
                         " as pictures), else Markdown.")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds each query may run before it is cancelled.")] = 30.0,
    large_rows: Annotated[int, typer.Option(
        "--large-rows", help="Warn about a sequential scan on a table, or a filter discarding, this many rows"
                             " or more; no_seq_scan budgets judge tables of this size.")] = 10_000,
    verbose: Annotated[bool, typer.Option("--verbose", help="Print each query's plan tree under the table.")] = False,
    save_baseline: Annotated[Optional[Path], typer.Option(
        "--save-baseline", help="Write each query's plan shape and figures to this file, for --baseline.")] = None,
    baseline: Annotated[Optional[Path], typer.Option(
        "--baseline", help="Compare with a file --save-baseline wrote; exit 1 when a plan changed shape or a"
                           " query got slower.")] = None,
    slower: Annotated[float, typer.Option(
        "--slower", help="With --baseline: a query this many times slower than its baseline (and 1 ms or"
                         " more) is a regression.")] = 2.0,
    json: Json = False,
) -> bool:
    """EXPLAIN ANALYZE each key query of schemas/<service>/queries/; exit 1 when a budget is broken or
    a plan regressed against --baseline.

    Every query runs in a READ ONLY transaction with a statement timeout and is rolled back, so
    nothing changes. Reports time, the plan's scans, estimated vs actual rows, buffers and warnings.
    """
    from .inspect.baseline import explain_against
    from .inspect.explain import any_broken
    from .render.explain import explain as show

    results = explain_against(settings, services, baseline, save_baseline, slower, names=query, timeout=timeout,
                              large_rows=large_rows, output=output)
    show(results, json, output, verbose)
    return any_broken(results)


@command(_app)
def report(
    settings: "Settings", services: Services = None,
    output: Annotated[Path, typer.Option("--output", help="The HTML file to write, e.g. report.html.")] = Path(
        "report.html"),
    drift: Annotated[bool, typer.Option(
        "--drift", help="Also run 'schema check' (scratch databases) and show its drift.")] = False,
    scratch_dsn: ScratchDsn = None,
) -> None:
    """Write one self-contained HTML page per run: migration status, key query plans drawn as pictures,
    index audit, lint findings and, with --drift, schema drift. Opens offline.
    """
    from .report.write import write_report

    write_report(settings, services, output, drift, scratch_dsn)


@command(_app)
def advise(
    settings: "Settings", services: Services = None,
    query: Annotated[Optional[list[str]], typer.Option(
        "--query", help="Advise only this key query (file stem under queries/); repeat for more.")] = None,
    min_gain: Annotated[float, typer.Option(
        "--min-gain", help="Keep an index only when it cuts the query's estimated cost by this percentage"
                           " (0 to 100).")] = 50.0,
    write: Annotated[bool, typer.Option(
        "--write", help="Write each suggested index as the service's next migration pair.")] = False,
    from_stats: Annotated[bool, typer.Option(
        "--from-stats", help="Also advise the top SELECTs of pg_stat_statements in the service's database, by"
                             " total execution time, named stats:<queryid>. Without the extension (installed"
                             " and preloaded) the key queries are still advised, then exit 2 with the fix and"
                             " nothing written.")] = False,
    top: Annotated[Optional[int], typer.Option(
        "--top", help="How many statements --from-stats takes (default 10).", show_default=False)] = None,
    scratch_dsn: ScratchDsn = None, json: Json = False,
) -> None:
    """Suggest the index each key query needs, proven by the planner's cost before and after.

    Candidates come from the parsed query; each is priced with hypopg when the database has it, else
    built for real in a transaction that is always rolled back (on a scratch copy outside dev).
    """
    from .advise.advisor import advise, check_stats
    from .render.advise import advise as show

    results = advise(settings, services, names=query, min_gain=min_gain, scratch_dsn=scratch_dsn, write=write,
                     from_stats=from_stats, top=top)
    show(results, json)
    check_stats(results, write)  # after the advice is shown: --from-stats that could not be read is exit 2


# ---------------------------------------------------------------- lint, schema files, verify


@command(_app, shared=OFFLINE)
def lint(
    settings: "Settings",
    paths: Annotated[Optional[list[Path]], typer.Argument(
        help="Service folders, migration files or folders of .sql files; none means every service under schemas/.",
        show_default=False)] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="text, json, or github (workflow annotations on the pull request).")] = "text",
    rules: Annotated[Optional[str], typer.Option(
        "--rules", help="all, or safety (locking, safety and down-file rules only, for a foreign schema);"
        " default: [lint] rules in the service's dbtool.toml, else all.", show_default=False)] = None,
    json: Json = False,
) -> bool:
    """Check migrations offline: naming, types, constraints, timestamps, locking safety, down files.

    Exit 1 on any error-level finding. '-- dbtool: ignore RULE reason' on the line before a statement
    silences one rule for it.
    """
    from .lint.run import lint
    from .lint.run import output_format as chosen_format
    from .render.lint import lint as show

    fmt = chosen_format(output_format, json)
    report = lint(settings, paths, rules)
    show(report, fmt)
    return bool(report.errors)


@command(schema_app, "dump")
def schema_dump(
    settings: "Settings", services: Services = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Dump the service's own database (it must be fully migrated) instead of what the"
                       " migrations build on a scratch database.")] = False,
    scratch_dsn: ScratchDsn = None, json: Json = False,
) -> None:
    """Write schemas/<service>/schema.sql: what the migrations build, as pg_dump writes it, minus volatile lines.

    Run it after adding or changing a migration, and commit the file.
    """
    from .render.schemafile import schema_dump
    from .schemafile.commands import dump

    schema_dump(dump(settings, services, live, scratch_dsn), json)


@command(schema_app, "check")
def schema_check(settings: "Settings", services: Services = None, scratch_dsn: ScratchDsn = None,
                 json: Json = False, fleet: FleetFile = None) -> bool:
    """Rebuild each service from its migrations on a scratch database; compare with schema.sql and the live database.

    Exit 1 when schema.sql is stale or the live database drifted (each object named).
    """
    from .render.schemafile import schema_check
    from .schemafile.commands import check

    if fleet is not None:
        from .fleet import commands
        from .render.fleet import checks

        outcomes = commands.check(settings, services, fleet, scratch_dsn)
        _fleet_report(outcomes, lambda: checks(outcomes, json))
        return not all(o.detail.clean for o in outcomes)
    results = check(settings, services, scratch_dsn)
    schema_check(results, json)
    return not all(r.clean for r in results)


@command(_app)
def verify(settings: "Settings", services: Services = None, scratch_dsn: ScratchDsn = None,
           strict_column_order: Annotated[bool, typer.Option(
               "--strict-column-order", help="Also fail a down file whose re-added columns come back in another"
                                              " order (PostgreSQL appends them; off by default).")] = False,
           json: Json = False) -> bool:
    """On scratch databases: migrate, roll back, migrate again; compare with schema.sql; run triggers and seeds.

    Each check is a line, ok or FAILED with the reason; exit 1 when any fails. The service's own
    database is never touched.
    """
    from .render.schemafile import verify_progress, verify_summary
    from .schemafile.verify import verify

    report = verify(settings, services, scratch_dsn, events=verify_progress(json),
                    strict_column_order=strict_column_order)
    verify_summary(report, json)
    return not report.ok


@command(_app, shared=LOCKING)
def baseline(
    settings: "Settings", service: Annotated[str, typer.Argument(help="The service folder under schemas/ (no migrations yet).")],
    yes: Yes = False,
) -> None:
    """Adopt a live database: write 001_baseline.sql from its schema and record it as applied there.

    The folder must hold no migrations and the database no dbtool records. The updated_at triggers
    the next migrate would add are printed, not added: opt out in dbtool.toml [triggers] if needed.
    """
    from .render.schemafile import baselined
    from .schemafile.baseline import baseline

    _confirm_prod(settings, yes, "record a baseline in")
    baselined(baseline(settings, service))


@command(_app, shared=DDL)
def rehearse(
    settings: "Settings",
    service: Annotated[str, typer.Argument(help="The service folder under schemas/ whose pending migrations to rehearse.")],
    scale: Annotated[int, typer.Option("--scale", help="Synthetic data to load first, as seed --scale (1..5000).")] = 10,
    writers: Annotated[int, typer.Option("--writers", help="Writer connections doing INSERT and UPDATE by primary"
                                                           " key on the tables the migrations touch.")] = 4,
    duration_limit: Annotated[float, typer.Option(
        "--duration-limit", help="Seconds a migration may run before it is cancelled and reported.")] = 600.0,
    max_stall: Annotated[float, typer.Option(
        "--max-stall", help="Worst write latency in ms a migration may cause; exit 1 when one causes more.")] = 500.0,
    start: Annotated[Optional[int], typer.Option(
        "--from", help="Rehearse the migrations after this version (default: the version the service's own"
                       " database has applied).")] = None,
    scratch_dsn: ScratchDsn = None, json: Json = False,
) -> bool:
    """Apply the pending migrations on a scratch database under writer load and report what each did.

    Per migration: its duration, the writers' worst and 99th-percentile latency while it ran, the
    locks it took, whether it rewrote a table or index, and the size change. The scratch database is
    always dropped; the service's own database is only read.
    """
    from .rehearse.run import rehearse
    from .render.rehearse import progress, summary

    report = rehearse(settings, service, scale=scale, writers=writers, duration_limit=duration_limit,
                      max_stall=max_stall, start=start, scratch_dsn=scratch_dsn, events=progress(json))
    summary(report, json)
    return report.broken


# ---------------------------------------------------------------- the embedded server


@command(server_app, "start", shared=OFFLINE)
def server_start(settings: "Settings") -> None:
    """Start the embedded server (data under .dbtool/) and leave it running."""
    from .render.console import line
    from .server import start

    line(f"embedded server running: {start(settings.embedded_dir)}")


@command(server_app, "stop", shared=OFFLINE)
def server_stop(settings: "Settings") -> None:
    """Stop the embedded servers (PostgreSQL and Redis); the PostgreSQL data stays under .dbtool/."""
    from .redis.locate import stop as stop_redis
    from .render.console import line
    from .server import stop

    line("embedded server stopped" if stop(settings.embedded_dir) else "embedded server was not running")
    line("embedded Redis stopped" if stop_redis(settings.embedded_dir / "redis") else "embedded Redis was not running")


@command(server_app, "status", shared=OFFLINE)
def server_status(settings: "Settings", json: Json = False) -> bool:
    """Say whether the embedded servers (PostgreSQL, Redis) run, and where. Exit 1 when PostgreSQL does not."""
    from .redis.locate import running_url
    from .render.redis import server_status
    from .server import running_conninfo

    conninfo = running_conninfo(settings.embedded_dir)
    server_status(settings.embedded_dir, conninfo, running_url(settings.embedded_dir / "redis"), json)
    return conninfo is None


@command(server_app, "url", shared=OFFLINE)
def server_url(settings: "Settings") -> None:
    """Print the embedded server's connection string (starting it if needed), for psql or an app."""
    from .server import start

    typer.echo(start(settings.embedded_dir))


# ---------------------------------------------------------------- redis audit | url (dbtool/redis/)

redis_app = typer.Typer(help="Redis: the keys each service declares in schemas/<service>/redis.toml.",
                        no_args_is_help=True)
_app.add_typer(redis_app, name="redis")
RedisUrl = Annotated[Optional[str], typer.Option(
    "--redis-url", help="Redis URL (redis://[:password@]host:port/db or unix:///path); default: <SERVICE>_REDIS_URL,"
                        " REDIS_URL, REDIS_HOST/REDIS_PORT, else the embedded Redis in dev and test.",
    show_default=False)]


REDIS_SHARED = ("env", "schemas_dir", "wait", "traceback")  # a Redis URL instead of --dsn


@command(redis_app, "audit", shared=REDIS_SHARED)
def redis_audit(
    settings: "Settings", services: Services = None, fail_on: FailOn = None,
    sample: Annotated[Optional[int], typer.Option(
        "--sample", help="Check the value, size and references of at most N keys per pattern (TTL and type of"
                         " every key are checked).", show_default=False)] = None,
    redis_url: RedisUrl = None, json: Json = False,
) -> bool:
    """SCAN the keyspace against the declared keys: stray keys, missing or too long TTLs, wrong types
    and JSON shapes, keys over their size limit, and ids pointing at no database row. Changes nothing.
    """
    from .redis.audit import audit, reaches
    from .render.redis import audit as show

    results = audit(settings, services, redis_url=redis_url, fail_on=fail_on, sample=sample)
    show(results, json)
    return reaches(results, fail_on)


@command(redis_app, "url", shared=("env", "schemas_dir", "traceback"))
def redis_url_command(
    settings: "Settings",
    service: Annotated[Optional[str], typer.Argument(help="The service whose Redis to name (default: REDIS_URL's).",
                                                     show_default=False)] = None,
    show_password: Annotated[bool, typer.Option("--show-password", help="Print the password instead of ***.")] = False,
    redis_url: RedisUrl = None,
) -> None:
    """Print the Redis URL (starting the embedded Redis if that is the one), for redis-cli -u or an app.

    For the embedded Redis it is a unix:// URL: redis-cli -s takes the path after unix://.
    """
    from .config import select_services
    from .redis.locate import mask, resolve, url_of

    if service is not None:
        select_services(settings, [service])
    url = url_of(resolve(settings, service, redis_url), settings)
    typer.echo(url if show_password else mask(url))


def main() -> None:
    """Run the command line. `dbtool migrate ...` builds only `migrate`: a group of one command (the
    callback keeps it a group, so `migrate` is still read as the command's name)."""
    named = sys.argv[1] if len(sys.argv) > 1 else ""
    for declared in _DECLARED:
        if declared[0] is _app and declared[1] == named:
            solo = typer.Typer(help=_HELP, **_SETTINGS)
            solo.callback()(_no_options)
            _register(solo, *declared[1:])
            solo()
            return
    full_app()()


def _no_options() -> None:
    """The group's callback: dbtool itself takes no options."""

"""The command line: parse, build settings, call one core function, render."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from . import api, references, render, seed as seeding
from . import audit as index_audit
from . import explain as explaining
from . import lint as linting
from . import schema as schemas, verify as verifying
from . import server as embedded
from .config import Settings, make_settings, redact, secrets
from .errors import DbtoolError, ExitCode, Refused

app = typer.Typer(
    help="Schema-first SQL migrations, checks and reports for PostgreSQL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
server_app = typer.Typer(help="The embedded PostgreSQL server used when nothing else is configured.",
                         no_args_is_help=True)
app.add_typer(server_app, name="server")

Services = Annotated[Optional[list[str]], typer.Argument(help="Service folders under schemas/; none means all.",
                                                         show_default=False)]
Env = Annotated[str, typer.Option("--env", help="Environment: dev, test or prod.")]
SchemasDir = Annotated[Path, typer.Option("--schemas-dir", help="Folder holding one folder per service.")]
Dsn = Annotated[Optional[str], typer.Option("--dsn", help="Connection URL of the database (one service only).")]
Wait = Annotated[float, typer.Option("--wait", help="Seconds to keep retrying a server that is starting.")]
LockTimeout = Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for another dbtool run.")]
Traceback = Annotated[bool, typer.Option("--traceback", help="Show the full traceback of an error.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout, nothing else there.")]
Yes = Annotated[bool, typer.Option("--yes", help="Confirm a change to a prod database.")]


def handled(func: Callable) -> Callable:
    """The one place errors become a line on stderr and an exit code; passwords never get out."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DbtoolError as exc:
            if kwargs.get("traceback"):
                raise
            hidden = secrets(Settings(dsn=kwargs.get("dsn"))) + secrets(Settings(dsn=kwargs.get("scratch_dsn")))
            for line in str(exc).splitlines() or [type(exc).__name__]:
                render.error(redact(line, hidden))
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            render.error("interrupted; every migration either finished or left no trace, run the command again")
            raise typer.Exit(130) from None

    return wrapper


def _settings(env: str, schemas_dir: Path, dsn: str | None, wait: float, lock_timeout: float = 60.0) -> Settings:
    return make_settings(schemas_dir=schemas_dir, env=env, dsn=dsn, wait=wait, lock_timeout=lock_timeout)


def _confirm_prod(settings: Settings, yes: bool, action: str) -> None:
    if settings.env != "prod" or yes:
        return
    if sys.stdin.isatty() and typer.confirm(f"{action} the prod databases?"):
        return
    raise Refused(f"--env prod: {action} needs --yes (or an answer at the prompt); nothing was changed")


@app.command()
@handled
def migrate(
    services: Services = None,
    to: Annotated[Optional[int], typer.Option("--to", help="Apply up to and including this version.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL that would run; change nothing.")] = False,
    yes: Yes = False, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, lock_timeout: LockTimeout = 60.0, traceback: Traceback = False,
) -> None:
    """Apply pending migrations, each in one transaction with its record."""
    settings = _settings(env, schemas_dir, dsn, wait, lock_timeout)
    if not dry_run:
        _confirm_prod(settings, yes, "migrate")
    results = api.migrate(settings, services, to=to, dry_run=dry_run, events=render.progress("applied", json))
    render.summary(results, "applied", dry_run, json)


@app.command()
@handled
def rollback(
    services: Services = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Roll back this many migrations (default 1).")] = None,
    to: Annotated[Optional[int], typer.Option("--to", help="Roll back every migration after this version.")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Roll back every applied migration.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Roll back even when a down file drops rows.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the SQL that would run; change nothing.")] = False,
    yes: Yes = False, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, lock_timeout: LockTimeout = 60.0, traceback: Traceback = False,
) -> None:
    """Roll back applied migrations with their down files, newest first."""
    settings = _settings(env, schemas_dir, dsn, wait, lock_timeout)
    if not dry_run:
        _confirm_prod(settings, yes, "roll back")
    results = api.rollback(settings, services, steps=steps, to=to, everything=everything, force=force,
                           dry_run=dry_run, events=render.progress("rolled back", json))
    render.summary(results, "rolled back", dry_run, json)


@app.command()
@handled
def status(
    services: Services = None,
    exit_code: Annotated[bool, typer.Option("--exit-code", help="Exit 1 when anything is pending or drifted.")] = False,
    json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Show applied, pending, edited and missing migrations per service."""
    settings = _settings(env, schemas_dir, dsn, wait)
    results = api.status(settings, services)
    render.status(results, json)
    if exit_code and any(r.state and (r.state.pending or r.state.edited or r.state.missing) for r in results):
        raise typer.Exit(int(ExitCode.FINDINGS))


@app.command()
@handled
def validate(
    services: Services = None,
    schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False,
) -> None:
    """Check the migration tree offline: names, numbering, up/down pairs, encoding."""
    trees = api.validate(make_settings(schemas_dir=schemas_dir), services)
    for service, tree in trees.items():
        render.line(f"{service}: {len(tree)} migrations, tree is valid")


@app.command()
@handled
def new(
    service: Annotated[str, typer.Argument(help="The service folder under schemas/.")],
    name: Annotated[str, typer.Argument(help="What the migration does, e.g. add_user_bio_column.")],
    schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False,
) -> None:
    """Write the next numbered up/down migration pair of a service."""
    up, down = api.new_migration(make_settings(schemas_dir=schemas_dir), service, name)
    render.line(f"created {up}\ncreated {down}")


@app.command()
@handled
def repair(
    services: Services = None, yes: Yes = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, lock_timeout: LockTimeout = 60.0, traceback: Traceback = False,
) -> None:
    """Accept intended edits of applied migrations by recording their current checksums."""
    settings = _settings(env, schemas_dir, dsn, wait, lock_timeout)
    _confirm_prod(settings, yes, "repair")
    accepted = api.repair(settings, services)
    for service, m in accepted:
        render.line(f"{service}: accepted the current {m.id} files")
    if not accepted:
        render.line("nothing to repair: every applied migration matches its files")


@app.command()
@handled
def triggers(
    services: Services = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change; change nothing.")] = False,
    yes: Yes = False, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Give every table with an updated_at column its update_<table>_updated_at trigger; drop stale ones.

    migrate and rollback run this at their end; run it by hand after changing a schema outside dbtool.
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    if not dry_run:
        _confirm_prod(settings, yes, "sync triggers in")
    events = api.Events() if json else render.trigger_progress()
    results = api.sync_triggers(settings, services, dry_run=dry_run, events=events)
    render.triggers(results, json)


@app.command()
@handled
def seed(
    services: Services = None,
    scale: Annotated[Optional[int], typer.Option(
        "--scale", help=f"Load deterministic synthetic data instead: 1 is small, {seeding.MAX_SCALE} puts"
                        " 1,000,000 rows in courses.")] = None,
    json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Load development rows from schemas/<service>/seeds/*.sql, or synthetic data with --scale.

    The services a seeded service's soft references point at are seeded first. Every database must
    be migrated (exit 4 otherwise); prod is refused (exit 4); running it twice adds nothing.
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    with render.seed_progress(json) as events:
        report = seeding.seed(settings, services, scale=scale, events=events, redis_cache=True)
    for note in [] if json else report.notes:  # Redis: the context cache fill
        render.line(note)
    render.seed_summary(report, json)


@app.command("check-references")
@handled
def check_references(
    services: Services = None, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Report soft references that point at no row of the other service's database. Exit 1 when any.

    The references are declared in schemas/<service>/references.toml; a copied column (a
    denormalised name) that no longer matches the row it points at is reported too, and so are
    Redis keys whose ids point at no row (references in schemas/<service>/redis.toml).
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    reports = references.check(settings, services)
    from . import render_redis  # Redis: the ids in declared keys point at rows too (dbtool/redis/audit.py)
    from .redis import audit as keys_audit

    key_refs = keys_audit.check_references(settings, services)
    render_redis.references(reports, key_refs, json)
    if any(not r.clean for r in reports) or any(k.dangling for k in key_refs):
        raise typer.Exit(int(ExitCode.FINDINGS))


@app.command("audit-indexes")
@handled
def audit_indexes(
    services: Services = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 when a finding reaches this level: error, warning or info (default: never).",
        show_default=False)] = None,
    min_size: Annotated[str, typer.Option(
        "--min-size", help="Report unused indexes only from this size on: bytes, or e.g. 8kB, 1MB.")] = "0",
    json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Report unused, duplicate, redundant and invalid indexes, foreign keys without an index, and
    tables read by sequential scans, each with the SQL that fixes it. Changes nothing.

    With --dsn and no SERVICE it audits any database, every user schema. Silence a finding in
    schemas/<service>/dbtool.toml with [[audit.silence]] index = "..." and reason = "...".
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    results = index_audit.audit(settings, services, min_size=min_size, fail_on=fail_on)
    render.audit(results, json)
    if index_audit.reaches(results, fail_on):
        raise typer.Exit(int(ExitCode.FINDINGS))


@app.command()
@handled
def lint(
    paths: Annotated[Optional[list[Path]], typer.Argument(
        help="Service folders, migration files or folders of .sql files; none means every service under schemas/.",
        show_default=False)] = None,
    output_format: Annotated[str, typer.Option(
        "--format", help="text, json, or github (workflow annotations on the pull request).")] = "text",
    json: Json = False,
    schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False,
) -> None:
    """Check migrations offline: naming, types, constraints, timestamps, locking safety, down files.

    Exit 1 on any error-level finding. '-- dbtool: ignore RULE reason' on the line before a statement
    silences one rule for it.
    """
    fmt = linting.output_format(output_format, json)
    report = linting.lint(make_settings(schemas_dir=schemas_dir), paths)
    render.lint(report, fmt)
    if report.errors:
        raise typer.Exit(int(ExitCode.FINDINGS))


# ---------------------------------------------------------------- schema dump | check, verify

schema_app = typer.Typer(help="The schema a service's migrations build, kept in schemas/<service>/schema.sql.",
                         no_args_is_help=True)
app.add_typer(schema_app, name="schema")
ScratchDsn = Annotated[Optional[str], typer.Option(
    "--scratch-dsn", envvar="DBTOOL_SCRATCH_DSN", show_envvar=True,
    help="Admin URL of a server to build scratch databases on (default: each service's own server;"
         " required with --env prod).")]


@schema_app.command("dump")
@handled
def schema_dump(
    services: Services = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Dump the service's own database (it must be fully migrated) instead of what the"
                       " migrations build on a scratch database.")] = False,
    scratch_dsn: ScratchDsn = None, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Write schemas/<service>/schema.sql: what the migrations build, as pg_dump writes it, minus volatile lines.

    Run it after adding or changing a migration, and commit the file.
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    render.schema_dump(schemas.dump(settings, services, live, scratch_dsn), json)


@schema_app.command("check")
@handled
def schema_check(
    services: Services = None, scratch_dsn: ScratchDsn = None, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """Rebuild each service from its migrations on a scratch database; compare with schema.sql and the live database.

    Exit 1 when schema.sql is stale or the live database drifted (each object named).
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    results = schemas.check(settings, services, scratch_dsn)
    render.schema_check(results, json)
    if not all(r.clean for r in results):
        raise typer.Exit(int(ExitCode.FINDINGS))


@app.command()
@handled
def verify(
    services: Services = None, scratch_dsn: ScratchDsn = None, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """On scratch databases: migrate, roll back, migrate again; compare with schema.sql; run triggers and seeds.

    Each check is a line, ok or FAILED with the reason; exit 1 when any fails. The service's own
    database is never touched.
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    report = verifying.verify(settings, services, scratch_dsn, events=render.verify_progress(json))
    render.verify_summary(report, json)
    if not report.ok:
        raise typer.Exit(int(ExitCode.FINDINGS))


@app.command()
@handled
def explain(
    services: Services = None,
    query: Annotated[Optional[list[str]], typer.Option(
        "--query", help="Explain only this key query (file stem under queries/); repeat for more.")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", help="Also write a Markdown report with every plan to this file.")] = None,
    timeout: Annotated[float, typer.Option(
        "--timeout", help="Seconds each query may run before it is cancelled.")] = explaining.DEFAULT_TIMEOUT,
    large_rows: Annotated[int, typer.Option(
        "--large-rows", help="Warn about a sequential scan on a table, or a filter discarding, this many rows or more.")
    ] = explaining.DEFAULT_LARGE_ROWS,
    json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), dsn: Dsn = None,
    wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """EXPLAIN ANALYZE each key query of schemas/<service>/queries/; exit 1 when a budget is broken.

    Every query runs in a READ ONLY transaction with a statement timeout and is rolled back, so
    nothing changes. Reports time, the plan's scans, estimated vs actual rows, buffers and warnings.
    """
    settings = _settings(env, schemas_dir, dsn, wait)
    explaining.check_output(output)
    results = explaining.explain(settings, services, names=query, timeout=timeout, large_rows=large_rows)
    render.explain(results, json)
    if output is not None:
        output.write_text(render.explain_markdown(results), encoding="utf-8")
    if explaining.any_broken(results):
        raise typer.Exit(int(ExitCode.FINDINGS))


def _data_dir(schemas_dir: Path) -> Path:
    return make_settings(schemas_dir=schemas_dir).embedded_dir


@server_app.command("start")
@handled
def server_start(schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False) -> None:
    """Start the embedded server (data under .dbtool/) and leave it running."""
    conninfo = embedded.start(_data_dir(schemas_dir))
    render.line(f"embedded server running: {conninfo}")


@server_app.command("stop")
@handled
def server_stop(schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False) -> None:
    """Stop the embedded servers (PostgreSQL and Redis); the PostgreSQL data stays under .dbtool/."""
    stopped = embedded.stop(_data_dir(schemas_dir))
    render.line("embedded server stopped" if stopped else "embedded server was not running")
    from .redis import locate as redis_locate  # Redis: the embedded one stops with PostgreSQL

    redis_stopped = redis_locate.stop(_data_dir(schemas_dir) / "redis")
    render.line("embedded Redis stopped" if redis_stopped else "embedded Redis was not running")


@server_app.command("status")
@handled
def server_status(schemas_dir: SchemasDir = Path("schemas"), json: Json = False,
                  traceback: Traceback = False) -> None:
    """Say whether the embedded servers (PostgreSQL, Redis) run, and where. Exit 1 when PostgreSQL does not."""
    data_dir = _data_dir(schemas_dir)
    conninfo = embedded.running_conninfo(data_dir)
    from . import render_redis  # Redis: both embedded servers are shown
    from .redis import locate as redis_locate

    render_redis.server_status(data_dir, conninfo, redis_locate.running_url(data_dir / "redis"), json)
    if conninfo is None:
        raise typer.Exit(int(ExitCode.FINDINGS))


@server_app.command("url")
@handled
def server_url(schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False) -> None:
    """Print the embedded server's connection string (starting it if needed), for psql or an app."""
    typer.echo(embedded.start(_data_dir(schemas_dir)))


# ---------------------------------------------------------------- redis audit | url (dbtool/redis/)

redis_app = typer.Typer(help="Redis: the keys each service declares in schemas/<service>/redis.toml.",
                        no_args_is_help=True)
app.add_typer(redis_app, name="redis")
RedisUrl = Annotated[Optional[str], typer.Option(
    "--redis-url", help="Redis URL (redis://[:password@]host:port/db or unix:///path); default: <SERVICE>_REDIS_URL,"
                        " REDIS_URL, REDIS_HOST/REDIS_PORT, else the embedded Redis in dev and test.",
    show_default=False)]


@redis_app.command("audit")
@handled
def redis_audit(
    services: Services = None,
    fail_on: Annotated[Optional[str], typer.Option(
        "--fail-on", help="Exit 1 when a finding reaches this level: error, warning or info (default: never).",
        show_default=False)] = None,
    sample: Annotated[Optional[int], typer.Option(
        "--sample", help="Check the value, size and references of at most N keys per pattern (TTL and type of"
                         " every key are checked).", show_default=False)] = None,
    redis_url: RedisUrl = None, json: Json = False,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), wait: Wait = 0.0, traceback: Traceback = False,
) -> None:
    """SCAN the keyspace against the declared keys: stray keys, missing or too long TTLs, wrong types
    and JSON shapes, keys over their size limit, and ids pointing at no database row. Changes nothing.
    """
    from . import render_redis
    from .redis import audit as keys_audit

    settings = _settings(env, schemas_dir, None, wait)
    results = keys_audit.audit(settings, services, redis_url=redis_url, fail_on=fail_on, sample=sample)
    render_redis.audit(results, json)
    if keys_audit.reaches(results, fail_on):
        raise typer.Exit(int(ExitCode.FINDINGS))


@redis_app.command("url")
@handled
def redis_url_command(
    service: Annotated[Optional[str], typer.Argument(help="The service whose Redis to name (default: REDIS_URL's).",
                                                     show_default=False)] = None,
    show_password: Annotated[bool, typer.Option("--show-password", help="Print the password instead of ***.")] = False,
    redis_url: RedisUrl = None,
    env: Env = "dev", schemas_dir: SchemasDir = Path("schemas"), traceback: Traceback = False,
) -> None:
    """Print the Redis URL (starting the embedded Redis if that is the one), for redis-cli -u or an app.

    For the embedded Redis it is a unix:// URL: redis-cli -s takes the path after unix://.
    """
    from .config import select_services
    from .redis import locate as redis_locate

    settings = _settings(env, schemas_dir, None, 0.0)
    if service is not None:
        select_services(settings, [service])
    url = redis_locate.url_of(redis_locate.resolve(settings, service, redis_url), settings)
    typer.echo(url if show_password else redis_locate.mask(url))


def main() -> None:
    app()

"""`dbtool baseline`: adopt a live database without rebuilding it.

Its schema, as `schema dump` writes one, becomes the service's first migration, marked
irreversible, and is recorded as applied in that database with its checksum. From then on the
database is managed like any other: `status` is clean there, and `migrate` of the same folder into
an empty database builds the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import server
from ..config import Settings, select_services
from ..databases import require_database
from ..errors import Refused
from ..migrate.state import read_state
from ..migrate.tree import load_tree, parse_file_name
from ..migrate.triggers import Change, plan, trigger_policy
from .dump import pg_dump

NAME = "001_baseline"
DOWN = ("-- dbtool: irreversible the baseline is the database as it was adopted; there is nothing before"
        " it to go back to\n")


@dataclass
class BaselineResult:
    service: str
    where: str
    up: Path
    down: Path
    objects: int  # schema objects in the file
    triggers: list[Change] = field(default_factory=list)  # what the next migrate's trigger sync would add


def baseline(settings: Settings, service: str) -> BaselineResult:
    """Write schemas/<service>/001_baseline.sql from the live schema and record it as applied there."""
    from ..config import secrets
    from ..migrate.tracking import advisory_lock, record_applied, tracking

    select_services(settings, [service])
    folder = settings.schemas_dir / service
    existing = [p.name for p in folder.glob("*.sql") if parse_file_name(p.name)]
    if existing:
        raise Refused(f"{folder}: already has migrations ({sorted(existing)[0]}, ...); baseline adopts a"
                      " database into a service folder with none")
    conninfo, where = require_database(settings, service)
    with server.connect(conninfo, wait=settings.wait) as conn:
        recorded = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()[0]
        if recorded and conn.execute("SELECT EXISTS (SELECT 1 FROM _yoyo_migration)").fetchone()[0]:
            raise Refused(f"{service}: {conn.info.dbname} already records applied migrations; it is managed"
                          " already, see 'dbtool status'")
        text = pg_dump(conninfo, settings.environ, secrets(settings))
        objects = text.count("\n-- Name: ") + text.startswith("--\n-- Name: ")
        up, down = folder / f"{NAME}.sql", folder / f"{NAME}.down.sql"
        up.write_text(f"-- {service}: the schema of {conn.info.dbname} as dbtool baseline adopted it.\n\n"
                      + text, encoding="utf-8")
        down.write_text(DOWN, encoding="utf-8")
        try:
            tree = load_tree(folder)
            with advisory_lock(conn, settings.lock_timeout, service):
                backend = tracking(conn)
                with backend.transaction():
                    record_applied(backend, tree[0])
                assert not read_state(conn, tree).pending
        except BaseException:
            up.unlink(missing_ok=True)  # nothing recorded: leave the folder as it was
            down.unlink(missing_ok=True)
            raise
        # Shown, not done: in an adopted schema updated_at may mean something the triggers would change.
        changes = plan(conn, trigger_policy(settings.schemas_dir, service)).changes
    return BaselineResult(service, where, up, down, objects, changes)

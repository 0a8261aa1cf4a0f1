"""Run the core commands a report shows and keep their results as the JSON documents --json prints,
so the page shows exactly what the commands report, computed once.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ..config import Settings, select_services
from ..errors import BadInput
from ..inspect.queries import QUERIES_DIR, load_queries


def collect(settings: Settings, services: list[str] | None, drift: bool = False, scratch_dsn: str | None = None,
            timeout: float = 30.0, large_rows: int = 10_000) -> dict:
    """Every section of the report, as data. Bad input is found before any database is touched."""
    from ..inspect.audit import audit
    from ..inspect.explain import explain
    from ..lint.run import lint
    from ..migrate.commands import status
    from ..render.audit import audit_data
    from ..render.explain import explain_data
    from ..render.migrate import status_data

    chosen = select_services(settings, services)
    for service in chosen:
        if not load_queries(settings, service):
            raise BadInput(f"{settings.schemas_dir / service / QUERIES_DIR}: {service} has no key queries to"
                           f" report on; add one SELECT a file there, or leave {service} out")
    data = {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "env": settings.env,
        "services": chosen,
        "status": status_data(status(settings, chosen)),
        "explain": explain_data(explain(settings, chosen, timeout=timeout, large_rows=large_rows)),
        "audit": audit_data(audit(settings, chosen)),
        "lint": {s: [f.as_dict() for f in lint(settings, [settings.schemas_dir / s]).findings] for s in chosen},
        "drift": None,
    }
    if drift:
        from ..render.schemafile import schema_check_data
        from ..schemafile.commands import check

        data["drift"] = schema_check_data(check(settings, chosen, scratch_dsn))
    return data

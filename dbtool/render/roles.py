"""`dbtool roles`: the statements run (or that would run), the drift found, or that nothing changes."""

from __future__ import annotations

from ..roles.commands import RolesResult
from .console import emit_json, line


def roles(results: list[RolesResult], as_json: bool, check: bool) -> None:
    if as_json:
        emit_json([{
            "service": r.service,
            "database": r.where,
            "roles": {"owner": r.names.owner, "app": r.names.app, "readonly": r.names.readonly},
            "applied": r.applied,
            "statements": [s.sql for s in r.plan.steps],
            "notes": r.plan.notes,
            "findings": [{"kind": f.kind, "message": f.message} for f in r.findings],
        } for r in results])
        return
    for r in results:
        line(f"{r.service}: {r.where}")
        for finding in r.findings:
            line(f"  drift: {finding.message}")
        prefix = "  " if r.applied else "  would run: "
        for step in r.plan.steps:
            line(f"{prefix}{step.sql}")
        if not r.plan.steps and not r.findings:
            line(f"  up to date: {r.names.owner}, {r.names.app}, {r.names.readonly}")
        for note in r.plan.notes:
            line(f"  note: {note}")
    changes = sum(len(r.plan.steps) for r in results)
    services = f"{len(results)} service{'s' if len(results) != 1 else ''}"
    if check:
        findings = sum(len(r.findings) for r in results)
        line(f"{findings} drift finding{'s' if findings != 1 else ''} and {changes} pending change"
             f"{'s' if changes != 1 else ''} in {services}" if findings or changes else f"no drift in {services}")
        return
    verb = "made" if all(r.applied for r in results) else "would make"
    line(f"{verb} {changes} change{'s' if changes != 1 else ''} in {services}" if changes
         else f"nothing to change in {services}")

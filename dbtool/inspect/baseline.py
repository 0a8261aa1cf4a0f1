"""Explain baselines: each key query's plan shape and figures saved to a file, and a later run
compared with it, so a CI job catches a plan that changed shape or a query that got slower.

The shape is the plan's nodes in order, indented by depth, each with its index and table: node types,
indexes and join order in one list of strings that reads well in a diff of the committed file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..errors import BadInput
from .plans import plan_nodes

FORMAT = "dbtool explain baseline"
VERSION = 1
NOISE_MS = 1.0  # a slowdown smaller than this is timing noise, whatever the factor
DEFAULT_FACTOR = 2.0


def explain_against(settings, services: list[str] | None, baseline: Path | None, save: Path | None,
                    factor: float = DEFAULT_FACTOR, **options) -> list:
    """`dbtool explain` with its baseline options: the baseline is read and the save path checked
    before any query runs; the new baseline is written whole or not at all."""
    from ..render.outfile import check_output, write_atomically
    from .explain import explain

    check_factor(factor)
    before = load(baseline) if baseline is not None else None
    check_output(save, "--save-baseline", "baseline.json")
    results = explain(settings, services, **options)
    if before is not None:
        compare(before, results, factor)
    if save is not None:
        write_atomically(save, json.dumps(capture(results), indent=2) + "\n")
    return results


def shape(plan: dict) -> list[str]:
    return ["  " * n.depth + n.label() for n in plan_nodes(plan)] if plan else []


def capture(results: list) -> dict:
    """The baseline document of an explain run (the core's ServiceExplain list)."""
    queries = {}
    for s in results:
        for r in s.reports:
            if r.error:
                continue  # a query that did not finish has no shape worth keeping
            queries[f"{s.service}/{r.query.name}"] = {
                "shape": shape(r.plan), "execution_ms": round(r.execution_ms, 3),
                "planning_ms": round(r.planning_ms, 3), "actual_rows": r.actual_rows,
                "shared_hit": r.shared_hit, "shared_read": r.shared_read,
            }
    return {"format": FORMAT, "version": VERSION, "queries": queries}


def load(path: Path) -> dict:
    """Read a baseline file; anything else is bad input naming the file and the fix."""
    fix = f"write one with 'dbtool explain --save-baseline {path}'"
    if path.is_dir():
        raise BadInput(f"--baseline {path}: is a folder, not a baseline file; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"--baseline {path}: no such file; {fix}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadInput(f"--baseline {path}: not a dbtool explain baseline (not JSON); {fix}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("queries"), dict):
        raise BadInput(f"--baseline {path}: not a dbtool explain baseline; {fix}")
    if data.get("version") != VERSION:
        raise BadInput(f"--baseline {path}: baseline version {data.get('version')!r}, this dbtool reads"
                       f" {VERSION}; {fix}")
    return data


def check_factor(factor: float) -> None:
    if not factor > 1.0:
        raise BadInput(f"--slower {factor:g}: give a factor above 1, e.g. --slower 2")


def compare(baseline: dict, results: list, factor: float = DEFAULT_FACTOR) -> None:
    """Set each report's `regressions` (and `baseline_ms`) against the baseline; queries it does
    not hold are left alone."""
    for s in results:
        for r in s.reports:
            before = baseline["queries"].get(f"{s.service}/{r.query.name}")
            if before is None or r.error:
                continue
            r.baseline_ms = float(before.get("execution_ms", 0.0))
            r.regressions = changes(before.get("shape", []), shape(r.plan))
            slower = r.execution_ms - r.baseline_ms
            if r.execution_ms > factor * r.baseline_ms and slower >= NOISE_MS:
                r.regressions.append(f"took {r.execution_ms:.2f} ms, {r.execution_ms / max(r.baseline_ms, 1e-3):.1f}x"
                                     f" its baseline {r.baseline_ms:.2f} ms (more than {factor:g}x)")


def changes(before: list[str], after: list[str]) -> list[str]:
    """What changed between two shapes, said the way a reviewer would: scans that changed, nodes
    that came or went, else the join order."""
    if before == after:
        return []
    found = []
    old_scans, new_scans = _scans(before), _scans(after)
    for table in sorted(set(old_scans) | set(new_scans)):
        was, now = old_scans.get(table, []), new_scans.get(table, [])
        if was != now:
            found.append(f"{table}: {', '.join(was) or 'not read'} became {', '.join(now) or 'not read'}")
    old_kinds, new_kinds = Counter(_kind(s) for s in before), Counter(_kind(s) for s in after)
    scans = {k for k in old_kinds | new_kinds if " on " in k or "Scan" in k}
    for kind in sorted((new_kinds - old_kinds).keys() - scans):
        found.append(f"new {kind} node")
    for kind in sorted((old_kinds - new_kinds).keys() - scans):
        found.append(f"{kind} node gone")
    if not found:
        found.append("plan shape changed (join order or nesting): "
                     f"{' > '.join(s.strip() for s in before)} became {' > '.join(s.strip() for s in after)}")
    return found


def _kind(line: str) -> str:
    return line.strip().split(" using ")[0].split(" on ")[0]


def _scans(lines: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for text in lines:
        text = text.strip()
        if " on " in text:
            what, table = text.rsplit(" on ", 1)
            found.setdefault(table, []).append(what)
    return found

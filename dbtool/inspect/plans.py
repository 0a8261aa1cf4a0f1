"""EXPLAIN (FORMAT JSON) plans: the node walk, one-line summaries, and the warnings a plan earns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

DEEP_OFFSET = 1_000  # rows skipped by a Limit before it is a deep OFFSET


MISESTIMATE = 10.0  # estimated vs actual rows, either way


@dataclass
class PlanNode:
    depth: int
    node_type: str  # as EXPLAIN's text format names it: "Index Scan Backward", "Parallel Seq Scan"
    relation: str | None
    index: str | None
    plan_rows: float
    actual_rows: float  # per loop, like plan_rows
    loops: int
    total_ms: float
    details: list[str] = field(default_factory=list)
    under_limit: bool = False  # below a Limit that got its rows, so it may have stopped early
    removed: float = 0.0  # rows its filter read and discarded, over all loops

    @property
    def is_seq_scan(self) -> bool:
        return self.node_type.endswith("Seq Scan")

    def label(self) -> str:
        on = f" using {self.index}" if self.index else ""
        return f"{self.node_type}{on}{f' on {self.relation}' if self.relation else ''}"


_DETAILS = ("Index Cond", "Recheck Cond", "Filter", "Rows Removed by Filter", "Sort Key", "Sort Method",
            "Sort Space Used", "Sort Space Type", "Hash Batches", "Join Filter", "Heap Fetches")


def plan_nodes(plan: dict, depth: int = 0, under_limit: bool = False) -> Iterator[PlanNode]:
    kind = plan["Node Type"]
    if plan.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    if plan.get("Scan Direction") == "Backward":
        kind += " Backward"
    details = [f"{key}: {', '.join(map(str, plan[key])) if isinstance(plan[key], list) else plan[key]}"
               for key in _DETAILS if key in plan]
    yield PlanNode(
        depth=depth, node_type=kind, relation=plan.get("Relation Name"), index=plan.get("Index Name"),
        plan_rows=float(plan.get("Plan Rows", 0)), actual_rows=float(plan.get("Actual Rows", 0)),
        loops=int(plan.get("Actual Loops", 0)), total_ms=float(plan.get("Actual Total Time", 0)),
        details=details, under_limit=under_limit,
        removed=float(plan.get("Rows Removed by Filter", 0)) * max(int(plan.get("Actual Loops", 1)), 1),
    )
    # A Limit that returned fewer rows than asked ran its input to the end: nothing below stopped early.
    stops = plan["Node Type"] == "Limit" and float(plan.get("Actual Rows", 0)) >= float(plan.get("Plan Rows", 0))
    for child in plan.get("Plans", []):
        yield from plan_nodes(child, depth + 1, under_limit or stops)


def scan_summary(plan: dict) -> list[str]:
    """Each scan of the plan in short, once: `Index Scan idx_courses_live_created_at_id`, `Seq Scan courses`."""
    seen: list[str] = []
    for node in plan_nodes(plan):
        # A bitmap heap scan is named by the bitmap index scan under it.
        if (node.relation or node.index) and not node.node_type.endswith("Bitmap Heap Scan"):
            short = f"{node.node_type} {node.index or node.relation}"
            if short not in seen:
                seen.append(short)
    return seen


def plan_lines(plan: dict) -> list[str]:
    """The plan as an indented tree, EXPLAIN's text format in short, for the Markdown report."""
    lines = []
    for node in plan_nodes(plan):
        pad = "  " * node.depth + ("-> " if node.depth else "")
        lines.append(f"{pad}{node.label()}  (rows est {node.plan_rows:,.0f}, actual {node.actual_rows:,.0f}"
                     f" x {node.loops} loop{'s' if node.loops != 1 else ''}, {node.total_ms:.3f} ms)")
        lines += [f"{'  ' * node.depth}     {d}" for d in node.details]
    return lines


def plan_warnings(plan: dict, large_rows: int, sizes: dict[str, float]) -> list[str]:
    """Plain findings on a plan: big sequential scans, misestimates, spills, deep OFFSETs."""
    found = []
    for node, raw in zip(plan_nodes(plan), _raw_nodes(plan)):
        rows = sizes.get(node.relation or "", 0.0)
        if node.is_seq_scan and rows >= large_rows:
            found.append(f"sequential scan on {node.relation} ({rows:,.0f} rows): index the columns it filters on")
        if node.loops:
            est, act = max(node.plan_rows, 1.0), max(node.actual_rows, 1.0)
            # Under a Limit a node stops early by design: fewer rows than estimated is no misestimate.
            if max(est, act) / min(est, act) > MISESTIMATE and not (node.under_limit and act < est):
                found.append(f"{node.label()}: estimated {node.plan_rows:,.0f} rows, got {node.actual_rows:,.0f}"
                             f" ({max(est, act) / min(est, act):,.0f}x off); run ANALYZE, or raise the"
                             " statistics target of the columns it filters on")
        if node.removed >= large_rows:
            found.append(f"{node.label()}: read and discarded {node.removed:,.0f} rows with its filter;"
                         " index the filtered columns (or expression) so fewer rows are read")
        if raw.get("Sort Space Type") == "Disk":
            found.append(f"sort spilled to disk ({raw.get('Sort Space Used', '?')} kB): raise work_mem"
                         " or read the rows in order from an index")
        if int(raw.get("Hash Batches", 1)) > 1:
            found.append(f"hash spilled to disk in {raw['Hash Batches']} batches: raise work_mem")
        if raw["Node Type"] == "Limit" and raw.get("Plans") and node.loops:
            child = raw["Plans"][0]
            skipped = float(child.get("Actual Rows", 0)) * int(child.get("Actual Loops", 1)) - \
                node.actual_rows * node.loops
            if skipped > DEEP_OFFSET:
                found.append(f"deep OFFSET: {skipped:,.0f} rows read and thrown away before the page;"
                             " use keyset pagination (WHERE (created_at, id) < (:last...))")
    return found


def _raw_nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _raw_nodes(child)

"""One EXPLAIN (ANALYZE, FORMAT JSON) plan drawn as an inline SVG icicle.

The root spans the full width; each child gets the share of its parent's width that its total time
is of the parent's, so a wide box is where the time went. The fill is the node's own time (its total
less its children's) as a share of the query's: pale is cheap, deep red is the hot spot. A node
whose row estimate is more than 10x off its actual rows has a dashed purple border and a "!" mark.
Hover shows the details (an SVG <title>); a click puts them under the picture (page.py's script).
Drawn here rather than with a vendored viewer: no code to vendor or keep up to date, no network,
and the picture is built from the same plan JSON `explain --json` prints.
"""

from __future__ import annotations

from html import escape

from ..inspect.plans import MISESTIMATE

WIDTH = 960
ROW = 40
MIN_BOX = 8  # pixels: a node that took no measurable time still gets a box to hover
CHAR = 6.6  # average pixels of one character of the 12px label font


def total_ms(node: dict) -> float:
    return float(node.get("Actual Total Time", 0.0)) * max(int(node.get("Actual Loops", 1)), 1)


def self_ms(node: dict) -> float:
    return max(total_ms(node) - sum(total_ms(c) for c in node.get("Plans", [])), 0.0)


def misestimate(node: dict) -> float:
    """How many times the estimate was off (1.0 when right; 0 when the node never ran)."""
    if not node.get("Actual Loops"):
        return 0.0
    est, act = max(float(node.get("Plan Rows", 0)), 1.0), max(float(node.get("Actual Rows", 0)), 1.0)
    return max(est, act) / min(est, act)


def title(node: dict) -> str:
    kind = node["Node Type"]
    if node.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    if node.get("Scan Direction") == "Backward":
        kind += " Backward"
    target = node.get("Index Name") or node.get("Relation Name")
    return f"{kind} {target}" if target else kind


def details(node: dict, query_ms: float) -> str:
    rows = [title(node),
            f"time: {total_ms(node):.3f} ms total, {self_ms(node):.3f} ms own"
            f" ({100 * self_ms(node) / query_ms:.0f}% of the query)" if query_ms else "time: not measured",
            f"rows: estimated {float(node.get('Plan Rows', 0)):,.0f}, actual {float(node.get('Actual Rows', 0)):,.0f}"
            f" x {int(node.get('Actual Loops', 0))} loop(s)"]
    off = misestimate(node)
    if off > MISESTIMATE:
        rows.append(f"estimate {off:,.0f}x off")
    for key in ("Relation Name", "Index Name", "Index Cond", "Recheck Cond", "Filter", "Rows Removed by Filter",
                "Join Filter", "Hash Cond", "Merge Cond", "Sort Key", "Sort Method", "Heap Fetches",
                "Shared Hit Blocks", "Shared Read Blocks"):
        if key in node:
            value = node[key]
            rows.append(f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
    return "\n".join(rows)


def _depth(node: dict) -> int:
    return 1 + max((_depth(c) for c in node.get("Plans", [])), default=0)


def _fill(share: float) -> str:
    # From pale yellow (no own time) to deep red (all of it).
    share = min(max(share, 0.0), 1.0)
    start, end = (255, 247, 204), (200, 30, 30)
    return "#" + "".join(f"{round(a + (b - a) * share):02x}" for a, b in zip(start, end))


def plan_svg(plan: dict, label: str) -> str:
    """The <svg> element of one plan; `label` names it for screen readers and tests."""
    if not plan:
        return ""
    query_ms = total_ms(plan)
    boxes: list[str] = []
    _draw(plan, 0.0, float(WIDTH), 0, query_ms, boxes)
    height = _depth(plan) * ROW
    return (f'<svg class="plan" role="img" aria-label="{escape(label)}" viewBox="0 0 {WIDTH} {height}"'
            f' width="100%" preserveAspectRatio="xMinYMin meet">{"".join(boxes)}</svg>')


def _draw(node: dict, x: float, width: float, depth: int, query_ms: float, boxes: list[str]) -> None:
    y = depth * ROW
    share = self_ms(node) / query_ms if query_ms else 0.0
    off = misestimate(node) > MISESTIMATE
    text = title(node) + (" !" if off else "")
    room = int((width - 8) / CHAR)
    shown = text if len(text) <= room else (text[: max(room - 1, 0)] + "…" if room > 1 else "")
    border = ' stroke="#7b2cbf" stroke-width="3" stroke-dasharray="6 3"' if off else ' stroke="#555" stroke-width="1"'
    info = details(node, query_ms)
    boxes.append(
        f'<g class="node{" misestimate" if off else ""}" data-detail="{escape(info)}" tabindex="0">'
        f"<title>{escape(info)}</title>"
        f'<rect x="{x + 1:.1f}" y="{y + 1}" width="{max(width - 2, 1):.1f}" height="{ROW - 2}" rx="3"'
        f' fill="{_fill(share)}"{border}/>'
        f'<text x="{x + 5:.1f}" y="{y + 17}" font-size="12">{escape(shown)}</text>'
        f'<text x="{x + 5:.1f}" y="{y + 32}" font-size="10" fill="#333">'
        f"{escape(_figures(node, width))}</text></g>")
    children = node.get("Plans", [])
    if not children:
        return
    # Children divide the parent's width by their total times; what is left over is the parent's own time.
    whole = max(total_ms(node), sum(total_ms(c) for c in children), 1e-9)
    widths = [max(width * total_ms(c) / whole, MIN_BOX) for c in children]
    if sum(widths) > width:
        widths = [w * width / sum(widths) for w in widths]
    at = x
    for child, w in zip(children, widths):
        _draw(child, at, w, depth + 1, query_ms, boxes)
        at += w


def _figures(node: dict, width: float) -> str:
    text = f"{total_ms(node):.2f} ms, {float(node.get('Actual Rows', 0)):,.0f} of est {float(node.get('Plan Rows', 0)):,.0f} rows"
    room = int((width - 8) / (CHAR * 0.85))
    return text if len(text) <= room else ""

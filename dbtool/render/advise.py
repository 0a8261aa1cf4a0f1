"""What `dbtool advise` prints: per query the cost and plan before and after, then each index to add.
"""

from __future__ import annotations

import textwrap

from rich.text import Text

from .console import emit_json, out
from .console import line as _line

WIDTH = 80


def line(text: str, indent: str = "      ") -> None:
    """Prose wrapped to 80 columns; the SQL is printed apart, unwrapped, to be copied as it is."""
    _line(textwrap.fill(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False))


def advise_data(results: list) -> list[dict]:
    data = []
    for s in results:
        by_name = {q.query.name: q for q in s.queries}
        suggestions = []
        for suggestion in s.suggestions:
            for name in suggestion.queries:
                q = by_name[name]
                suggestions.append({
                    "query": name, "index": suggestion.name, "index_sql": suggestion.index_sql,
                    "cost_before": q.before.cost, "cost_after": q.after.cost, "gain_pct": round(q.gain, 1),
                    "plan_before": q.before.plan, "plan_after": q.after.plan,
                    "shape_before": q.before.shape, "shape_after": q.after.shape,
                    "estimated_size_bytes": suggestion.size_bytes, "indexes_after": suggestion.indexes_after,
                })
        data.append({
            "service": s.service, "database": s.where, "method": s.method,
            "queries": [{"query": q.query.name, "cost_before": q.before.cost,
                         "cost_after": q.after.cost if q.after else None,
                         "index": q.suggestion.name if q.suggestion else None, "note": q.note or None,
                         "candidates": q.tried, "seconds": round(q.seconds, 3)} for q in s.queries],
            "suggestions": suggestions,
            "written": s.written,
        })
    return data


def advise(results: list, as_json: bool) -> None:
    from ..inspect.audit import pretty_size

    if as_json:
        emit_json(advise_data(results))
        return
    for s in results:
        out.print(Text(s.service, "bold"))
        line(f"  database: {s.where}")
        line(f"  candidates priced by {s.method}")
        for q in s.queries:
            if q.after is None:
                line(f"  {q.query.name}: cost {q.before.cost:,.2f}; {q.note}")
                continue
            line(f"  {q.query.name}: cost {q.before.cost:,.2f} -> {q.after.cost:,.2f} (-{q.gain:.0f}%)"
                 f" with {_name(s, q)}")
            line(f"    before: {' > '.join(q.before.shape) or '-'}")
            line(f"    after:  {' > '.join(q.after.shape) or '-'}")
        for n, suggestion in enumerate(s.suggestions, 1):
            line(f"  index {n} for {', '.join(suggestion.queries)}:")
            out.print(Text(f"    {suggestion.index_sql}", "green"))
            line(f"    estimated size {pretty_size(suggestion.size_bytes)}; {suggestion.candidate.table} would"
                 f" have {suggestion.indexes_after} indexes to keep up on each write")
        for path in s.written:
            line(f"  wrote {path}")
        line(f"  {len(s.suggestions)} index(es) suggested for {len(s.queries)} key quer"
             f"{'y' if len(s.queries) == 1 else 'ies'}")


def _name(service, query) -> str:
    for suggestion in service.suggestions:
        if query.query.name in suggestion.queries:
            return suggestion.name
    return query.suggestion.name

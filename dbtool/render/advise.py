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


def _stats(query) -> dict:
    """What a statement from pg_stat_statements adds to a key query's fields."""
    if not hasattr(query, "queryid"):
        return {}
    return {"statement": query.text, "calls": query.calls, "total_exec_ms": round(query.total_exec_ms, 3)}


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
                    **_stats(q.query),
                })
        data.append({
            "service": s.service, "database": s.where, "method": s.method,
            "queries": [{"query": q.query.name, "cost_before": q.before.cost,
                         "cost_after": q.after.cost if q.after else None,
                         "index": q.suggestion.name if q.suggestion else None, "note": q.note or None,
                         "candidates": q.tried, "seconds": round(q.seconds, 3), **_stats(q.query)}
                        for q in s.queries],
            "suggestions": suggestions,
            "written": s.written,
            "stats_problem": s.stats_problem,
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
        stats = sum(1 for q in s.queries if _stats(q.query))
        if s.from_stats and not s.stats_problem:
            line(f"  from pg_stat_statements: the top {stats} SELECT(s) by total execution time,"
                 " priced by their generic plan")
        for q in s.queries:
            if q.after is None:
                line(f"  {q.query.name}: cost {q.before.cost:,.2f}; {q.note}")
            else:
                line(f"  {q.query.name}: cost {q.before.cost:,.2f} -> {q.after.cost:,.2f} (-{q.gain:.0f}%)"
                     f" with {_name(s, q)}")
            if _stats(q.query):
                line(f"    {_cut(q.query.description, WIDTH - 4)}")
                calls = q.query.calls
                line(f"    {calls:,} call{'' if calls == 1 else 's'}, {q.query.total_exec_ms:,.1f} ms in all")
            if q.after is not None:
                line(f"    before: {' > '.join(q.before.shape) or '-'}")
                line(f"    after:  {' > '.join(q.after.shape) or '-'}")
        for n, suggestion in enumerate(s.suggestions, 1):
            line(f"  index {n} for {', '.join(suggestion.queries)}:")
            out.print(Text(f"    {suggestion.index_sql}", "green"))
            line(f"    estimated size {pretty_size(suggestion.size_bytes)}; {suggestion.candidate.table} would"
                 f" have {suggestion.indexes_after} indexes to keep up on each write")
        for path in s.written:
            line(f"  wrote {path}")
        keys = len(s.queries) - stats
        line(f"  {len(s.suggestions)} index(es) suggested for {keys} key quer{'y' if keys == 1 else 'ies'}"
             + (f" and {stats} statement(s) from pg_stat_statements" if s.from_stats and not s.stats_problem else ""))


def _cut(text: str, width: int) -> str:
    # The statement's first line, on one line: the JSON has all of it.
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _name(service, query) -> str:
    for suggestion in service.suggestions:
        if query.query.name in suggestion.queries:
            return suggestion.name
    return query.suggestion.name

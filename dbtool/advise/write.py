"""--write: each suggestion as the service's next numbered migration pair, non-transactional and re-runnable.
"""

from __future__ import annotations

from ..config import Settings
from ..migrate.tree import new_migration


def migration_text(suggestion, queries: list) -> tuple[str, str]:
    """The up and down files of one suggestion: CONCURRENTLY needs `-- transactional: false`."""
    by_name = {q.query.name: q for q in queries}
    proof = "; ".join(f"{name}: cost {by_name[name].before.cost:,.2f} -> {by_name[name].after.cost:,.2f}"
                      for name in suggestion.queries if by_name[name].after is not None)
    # A statement from pg_stat_statements is named by its queryid only: its first line says which it is.
    stats = [by_name[n].query for n in suggestion.queries if hasattr(by_name[n].query, "queryid")]
    statements = "".join(f"-- {q.name} ({q.calls:,} calls, {q.total_exec_ms:,.0f} ms): {q.description}\n"
                         for q in stats)
    up = ("-- transactional: false\n"
          f"-- Suggested by dbtool advise for the {'key ' if not statements else ''}quer"
          f"{'y' if len(suggestion.queries) == 1 else 'ies'} {', '.join(suggestion.queries)}.\n"
          f"{statements}"
          f"-- Planner estimates, {proof}.\n"
          f"{suggestion.index_sql}\n")
    down = f"-- transactional: false\nDROP INDEX CONCURRENTLY IF EXISTS {suggestion.name};\n"
    return up, down


def write_suggestions(settings: Settings, result) -> list[str]:
    written = []
    for suggestion in result.suggestions:
        up, down = new_migration(settings, result.service, f"add_{suggestion.name}")
        up_text, down_text = migration_text(suggestion, result.queries)
        up.write_text(up_text, encoding="utf-8")
        down.write_text(down_text, encoding="utf-8")
        written += [str(up), str(down)]
    return written

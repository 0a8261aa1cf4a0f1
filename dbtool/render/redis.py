"""What the Redis commands print: `redis audit`, and Redis's part of `server status` and `check-references`.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path

from rich import box
from rich.table import Table
from rich.text import Text

from .console import line as _line
from .console import out

STYLES = {"error": "red", "warning": "yellow", "info": "cyan"}


def audit_data(results: list) -> list[dict]:
    return [
        {
            "redis": r.where,
            "services": r.services,
            "keys": r.keys,
            "seconds": round(r.seconds, 3),
            "round_trips": r.round_trips,
            "scan_batches": r.scan_batches,
            "inspect_calls": r.inspect_calls,
            "reference_queries": r.queries,
            "patterns": [{"service": p.service, "name": p.name, "pattern": p.pattern, "ttl": p.ttl, "keys": p.keys,
                          "checked": p.checked, "findings": p.findings} for p in r.patterns],
            "findings": [{"level": f.level, "kind": f.kind, "service": f.service, "pattern": f.pattern,
                          "count": f.count, "examples": f.examples, "detail": f.detail, "fix": f.fix}
                         for f in r.findings],
        }
        for r in results
    ]


def audit(results: list, as_json: bool) -> None:
    """Per Redis: keys per declared pattern, then each finding with its count, an example and the fix."""
    if as_json:
        print(jsonlib.dumps(audit_data(results), indent=2))
        return
    for r in results:
        out.print(Text.assemble(("redis", "bold"), f": {r.where}"))
        _line(f"  {r.keys:,} keys scanned in {r.seconds:.2f} s, {r.round_trips:,} round trips"
              f" ({r.scan_batches:,} SCAN batches, {r.inspect_calls:,} inspect calls)")
        rows = [(p.pattern, p.ttl, f"{p.keys:,}", f"{p.checked:,}", f"{p.findings:,}") for p in r.patterns]
        if r.stray:
            rows.append(("(no declared pattern)", "", f"{r.stray:,}", "", f"{r.stray:,}"))
        _patterns(rows)
        for n, f in enumerate(r.findings, 1):
            out.print(Text.assemble(f"  {n}. ", (f.level, STYLES[f.level]), f" {f.kind} ", (f.pattern, "bold"),
                                    f": {f.count:,} key(s), e.g. {f.examples[0]}: {f.detail}"))
            _line(f"     fix: {f.fix}")
        counts = ", ".join(f"{sum(1 for f in r.findings if f.level == level)} {level}" for level in ("error", "warning"))
        _line(f"  {len(r.findings)} finding(s): {counts}")


def _patterns(rows: list[tuple[str, ...]]) -> None:
    """Keys per pattern: a table on a terminal, aligned plain text when piped (no box characters)."""
    header = ("pattern", "ttl", "keys", "checked", "findings")
    if out.is_terminal:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
        for col in header:
            table.add_column(col, justify="left" if col == "pattern" else "right", overflow="fold")
        for row in rows:
            table.add_row(Text(row[0]), *row[1:])
        out.print(table)
        return
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        _line("  " + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def server_status(data_dir: Path, conninfo: str | None, redis_url: str | None, as_json: bool) -> None:
    """`dbtool server status` for both embedded servers: PostgreSQL, then Redis."""
    from .server import server_status as postgres_status

    if as_json:
        print(jsonlib.dumps({"data_dir": str(data_dir), "running": conninfo is not None, "conninfo": conninfo,
                             "redis": {"running": redis_url is not None, "url": redis_url,
                                       "data_dir": str(data_dir / "redis")}}, indent=2))
        return
    postgres_status(data_dir, conninfo, False)
    if redis_url:
        _line(f"embedded Redis running: {redis_url} (data in {data_dir / 'redis'})")
    else:
        _line(f"embedded Redis not running (data in {data_dir / 'redis'}); any command that needs it starts it")


def references(reports: list, key_refs: list, as_json: bool) -> None:
    """`check-references`: the soft references of the databases, then those of the Redis keys."""
    from .data import references as database_references
    from .data import references_data

    if as_json:
        data = references_data(reports) + [
            # The same shape as a column's reference: rows are the keys holding an id.
            {"service": k.service, "column": k.pattern, "redis_key": k.pattern,
             "points_at": k.reference.split(" -> ")[1], "rows": k.keys,
             "dangling": {"rows": k.dangling, "examples": k.examples}, "stale_copies": {}} for k in key_refs]
        print(jsonlib.dumps(data, indent=2))
        return
    database_references(reports, False)
    for k in key_refs:
        state = (f"{k.dangling:,} point at no row, e.g. {', '.join(k.examples)}" if k.dangling else "all point at rows")
        _line(f"redis {k.pattern}: {k.reference}: {k.keys:,} key(s) checked, {state}")
    if key_refs:
        bad = sum(1 for k in key_refs if k.dangling)
        _line(f"{len(key_refs)} Redis key reference(s) checked, {bad} with findings")

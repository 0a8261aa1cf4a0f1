"""How each key query's execution time grows with the data: `--scale` small against the largest.

Seeds two sets of service databases, one at --small-scale (default 1) and one at --large-scale
(default 5000: 1,000,000 courses), runs every key query --runs times through dbtool's explain core
(EXPLAIN ANALYZE, read-only, rolled back) and prints per query the median execution time on each
set and their ratio. A query served by an index grows little (ratio near 1 when the plan reads the
same few pages); a sequential scan or a deep OFFSET grows with the table.

    python benchmarks/explain_growth.py [--runs 5] [--small-scale 1] [--large-scale 5000]
    python benchmarks/explain_growth.py --large-dir .dbtool   # reuse an embedded server's dev databases
    python benchmarks/explain_growth.py --query course_search_rare --query course_list_count

Each query is also held to its `-- budget: max_ms` at the large scale and to the growth limit of
GROWTH_LIMITS (the catalogue's search and total), and a last column says whether it held.

Seeding the largest scale takes minutes; --small-dir / --large-dir reuse the migrated and seeded
`<service>_db_dev` databases of an embedded server's data folder instead. Otherwise it starts its own
embedded server in a temporary folder and drops it at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import SCHEMAS, SERVICES, fresh_db, scratch_server  # noqa: E402

from dbtool import config  # noqa: E402
from dbtool.data.seed import MAX_SCALE, seed  # noqa: E402
from dbtool.inspect.explain import explain  # noqa: E402
from dbtool.migrate.commands import migrate  # noqa: E402

# Largest ratio large/small a query may show: the catalogue issue's targets for search and the total.
GROWTH_LIMITS = {"course_search_common": 10.0, "course_search_rare": 10.0, "course_search_absent": 10.0,
                 "course_list_count": 3.0}


def seeded_settings(stack: ExitStack, data_dir: str | None, scale: int) -> config.Settings:
    if data_dir:
        return config.make_settings(SCHEMAS, environ={}, data_dir=Path(data_dir).resolve())
    admin = stack.enter_context(scratch_server())
    urls = {config.url_variable(s): fresh_db(admin, f"growth_{s}") for s in SERVICES}
    settings = config.make_settings(SCHEMAS, environ=urls)
    migrate(settings)
    print(f"seeding --scale {scale} ...", flush=True)
    seed(settings, scale=scale)
    return settings


def medians(settings: config.Settings, runs: int, names: list[str] | None
            ) -> dict[tuple[str, str], tuple[float, str, float | None]]:
    times: dict[tuple[str, str], list[float]] = {}
    shapes: dict[tuple[str, str], str] = {}
    budgets: dict[tuple[str, str], float | None] = {}
    services = sorted({s for s in SERVICES for q in names or [] if (SCHEMAS / s / "queries" / f"{q}.sql").exists()})
    explain(settings, services or None, names=names)  # a warm-up run: cold pages are not the query's cost
    for _ in range(runs):
        for service in explain(settings, services or None, names=names):
            for report in service.reports:
                key = (service.service, report.query.name)
                times.setdefault(key, []).append(report.execution_ms)
                shapes[key] = ", ".join(report.shape)
                budgets[key] = report.query.budget.max_ms
    return {key: (statistics.median(ms), shapes[key], budgets[key]) for key, ms in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--small-scale", type=int, default=1)
    parser.add_argument("--large-scale", type=int, default=MAX_SCALE)
    parser.add_argument("--small-dir", help="embedded data folder whose dev databases hold the small set")
    parser.add_argument("--large-dir", help="embedded data folder whose dev databases hold the large set")
    parser.add_argument("--query", action="append", help="only this key query (repeatable)")
    args = parser.parse_args()
    with ExitStack() as stack:
        small = medians(seeded_settings(stack, args.small_dir, args.small_scale), args.runs, args.query)
        large = medians(seeded_settings(stack, args.large_dir, args.large_scale), args.runs, args.query)
    print(f"\nmedian execution time over {args.runs} runs, scale {args.small_scale} vs {args.large_scale}")
    print("| query | small (ms) | large (ms) | ratio large/small | plan at large scale | held |")
    print("|---|---:|---:|---:|---|---|")
    for key in sorted(large):
        s_ms = small.get(key, (float("nan"),))[0]
        l_ms, shape, budget = large[key]
        ratio = l_ms / s_ms if s_ms else float("inf")
        limit = GROWTH_LIMITS.get(key[1])
        held = (budget is None or l_ms <= budget) and (limit is None or ratio <= limit)
        targets = ", ".join(t for t in (f"<= {budget:g} ms" if budget is not None else "",
                                        f"<= {limit:g}x" if limit else "") if t)
        print(f"| {key[0]}/{key[1]} | {s_ms:.3f} | {l_ms:.3f} | {ratio:,.1f} | {shape} |"
              f" {'yes' if held else 'NO'}{f' ({targets})' if targets else ''} |")


if __name__ == "__main__":
    main()

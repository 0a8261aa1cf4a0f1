"""Recall of `dbtool advise`: drop every secondary index of course and chat, advise, apply, check the budgets.

On its own embedded server: migrate the three services, `seed --scale 100`, note the shipped
indexes, drop every index that backs no constraint, then run the advisor core with --write into a
copy of schemas/, apply the written migrations with dbtool migrate, and explain every key query.
Prints per query the advisor's time (against one EXPLAIN ANALYZE of the same query, in the same
process, as the reference) and its suggestion, which shipped indexes it rediscovered and where it
differs, and whether every budget holds. The embedded server has no hypopg; with --hypopg-admin URL
(a server with the extension installed, e.g. Debian's postgresql-15-hypopg) the recall runs there
instead and the advisor runs twice, real builds and then hypothetical indexes, timed per query.

    python benchmarks/advise_recall.py [--scale 100] [--hypopg-admin URL]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import psycopg  # noqa: E402
from _common import SCHEMAS, SERVICES, fresh_db, scratch_server  # noqa: E402

from dbtool import config  # noqa: E402
from dbtool.advise.advisor import advise  # noqa: E402
from dbtool.advise.write import write_suggestions  # noqa: E402
from dbtool.data.seed import seed  # noqa: E402
from dbtool.inspect.explain import explain  # noqa: E402
from dbtool.migrate.commands import migrate  # noqa: E402

ADVISED = ["course", "chat"]
_SECONDARY = """SELECT c.relname, t.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  AND t.relname !~ '^(_yoyo|yoyo|_dbtool)'"""


def parts(definition: str) -> tuple[str, str, str]:
    """(access method and keys, INCLUDE list, predicate) of a pg_get_indexdef line."""
    match = re.search(r"USING (\w+ \(.*?\))(?: INCLUDE (\(.*?\)))?(?: WHERE (.*))?$", definition)
    return (match[1], match[2] or "", match[3] or "") if match else (definition, "", "")


def verdict(mine: str, shipped: list[tuple[str, str]]) -> str:
    keys, include, where = parts(mine)
    for name, definition in shipped:
        if parts(definition) == (keys, include, where):
            return f"rediscovers {name}"
    for name, definition in shipped:
        if parts(definition)[0] == keys:
            return f"{name} with another predicate or INCLUDE list"
    extended = [n for n, d in shipped if keys.startswith(parts(d)[0].rstrip(")") + ",")]
    return f"extends {', '.join(extended)}" if extended else "not in the shipped schema"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--hypopg-admin", help="admin URL of a server with hypopg installed")
    args = parser.parse_args()
    with ExitStack() as stack:
        admin = args.hypopg_admin or stack.enter_context(scratch_server())
        urls = {config.url_variable(s): fresh_db(admin, f"recall_{s}") for s in SERVICES}
        schemas = Path(tempfile.mkdtemp(prefix="dbtool-recall-")) / "schemas"
        stack.callback(shutil.rmtree, schemas.parent, True)
        shutil.copytree(SCHEMAS, schemas)
        settings = config.make_settings(schemas, environ=urls)
        migrate(settings)
        print(f"seeding --scale {args.scale} ...", flush=True)
        seed(settings, scale=args.scale)
        shipped: dict[str, list[tuple[str, str, str]]] = {}
        for service in ADVISED:
            with psycopg.connect(urls[config.url_variable(service)], autocommit=True) as conn:
                shipped[service] = conn.execute(_SECONDARY).fetchall()
                for name, _, _ in shipped[service]:
                    conn.execute(f"DROP INDEX {name}")
                conn.execute("ANALYZE")
        before = {(s.service, r.query.name): r for s in explain(settings, ADVISED) for r in s.reports}
        broken = sorted(name for (_, name), r in before.items() if r.broken)
        print(f"every secondary index dropped: {len(broken)} of {len(before)} key queries over budget")
        started = time.perf_counter()
        results = advise(settings, ADVISED)
        total = time.perf_counter() - started
        hypothetical = None
        if args.hypopg_admin:
            for service in ADVISED:
                with psycopg.connect(urls[config.url_variable(service)], autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION hypopg")
            started = time.perf_counter()
            hypothetical = advise(settings, ADVISED)
            hypo_total = time.perf_counter() - started
        for result in results:
            write_suggestions(settings, result)
        migrate(settings)
        after = {(s.service, r.query.name): r for s in explain(settings, ADVISED) for r in s.reports}

        print(f"\n{'query':<27} {'advise ms':>9} {'explain ms':>10} {'ratio':>6}  index")
        for result in results:
            for q in result.queries:
                ref = before[(result.service, q.query.name)]
                reference_ms = ref.execution_ms + ref.planning_ms
                name = next((s.name for s in result.suggestions if q.query.name in s.queries), "-")
                print(f"{q.query.name:<27} {q.seconds * 1000:9.0f} {reference_ms:10.2f}"
                      f" {q.seconds * 1000 / max(reference_ms, 0.001):6.0f}  {name}")
        print(f"advisor total {total:.1f} s ({results[0].method})")
        if hypothetical is None:
            print("hypothetical path: no hypopg on this server, not timed (see --hypopg-admin)")
        else:
            print(f"\n{'query':<27} {'real ms':>9} {'hypo ms':>9} {'ratio':>6}  same advice")
            for real, hypo in zip(results, hypothetical):
                for r, h in zip(real.queries, hypo.queries):
                    same = (r.suggestion.definition() if r.suggestion else None) == (
                        h.suggestion.definition() if h.suggestion else None)
                    differs = f"no: {r.suggestion.name if r.suggestion else '-'} against" \
                              f" {h.suggestion.name if h.suggestion else '-'} ({h.note or 'cheaper'})"
                    print(f"{r.query.name:<27} {r.seconds * 1000:9.0f} {h.seconds * 1000:9.0f}"
                          f" {r.seconds / max(h.seconds, 1e-6):6.1f}  {'yes' if same else differs}")
            print(f"advisor total {hypo_total:.1f} s with hypopg, {total / hypo_total:.1f}x faster than real builds")

        print("\nsuggested against shipped:")
        for result in results:
            with psycopg.connect(urls[config.url_variable(result.service)]) as conn:
                built = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes").fetchall())
            for s in result.suggestions:
                same_table = [(n, d) for n, t, d in shipped[result.service] if t == s.candidate.table]
                print(f"  {s.name}: {verdict(built[s.name], same_table)}; for {', '.join(s.queries)}")
                print(f"    {s.index_sql}")
        print("\nbudgets once applied:")
        for (service, name), r in after.items():
            budget = "ok" if r.query.budget.describe() else "no budget"
            state = "broken: " + "; ".join(r.broken) if r.broken else budget
            print(f"  {name:<27} {r.execution_ms:8.2f} ms  {', '.join(r.shape)}  {state}")
        print(f"{sum(1 for r in after.values() if r.broken)} of {len(after)} over budget after applying")


if __name__ == "__main__":
    main()

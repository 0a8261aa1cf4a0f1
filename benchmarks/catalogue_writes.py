"""What the catalogue's search index and live-course total cost writers: course 005 against every migration.

For each schema ("before": course migrated to 005; "after": every migration, with 006's search
index and 008's 32 counter slots; "after, one slot": the same with every writer sent to slot 0, the
contention that spreading avoids) on fresh databases of a scratch embedded server:

- seed: `seed course --scale N`, the rows per second seed reports for courses (COPY, indexes, ANALYZE);
- course writers: --writers threads, each inserting one course per transaction for --seconds;
- enrollments: --writers threads calling enroll_student() into 200 roomy courses for --seconds.

Then the estimate the total could have used instead, pg_class.reltuples, against count(*) right
after the course writers: how stale it is until autovacuum or ANALYZE runs. Each figure is the
median of --runs runs.

    python benchmarks/catalogue_writes.py [--scale 100] [--writers 50] [--seconds 5] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import psycopg  # noqa: E402
from _common import SCHEMAS, fresh_db, scratch_server  # noqa: E402
from psycopg import sql  # noqa: E402

from dbtool import config  # noqa: E402
from dbtool.app.enrollment import CourseFull, enroll_student  # noqa: E402
from dbtool.data.seed import seed  # noqa: E402
from dbtool.migrate.commands import migrate  # noqa: E402

NEW_COURSE = """INSERT INTO courses (name, description, price, instructor_id, instructor_name, duration_minutes,
                                     max_students, category, level)
                VALUES (%s, 'Weekly lessons with practice plans and feedback.', 5000, gen_random_uuid(),
                        'Nina Simone', 60, 100000, 'piano', 'beginner')"""
SCHEMAS_UNDER_TEST = {"before": 5, "after": None, "after, one slot": None}
COPIES: list[Path] = []  # schema folders made for "before", removed at the end


def schemas_up_to(version: int | None) -> Path:
    """The project's schemas, or a copy whose course migrations stop at `version` (seed wants them all)."""
    if version is None:
        return SCHEMAS
    COPIES.append(Path(tempfile.mkdtemp(prefix="dbtool-bench-schemas-")))
    folder = COPIES[-1] / "schemas"
    shutil.copytree(SCHEMAS, folder)
    for path in (folder / "course").glob("[0-9][0-9][0-9]_*.sql"):
        if int(path.name[:3]) > version:
            path.unlink()
    return folder


def databases(admin: str, label: str, scale: int) -> tuple[str, float]:
    """Fresh identity and course databases migrated for `label`, seeded; (course conninfo, courses rows/s)."""
    urls = {config.url_variable(s): fresh_db(admin, f"writes_{s}") for s in ("identity", "course")}
    settings = config.make_settings(schemas_up_to(SCHEMAS_UNDER_TEST[label]), environ=urls)
    migrate(settings, ["identity", "course"])
    course = urls[config.url_variable("course")]
    if label == "after, one slot":
        with psycopg.connect(course, autocommit=True) as conn:
            source = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'count_live_courses'").fetchone()[0]
            conn.execute("CREATE OR REPLACE FUNCTION count_live_courses() RETURNS TRIGGER LANGUAGE plpgsql AS "
                         + sql.quote(source.replace("pg_backend_pid() % 32", "0")))
    report = seed(settings, ["course"], scale=scale)
    courses = next(load for load in report.loads if load.table == "courses")
    return course, courses.rows_per_second


def hammer(conninfo: str, writers: int, seconds: float, work) -> float:
    """Operations per second of `writers` threads each running work(conn, n) in a loop for `seconds`."""
    conns = [psycopg.connect(conninfo, autocommit=True) for _ in range(writers)]
    done = [0] * writers
    start = threading.Barrier(writers + 1)
    stop = threading.Event()

    def loop(n: int) -> None:
        start.wait()
        while not stop.is_set():
            work(conns[n], n)
            done[n] += 1

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    start.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for conn in conns:
        conn.close()
    return sum(done) / elapsed


def add_course(conn: psycopg.Connection, n: int) -> None:
    conn.execute(NEW_COURSE, (f"Writer {n} course",))


def measure(admin: str, label: str, args: argparse.Namespace) -> dict[str, float]:
    course, seed_rate = databases(admin, label, args.scale)
    courses_per_s = hammer(course, args.writers, args.seconds, add_course)
    with psycopg.connect(course, autocommit=True) as conn:
        estimate, exact = conn.execute(
            "SELECT reltuples, (SELECT count(*) FROM courses WHERE deleted_at IS NULL)"
            " FROM pg_class WHERE oid = 'courses'::regclass").fetchone()
        if label != "before":
            total = conn.execute("SELECT sum(live_courses) FROM course_counts").fetchone()[0]
            assert total == exact, (label, total, exact)
        for _ in range(200):
            conn.execute(NEW_COURSE, ("Roomy course",))
        roomy = [r[0] for r in conn.execute("SELECT id FROM courses WHERE name = 'Roomy course'")]

    def enrol(conn: psycopg.Connection, n: int) -> None:
        try:
            enroll_student(conn, roomy[(n * 7 + int(time.perf_counter() * 1000)) % len(roomy)], uuid.uuid4(), "S")
        except CourseFull:
            pass

    enrollments_per_s = hammer(course, args.writers, args.seconds, enrol)
    return {"seed courses rows/s": seed_rate, "course inserts/s": courses_per_s,
            "enrollments/s": enrollments_per_s, "reltuples off count(*) %": 100 * abs(exact - estimate) / exact}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=100, help="seed scale (200 courses per unit)")
    parser.add_argument("--writers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with scratch_server() as admin:
            for run in range(args.runs):
                for label in SCHEMAS_UNDER_TEST:
                    figures = measure(admin, label, args)
                    print(f"run {run + 1} {label}: " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()),
                          flush=True)
                    for key, value in figures.items():
                        results.setdefault(label, {}).setdefault(key, []).append(value)
    finally:
        for folder in COPIES:
            shutil.rmtree(folder, ignore_errors=True)
    keys = list(next(iter(results.values())))
    print(f"\nmedian of {args.runs} runs, --scale {args.scale}, {args.writers} writers, {args.seconds:g} s each")
    print("| schema | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for label, figures in results.items():
        print(f"| {label} | " + " | ".join(f"{statistics.median(figures[k]):,.1f}" for k in keys) + " |")
    base = results["before"]
    for label in list(results)[1:]:
        ratios = ", ".join(f"{k} {statistics.median(results[label][k]) / statistics.median(base[k]):.2f}x"
                           for k in keys[:3])
        print(f"{label} against before: {ratios}")


if __name__ == "__main__":
    main()

"""`dbtool redis audit` of 10k, 100k and 1,000,000 keys: time, round trips, and the growth per key.

On a scratch embedded PostgreSQL (chat and identity migrated) and a scratch embedded Redis: 90% of
the keys are chat:context:{session_id} documents of sessions that exist in chat_db, 10% are
course:cache:{instructor_id}:courses lists of users that exist in identity_db, every one with its
declared TTL, so the audit checks TTL, type, JSON shape, size and the reference of every key and
finds nothing. Times the core function (dbtool.redis.audit.audit) and counts its round trips
(SCAN batches plus one inspecting script call per batch), then prints the time per key at each size against the smallest.
Usage: python benchmarks/redis_audit_scale.py [--sizes 10000,100000,1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import redis
from _common import SCHEMAS, dbtool_cmd, fresh_db, run, scratch_server

from dbtool.config import make_settings
from dbtool.redis import audit, locate

DOC = json.dumps({"messages": [{"id": str(uuid.UUID(int=n)), "role": "user" if n % 2 else "assistant",
                                "content": "Practise slowly with a metronome, then raise the tempo."}
                               for n in range(4)],
                  "message_count": 4, "last_updated": "2025-03-01T10:05:00Z"})
COURSES = json.dumps([{"id": str(uuid.UUID(int=n)), "name": f"Course {n}"} for n in range(3)])


def uid(prefix: str, n: int) -> str:
    """The same id as md5(prefix || n)::uuid in PostgreSQL."""
    return str(uuid.UUID(hashlib.md5(f"{prefix}{n}".encode()).hexdigest()))


def load(chat: str, identity: str, r: redis.Redis, keys: int) -> None:
    sessions, users = keys * 9 // 10, keys - keys * 9 // 10
    with psycopg.connect(chat, autocommit=True) as conn:
        conn.execute("TRUNCATE chat_sessions CASCADE")
        conn.execute("INSERT INTO chat_sessions (id, user_id) SELECT md5('s' || i)::uuid, md5('u' || i)::uuid"
                     " FROM generate_series(1, %s) i", (sessions,))
    with psycopg.connect(identity, autocommit=True) as conn:
        conn.execute("TRUNCATE users CASCADE")
        conn.execute("INSERT INTO users (id, email, password_hash, role, name) SELECT md5('u' || i)::uuid,"
                     " 'u' || i || '@example.com', 'x', 'instructor', 'U' || i FROM generate_series(1, %s) i",
                     (users,))
        conn.execute("ANALYZE users")
    r.flushdb()
    pipe = r.pipeline(transaction=False)
    for n in range(1, sessions + 1):
        pipe.set(f"chat:context:{uid('s', n)}", DOC, ex=3600)
        if n % 10_000 == 0:
            pipe.execute()
    for n in range(1, users + 1):
        pipe.set(f"course:cache:{uid('u', n)}:courses", COURSES, ex=300)
        if n % 10_000 == 0:
            pipe.execute()
    pipe.execute()


def main(sizes: list[int], runs: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="dbtool-bench-redis-"))
    try:
        url = locate.start(data)
        r = redis.Redis.from_url(url)
        with scratch_server() as admin:
            chat, identity = fresh_db(admin, "chat"), fresh_db(admin, "identity")
            env = {"CHAT_DATABASE_URL": chat, "IDENTITY_DATABASE_URL": identity}
            run(dbtool_cmd("migrate", "chat", "identity"), env=env)
            settings = make_settings(SCHEMAS, environ=env)
            rows = []
            for keys in sizes:
                load(chat, identity, r, keys)
                times = []
                for _ in range(runs):  # the fastest run: the machine is shared, noise only adds time
                    started = time.perf_counter()
                    (report,) = audit.audit(settings, ["chat", "course"], redis_url=url)
                    times.append(time.perf_counter() - started)
                    assert report.keys == keys and not report.findings, report.findings
                rows.append((keys, min(times), report))
        base = rows[0][1] / rows[0][0]
        print(f"dbtool redis audit (core function), every key checked, embedded Redis on a unix socket,"
              f" fastest of {runs} runs")
        print(f"  {'keys':>9}  {'seconds':>8}  {'us/key':>7}  {'round trips':>11}  {'SCAN':>6}  {'inspect calls':>13}"
              f"  {'db queries':>10}  {'of which db s':>13}  {'per key vs first':>16}")
        for keys, seconds, rep in rows:
            print(f"  {keys:>9,}  {seconds:>8.2f}  {seconds / keys * 1e6:>7.1f}  {rep.round_trips:>11,}"
                  f"  {rep.scan_batches:>6,}  {rep.inspect_calls:>13,}  {rep.queries:>10,}  {rep.reference_seconds:>13.2f}"
                  f"  {seconds / keys / base:>15.2f}x")
    finally:
        locate.stop(data)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    main([int(s) for s in args.sizes.split(",")], args.runs)

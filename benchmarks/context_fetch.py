"""Context fetch: ChatContextCache.get on a hit, and on a miss (rebuild), against the messages_of_session query.

On a scratch embedded PostgreSQL seeded with `dbtool seed chat --scale N` (5000: 250,000 sessions and
1.25 million messages) and a scratch embedded Redis (unix socket). For the same random sessions it
times, each on an open connection: the key query schemas/chat/queries/messages_of_session.sql on
chat_db; get() on a hit (one GET and a JSON parse); get() on a miss (the rebuild query, then the
store script). Prints medians and the ratios against the query.
Usage: python benchmarks/context_fetch.py [--scale 5000] [--sessions 2000]
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from _common import SCHEMAS, dbtool_cmd, fresh_db, run, scratch_server

from dbtool.app.chat_context import ChatContextCache
from dbtool.redis import locate


def query_text() -> str:
    text = (SCHEMAS / "chat" / "queries" / "messages_of_session.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    return re.sub(r":session_id\b", "%s", body).strip().rstrip(";")


def median_us(action, items) -> float:
    times = []
    for item in items:
        started = time.perf_counter()
        action(item)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main(scale: int, sessions: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="dbtool-bench-context-"))
    try:
        url = locate.start(data)
        with scratch_server() as admin:
            chat, identity = fresh_db(admin, "chat"), fresh_db(admin, "identity")
            env = {"CHAT_DATABASE_URL": chat, "IDENTITY_DATABASE_URL": identity, "REDIS_URL": url}
            run(dbtool_cmd("migrate", "chat", "identity"), env=env)
            started = time.perf_counter()
            run(dbtool_cmd("seed", "chat", "--scale", str(scale)), env=env)
            print(f"seeded chat at --scale {scale} in {time.perf_counter() - started:.0f} s")
            with psycopg.connect(chat, autocommit=True) as conn:
                counts = conn.execute("SELECT (SELECT count(*) FROM chat_sessions),"
                                      " (SELECT count(*) FROM chat_messages)").fetchone()
                ids = [str(r[0]) for r in conn.execute("SELECT id FROM chat_sessions")]
                chosen = random.Random(7).sample(ids, min(sessions, len(ids)))
                cache = ChatContextCache(url, conn)
                cache.redis.flushdb()
                sql = query_text()
                conn.execute(sql, (chosen[0],)).fetchall()  # warm the plan cache and the buffers
                for sid in chosen:  # every session's rows in the buffer cache, for a fair comparison
                    conn.execute(sql, (sid,)).fetchall()
                query = median_us(lambda sid: conn.execute(sql, (sid,), prepare=True).fetchall(), chosen)
                miss_times = []
                for sid in chosen:
                    cache.redis.delete(cache.key(sid))
                    started = time.perf_counter()
                    ctx = cache.get(sid)
                    miss_times.append(time.perf_counter() - started)
                    assert not ctx.hit
                miss = statistics.median(miss_times) * 1e6
                assert all(cache.get(sid).hit for sid in chosen[:10])
                hit = median_us(cache.get, chosen)
        print(f"chat_db: {counts[0]:,} sessions, {counts[1]:,} messages; {len(chosen):,} random sessions,"
              " medians per call, open connections (unix sockets)")
        print(f"  messages_of_session query on chat_db   {query:8.1f} us")
        print(f"  ChatContextCache.get, hit              {hit:8.1f} us   hit / query:  {hit / query:.2f}")
        print(f"  ChatContextCache.get, miss (rebuild)   {miss:8.1f} us   miss / query: {miss / query:.2f}")
    finally:
        locate.stop(data)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=2000)
    args = parser.parse_args()
    main(args.scale, args.sessions)

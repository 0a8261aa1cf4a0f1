"""ChatContextCache on a real Redis in front of a migrated chat_db: cache-aside, atomic appends, Redis down."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis
from conftest import connect
from redis_server import REDIS

from dbtool.app.chat_context import KEY, TTL, ChatContextCache
from dbtool.config import make_settings
from dbtool.redis import keyspace

DOWN = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused


@pytest.fixture
def chat(migrated) -> str:
    dbs, _ = migrated
    return dbs["chat"]


@pytest.fixture
def redis_url() -> str:
    return REDIS.fresh_url()


def new_session(chat: str, messages: int = 0) -> str:
    with connect(chat) as conn:
        sid = str(conn.execute("INSERT INTO chat_sessions (user_id) VALUES (gen_random_uuid()) RETURNING id")
                  .fetchone()[0])
    for n in range(messages):
        write_message(chat, sid, f"message {n}")
    return sid


def write_message(chat: str, sid: str, content: str, role: str = "user") -> dict:
    """What the chat service does first: commit the message to chat_db, the source of truth."""
    with connect(chat) as conn:
        mid, created = conn.execute(
            "INSERT INTO chat_messages (session_id, role, content) VALUES (%s, %s, %s) RETURNING id, created_at",
            (sid, role, content)).fetchone()
    return {"id": str(mid), "role": role, "content": content, "created_at": created.isoformat()}


def test_the_library_matches_the_declaration():
    (context,) = [d for d in keyspace.load_service(make_settings(), "chat") if d.name == "context"]
    assert context.pattern == KEY and context.ttl_max == TTL


def test_get_is_cache_aside(chat, redis_url):
    sid = new_session(chat, 3)
    cache = ChatContextCache(redis_url, chat)
    first = cache.get(sid)
    assert not first.hit and first.message_count == 3
    assert [m["content"] for m in first.messages] == ["message 0", "message 1", "message 2"]
    second = cache.get(sid)
    assert second.hit and second.messages == first.messages
    stored = redis.Redis.from_url(redis_url)
    doc = json.loads(stored.get(f"chat:context:{sid}"))
    assert set(doc) == {"messages", "message_count", "last_updated"} and doc["last_updated"].endswith("Z")
    assert 3590 < stored.ttl(f"chat:context:{sid}") <= TTL
    assert cache.get(uuid.uuid4()) is None  # no such session: nothing cached
    assert stored.dbsize() == 1


def test_append_keeps_the_last_n_counts_all_and_refreshes_the_ttl(chat, redis_url):
    sid = new_session(chat, 2)
    cache = ChatContextCache(redis_url, chat, keep=3)
    cache.get(sid)
    stored = redis.Redis.from_url(redis_url)
    stored.expire(f"chat:context:{sid}", 10)
    for n in range(2, 6):
        assert cache.append(sid, write_message(chat, sid, f"message {n}"))
    ctx = cache.get(sid)
    assert ctx.hit and ctx.message_count == 6
    assert [m["content"] for m in ctx.messages] == ["message 3", "message 4", "message 5"]
    assert stored.ttl(f"chat:context:{sid}") > 3500
    message = write_message(chat, sid, "once")
    assert cache.append(sid, message) and cache.append(sid, message)  # the same id twice: added once
    assert cache.get(sid).message_count == 7


def test_append_on_a_miss_rebuilds_from_the_database(chat, redis_url):
    sid = new_session(chat, 1)
    cache = ChatContextCache(redis_url, chat)
    assert cache.append(sid, write_message(chat, sid, "new"))
    ctx = cache.get(sid)
    assert ctx.hit and ctx.message_count == 2 and ctx.messages[-1]["content"] == "new"


def test_invalidate_makes_the_next_get_rebuild(chat, redis_url):
    sid = new_session(chat, 1)
    cache = ChatContextCache(redis_url, chat)
    cache.get(sid)
    with connect(chat) as conn:
        conn.execute("DELETE FROM chat_messages WHERE session_id = %s", (sid,))
    assert cache.invalidate(sid)
    ctx = cache.get(sid)
    assert not ctx.hit and ctx.message_count == 0 and ctx.messages == []


def test_twenty_concurrent_appenders_lose_nothing(chat, redis_url):
    sid = new_session(chat, 5)
    cache = ChatContextCache(redis_url, chat, keep=50)
    cache.get(sid)
    start = threading.Barrier(20)
    written: list[dict] = []
    errors: list[BaseException] = []

    def appender(n: int) -> None:
        try:
            message = write_message(chat, sid, f"from thread {n}")
            written.append(message)
            start.wait(timeout=30)
            assert cache.append(sid, message)
        except BaseException as exc:  # reported below: a thread's assertion would vanish otherwise
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    ctx = cache.get(sid)
    assert ctx.hit and ctx.message_count == 25
    cached_ids = [m["id"] for m in ctx.messages]
    assert len(cached_ids) == len(set(cached_ids)) == 25
    assert {m["id"] for m in written} <= set(cached_ids)


def test_twenty_concurrent_appenders_on_a_cold_cache(chat, redis_url):
    """No document yet: the appenders' rebuilds and appends race, and still no message is lost or doubled."""
    sid = new_session(chat, 2)
    cache = ChatContextCache(redis_url, chat, keep=50)
    start = threading.Barrier(20)

    def appender(n: int) -> None:
        message = write_message(chat, sid, f"cold {n}")
        start.wait(timeout=30)
        cache.append(sid, message)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ctx = cache.get(sid)
    assert ctx.message_count == 22
    assert len({m["id"] for m in ctx.messages}) == len(ctx.messages) == 22


def test_redis_down_is_a_miss_never_a_failure(chat, redis_url):
    sid = new_session(chat, 2)
    down = ChatContextCache(DOWN, chat)
    started = time.monotonic()
    ctx = down.get(sid)
    assert not ctx.hit and ctx.message_count == 2  # served from chat_db
    assert not down.append(sid, write_message(chat, sid, "while down"))
    assert not down.invalidate(sid)
    assert time.monotonic() - started < 2  # refused: no retries to wait through
    assert "connection refused" in down.last_error

    # The same process, Redis back: the document that missed an update is rebuilt, nothing is lost.
    up = ChatContextCache(redis_url, chat)
    up.get(sid)  # an up-to-date document (3 messages)
    write_message(chat, sid, "after")
    down.redis, down.url = up.redis, up.url
    down._append, down._store = up._append, up._store
    ctx = down.get(sid)
    assert ctx.message_count == 4 and ctx.messages[-1]["content"] == "after"


def test_fill_is_idempotent(chat, redis_url):
    sids = [new_session(chat, n) for n in (1, 2, 3)]
    cache = ChatContextCache(redis_url, chat)
    assert cache.fill(sids) == (3, 0)
    assert cache.fill(sids) == (0, 3)
    assert [cache.get(s).message_count for s in sids] == [1, 2, 3]

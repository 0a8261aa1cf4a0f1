"""`dbtool seed` fills the chat context cache: the documents of the most recent sessions, from chat_db.

Idempotent: a document already cached with as many messages is left alone (the same store-if-newer
script ChatContextCache uses). With --scale the number of sessions is bounded too. Redis is a cache:
when it cannot be reached (or no redis-server is installed) in dev, the database is seeded all the
same and one note says so.
"""

from __future__ import annotations

import time

from ..config import Settings
from ..errors import DbtoolError
from . import client as rclient
from . import keyspace, locate

FILL_SESSIONS = 1000  # the most recent sessions whose context is cached
SERVICE = "chat"


def fill_context_cache(settings: Settings, conninfos: dict[str, str], scale: int | None = None,
                       limit: int = FILL_SESSIONS) -> list[str]:
    """Cache the context of chat's most recent sessions; notes (one line each) for the user."""
    from ..app.chat_context import ChatContextCache

    if SERVICE not in conninfos:
        return []
    if not any(d.name == "context" for d in keyspace.load_service(settings, SERVICE)):
        return []  # chat declares no context cache
    started = time.perf_counter()
    try:
        target = locate.resolve(settings, SERVICE)
        url = locate.url_of(target, settings)
        import psycopg

        with psycopg.connect(conninfos[SERVICE], autocommit=True) as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM chat_sessions ORDER BY created_at DESC, id DESC LIMIT %s", (limit,))]
            cache = ChatContextCache(url, conn)
            rclient.retrying(cache.redis.ping, url)
            stored, already = cache.fill(ids) if ids else (0, 0)
    except DbtoolError as exc:
        return [f"redis: context cache not filled ({exc}); the database is seeded"]
    except Exception as exc:  # redis-py's own errors: Redis is only a cache here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"redis: context cache not filled ({locate.mask(reason)}); the database is seeded"]
    bound = f" (the {limit:,} most recent at --scale {scale})" if scale else ""
    return [f"redis: cached the context of {stored:,} chat session(s), {already:,} already cached{bound},"
            f" in {time.perf_counter() - started:.2f} s at {locate.describe(target, url)}"]

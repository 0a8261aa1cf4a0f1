"""The chat service's context cache: chat:context:{session_id} in Redis in front of chat_db.

The specification's "Chat Context Cache (Redis)": a JSON document of the session's recent messages
with message_count (every message of the session) and last_updated, kept for 1 hour
(schemas/chat/redis.toml declares it; `dbtool redis audit` checks it).

- get(session_id): cache-aside. A hit reads one key; a miss rebuilds the document from chat_db's
  messages, oldest first, and stores it. None when the session does not exist.
- append(session_id, message): after the message is committed to chat_db, add it to the cached
  document in one Lua script (atomic under concurrent appends): keeps the last `keep` messages, adds
  1 to message_count, sets last_updated, refreshes the TTL. A message already in the document (the
  same id) is not added twice. On a miss the document is rebuilt from chat_db, which already holds
  the message.
- invalidate(session_id): delete the document; the next get rebuilds it.

chat_db is the source of truth, so Redis being down is never a failure: get reads chat_db (a miss),
append and invalidate report False and remember the session, whose document is deleted as soon as
Redis answers again (in this process; in others the 1-hour TTL bounds a stale document). A refused
connection fails at once; other connection errors are retried with the spec's backoff
(dbtool/redis/client.py).

>>> from dbtool.app.chat_context import ChatContextCache
>>> cache = ChatContextCache("redis://localhost:6379/0", "postgresql://localhost/chat_db_dev")
>>> context = cache.get(session_id)           # ChatContext(messages=[...], message_count=10, ...)
>>> # ... INSERT INTO chat_messages ... RETURNING id, role, content, created_at; COMMIT ...
>>> cache.append(session_id, {"id": message_id, "role": "user", "content": "Scales first?"})
>>> cache.invalidate(session_id)              # e.g. after deleting messages
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Union

import psycopg
import redis

from ..errors import DatabaseUnavailable
from ..redis import client as rclient
from ..redis.client import RedisUnavailable

KEY = "chat:context:{session_id}"
TTL = 3600  # seconds: the specification's 1 hour, as schemas/chat/redis.toml declares
KEEP = 20  # recent messages kept in the document

# KEYS[1] the document; ARGV: message JSON, keep, ttl, now. Returns the new message_count, -1 on a
# miss (nothing to append to), -2 when the message is already there.
_APPEND = """
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local ok, doc = pcall(cjson.decode, cur)
if not ok or type(doc) ~= 'table' or type(doc.messages) ~= 'table' then
  redis.call('DEL', KEYS[1])
  return -1
end
local msg = cjson.decode(ARGV[1])
if msg.id then
  for _, m in ipairs(doc.messages) do
    if m.id == msg.id then return -2 end
  end
end
table.insert(doc.messages, msg)
local keep = tonumber(ARGV[2])
while #doc.messages > keep do table.remove(doc.messages, 1) end
doc.message_count = (tonumber(doc.message_count) or 0) + 1
doc.last_updated = ARGV[4]
redis.call('SET', KEYS[1], cjson.encode(doc), 'EX', tonumber(ARGV[3]))
return doc.message_count
"""

# KEYS[1] the document; ARGV: document JSON, its message_count, ttl. Stores unless the cached
# document already counts as many messages: a rebuild from an older read never overwrites a newer
# document. Returns 1 when stored, 0 when not.
_STORE = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, doc = pcall(cjson.decode, cur)
  if ok and type(doc) == 'table' and tonumber(doc.message_count)
     and tonumber(doc.message_count) >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[3]))
return 1
"""

# The session's existence, its message count and its last `keep` messages, oldest first, in one
# statement; the (session_id, created_at) index serves both subqueries.
_REBUILD = """
SELECT s.id::text,
       (SELECT count(*) FROM chat_messages m WHERE m.session_id = s.id),
       (SELECT coalesce(json_agg(json_build_object('id', r.id, 'role', r.role, 'content', r.content,
                                                    'created_at', r.created_at)
                                 ORDER BY r.created_at, r.id), '[]'::json)
          FROM (SELECT id, role, content, created_at FROM chat_messages
                WHERE session_id = s.id ORDER BY created_at DESC, id DESC LIMIT %(keep)s) r)
FROM chat_sessions s WHERE s.id = ANY(%(ids)s::uuid[])
"""
# One session, the common case of get: a plain equality plans and runs faster than an array.
_REBUILD_ONE = _REBUILD.replace("= ANY(%(ids)s::uuid[])", "= %(id)s::uuid")

Database = Union[str, psycopg.Connection]


@dataclass
class ChatContext:
    session_id: str
    messages: list[dict[str, Any]]
    message_count: int
    last_updated: str
    hit: bool  # True when read from Redis, False when rebuilt from chat_db

    def document(self) -> dict[str, Any]:
        return {"messages": self.messages, "message_count": self.message_count, "last_updated": self.last_updated}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _session(session_id: object) -> str:
    return str(uuid.UUID(str(session_id)))  # ValueError on anything that is no UUID


class ChatContextCache:
    """The chat context cache. Thread-safe: share one per process."""

    def __init__(self, redis: Any, database: Database, keep: int = KEEP, ttl: int = TTL,
                 attempts: int = rclient.MAX_ATTEMPTS) -> None:
        """redis: a Redis URL or a redis-py client; database: chat_db's conninfo or an open connection."""
        if isinstance(redis, str):
            self.url, self.redis = redis, rclient.client(redis)
        else:
            self.url, self.redis = "redis (client given)", redis
        self.database, self.keep, self.ttl, self.attempts = database, keep, ttl, attempts
        self._append = self.redis.register_script(_APPEND)
        self._store = self.redis.register_script(_STORE)
        self._local = threading.local()
        self._dirty: set[str] = set()  # sessions whose document missed an update while Redis was down
        self._lock = threading.Lock()
        self.last_error: str | None = None  # why Redis last failed, for the application's log

    # ------------------------------------------------------------ the three operations

    def get(self, session_id: object) -> ChatContext | None:
        """The session's context from Redis, or rebuilt from chat_db and stored; None: no such session."""
        sid = _session(session_id)
        if self._clean(sid):
            raw = self._redis(lambda: self.redis.get(self.key(sid)))
            if raw is not None:
                try:
                    doc = json.loads(raw)
                    return ChatContext(sid, doc["messages"], int(doc["message_count"]), doc["last_updated"], True)
                except (ValueError, KeyError, TypeError):
                    pass  # an unreadable document is a miss; the rebuild below replaces it
        return self._rebuild([sid]).get(sid)

    def append(self, session_id: object, message: dict[str, Any]) -> bool:
        """Add a message already committed to chat_db; False when Redis could not be updated."""
        sid = _session(session_id)
        if not self._clean(sid):
            self._mark(sid)
            return False
        payload = json.dumps(message, default=str)
        result = self._redis(lambda: self._append(keys=[self.key(sid)], args=[payload, self.keep, self.ttl, _now()]),
                             failed=None)
        if result is None:
            self._mark(sid)
            return False
        if int(result) == -1:  # a miss: chat_db already holds the message, so a rebuild includes it
            self._rebuild([sid])
        return True

    def invalidate(self, session_id: object) -> bool:
        """Delete the session's document; False when Redis could not be reached (retried later)."""
        sid = _session(session_id)
        if self._redis(lambda: self.redis.delete(self.key(sid)), failed=None) is None:
            self._mark(sid)
            return False
        with self._lock:
            self._dirty.discard(sid)
        return True

    def fill(self, session_ids: Iterable[object]) -> tuple[int, int]:
        """Rebuild and store many sessions' documents in one query and one pipeline: (stored, already cached)."""
        sids = [_session(s) for s in session_ids]
        contexts = self._read(sids)
        if not contexts:
            return 0, 0
        pipe = self.redis.pipeline(transaction=False)
        for ctx in contexts.values():
            self._store(keys=[self.key(ctx.session_id)], args=[json.dumps(ctx.document()), ctx.message_count, self.ttl],
                        client=pipe)
        results = rclient.retrying(pipe.execute, self.url, self.attempts)
        stored = sum(1 for r in results if int(r) == 1)
        return stored, len(results) - stored

    @staticmethod
    def key(session_id: str) -> str:
        return KEY.format(session_id=session_id)

    # ------------------------------------------------------------ Redis down is a miss, never a failure

    def _redis(self, action, failed: Any = None) -> Any:
        try:
            result = rclient.retrying(action, self.url, self.attempts)
        except (RedisUnavailable, redis.RedisError) as exc:  # e.g. WRONGTYPE from a key written by hand
            self.last_error = str(exc)
            return failed
        self.last_error = None
        return result

    def _mark(self, sid: str) -> None:
        with self._lock:
            self._dirty.add(sid)

    def _clean(self, sid: str) -> bool:
        """False while a document that missed an update cannot be deleted yet."""
        with self._lock:
            if sid not in self._dirty:
                return True
        if self._redis(lambda: self.redis.delete(self.key(sid)), failed=None) is None:
            return False
        with self._lock:
            self._dirty.discard(sid)
        return True

    # ------------------------------------------------------------ chat_db, the source of truth

    def _rebuild(self, sids: list[str]) -> dict[str, ChatContext]:
        contexts = self._read(sids)
        for ctx in contexts.values():
            if self._clean(ctx.session_id):
                self._redis(lambda: self._store(keys=[self.key(ctx.session_id)],
                                                args=[json.dumps(ctx.document()), ctx.message_count, self.ttl]))
        return contexts

    def _read(self, sids: list[str]) -> dict[str, ChatContext]:
        now = _now()
        if len(sids) == 1:
            rows = self._connection().execute(_REBUILD_ONE, {"id": sids[0], "keep": self.keep}).fetchall()
        else:
            rows = self._connection().execute(_REBUILD, {"ids": sids, "keep": self.keep}).fetchall()
        return {sid: ChatContext(sid, messages, int(count), now, False) for sid, count, messages in rows}

    def _connection(self) -> psycopg.Connection:
        if isinstance(self.database, psycopg.Connection):
            return self.database
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = self._local.conn = psycopg.connect(self.database, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise ChatDatabaseUnavailable(f"chat_db unreachable: {str(exc).strip().splitlines()[0]}") from None
        return conn


class ChatDatabaseUnavailable(DatabaseUnavailable):
    """chat_db, the source of truth, could not be reached: the chat cannot work without it."""

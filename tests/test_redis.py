"""Redis, schema-first: declarations, where Redis comes from, `dbtool redis audit|url`, seeding, on a real Redis."""

from __future__ import annotations

import json
import os
import socketserver
import threading
from pathlib import Path

import pytest
import redis
from conftest import SCHEMAS, one_error_line

from dbtool.config import make_settings
from dbtool.errors import BadInput
from dbtool.redis import keyspace, locate
from dbtool.redis.client import RedisUnavailable, backoff, retrying

SEEDED_SESSIONS = ["00000000-0000-4000-8000-000000000501", "00000000-0000-4000-8000-000000000502",
                   "00000000-0000-4000-8000-000000000503"]
NO_SESSION = "00000000-0000-4000-8000-00000000dead"


def current_redis() -> redis.Redis:
    """The emptied Redis database the `cli` fixture gave this test (REDIS_URL)."""
    return redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)


def audit(cli, project, env, *args: str):
    return cli("redis", "audit", *args, "--schemas-dir", project / "schemas", env=env)


# ------------------------------------------------------------------ declarations


def test_the_shipped_declarations_are_the_specifications_keys():
    decls = keyspace.load_all(make_settings(SCHEMAS))
    chat = {d.name: d for d in decls["chat"]}
    course = {d.name: d for d in decls["course"]}
    assert chat["context"].pattern == "chat:context:{session_id}"
    assert (chat["context"].ttl_min, chat["context"].value) == (3600, "json")
    assert dict(chat["context"].json_fields) == {"messages": "array", "message_count": "integer",
                                                 "last_updated": "string"}
    assert chat["context"].references[0].describe() == "{session_id} -> chat.chat_sessions.id"
    assert chat["ratelimit"].ttl_max == 60 and dict(chat["ratelimit"].placeholders) == {"user_id": "uuid",
                                                                                          "day": "date"}
    assert {d.pattern: d.ttl_max for d in course.values()} == {
        "course:cache:{instructor_id}:courses": 300, "course:cache:list": 300}
    assert decls["identity"] == []


@pytest.mark.parametrize("text, line, message", [
    ('[[key]]\nname = "context"\npattern = "chat:context:{session_id}\nvalue = "json"\n', 3, "not valid TOML"),
    ('[[key]]\nname = "context"\npattern = "sessions:{session_id}"\nvalue = "json"\nttl = 60\n', 3,
     "has 2 segment(s), the convention has 3 or 4"),
    ('[[key]]\nname = "context"\npattern = "course:context:{session_id}"\n', 3, "must start with the service name"),
    ('[[key]]\nname = "context"\npattern = "chat:Context:{id}"\n', 3, "must be a lower_snake_case word"),
    ('# keys\n\n[[key]]\nname = "context"\npattern = "chat:context:{id}"\nplaceholders = { id = "uuid" }\n'
     'value = "json"\nttl = 0\n', 8, "a TTL of zero"),
    ('[[key]]\nname = "c"\npattern = "chat:context:{id}"\nplaceholders = { id = "guid" }\nvalue = "json"\n'
     'ttl = 60\n', 4, "has type 'guid'"),
    ('[[key]]\nname = "c"\npattern = "chat:context:{id}"\nplaceholders = { id = "uuid" }\nvalue = "json"\n'
     'ttl = "1h"\nreferences = { id = "billing.sessions.id" }\n', 7, "points at service 'billing'"),
    ('[[key]]\nname = "c"\npattern = "chat:context:{id}"\nplaceholders = { id = "uuid" }\nvalue = "json"\n', 1,
     "no ttl"),
])
def test_a_declaration_error_names_the_file_and_line(cli, project, text, line, message):
    path = project / "schemas" / "chat" / "redis.toml"
    path.write_text(text)
    error = one_error_line(audit(cli, project, None, "chat"), 2)
    assert f"{path}:{line}: " in error and message in error


def test_ttl_ranges_sizes_and_durations_parse(project):
    path = project / "schemas" / "chat" / "redis.toml"
    path.write_text('[[key]]\nname = "c"\npattern = "chat:context:{id}:summary"\nplaceholders = { id = "int" }\n'
                    'value = "hash"\nttl = ["1m", "2h"]\nmax_size = "2kB"\n')
    (decl,) = keyspace.load_service(make_settings(project / "schemas"), "chat")
    assert (decl.ttl_min, decl.ttl_max, decl.max_size, decl.value) == (60, 7200, 2048, "hash")
    assert decl.regex().fullmatch("chat:context:42:summary").groupdict() == {"id": "42"}


# ------------------------------------------------------------------ where Redis comes from


def test_resolution_order_first_match_wins():
    env = {"CHAT_REDIS_URL": "redis://chat-host:6379/1", "REDIS_URL": "redis://shared:6379/0",
           "REDIS_HOST": "spec-host", "REDIS_PORT": "6380"}

    def resolve(environ, url=None, env_name="dev"):
        settings = make_settings(SCHEMAS, env=env_name, environ=environ)
        return locate.resolve(settings, "chat", url)

    assert resolve(env, "redis://flag:1/0").source == "--redis-url"
    assert resolve(env).url == "redis://chat-host:6379/1"
    assert resolve({k: v for k, v in env.items() if k != "CHAT_REDIS_URL"}).source == "REDIS_URL"
    spec = resolve({"REDIS_HOST": "spec-host", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss"})
    assert spec.source == "REDIS_HOST" and spec.url == "redis://:p%40ss@spec-host:6380/0"
    assert resolve({}).embedded and resolve({}, env_name="test").embedded
    with pytest.raises(BadInput, match="prod never uses the embedded Redis"):
        resolve({}, env_name="prod")


def test_passwords_are_masked():
    assert locate.mask("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert locate.mask("redis://:s3cret@host/0") == "redis://:***@host/0"
    assert locate.mask("unix:///tmp/r.sock") == "unix:///tmp/r.sock"


def test_backoff_is_the_specifications():
    assert [round(backoff(n), 2) for n in (1, 2, 10, 30, 31)] == [0.1, 0.2, 1.0, 3.0, 3.0]
    waits: list[float] = []

    def flaky():
        raise redis.TimeoutError("Timeout reading from socket")

    with pytest.raises(RedisUnavailable, match="gave up after 10 attempts"):
        retrying(flaky, "redis://:pw@host:1/0", sleep=waits.append)
    assert waits == [pytest.approx(backoff(n)) for n in range(1, 10)]


def test_the_embedded_redis_starts_on_demand_and_stops_with_the_server(cli, project):
    schemas = project / "schemas"
    env = {"REDIS_URL": ""}  # nothing configured: dev uses the embedded Redis
    try:
        url = cli("redis", "url", "--schemas-dir", schemas, env=env)
        assert url.exit_code == 0, url.output
        socket = url.stdout.strip().removeprefix("unix://")
        assert socket == str(project.resolve() / ".dbtool" / "redis" / "redis.sock")
        assert redis.Redis(unix_socket_path=socket).ping()
        status = cli("server", "status", "--json", "--schemas-dir", schemas, env=env)
        assert json.loads(status.stdout)["redis"] == {"running": True, "url": f"unix://{socket}",
                                                      "data_dir": str(project / ".dbtool" / "redis")}
        conf = (project / ".dbtool" / "redis" / "redis.conf").read_text()
        assert "port 0" in conf  # no TCP port
    finally:
        stopped = cli("server", "stop", "--schemas-dir", schemas, env=env)
    assert "embedded Redis stopped" in stopped.stdout
    assert "embedded Redis not running" in cli("server", "status", "--schemas-dir", schemas, env=env).stdout


def test_redis_url_masks_the_password_unless_asked(cli, project):
    schemas = project / "schemas"
    env = {"REDIS_URL": "redis://app:s3cret@127.0.0.1:6390/2"}
    masked = cli("redis", "url", "--schemas-dir", schemas, env=env)
    assert masked.stdout.strip() == "redis://app:***@127.0.0.1:6390/2"
    shown = cli("redis", "url", "--show-password", "--schemas-dir", schemas, env=env)
    assert shown.stdout.strip() == "redis://app:s3cret@127.0.0.1:6390/2"
    chat = cli("redis", "url", "chat", "--schemas-dir", schemas, env={**env, "CHAT_REDIS_URL": "redis://c:1/0"})
    assert chat.stdout.strip() == "redis://c:1/0"


# ------------------------------------------------------------------ bad input


def test_an_unreachable_redis_is_exit_3(cli, project):
    error = one_error_line(audit(cli, project, {"REDIS_URL": "redis://:topsecret@127.0.0.1:1/0"}), 3)
    assert "connection refused" in error and "topsecret" not in error and "***" in error


@pytest.mark.parametrize("url", ["http://localhost:6379", "redis://localhost:port/0", "redis:///0",
                                 "redis://localhost:6379/zero"])
def test_a_url_that_does_not_parse_is_exit_2(cli, project, url):
    error = one_error_line(audit(cli, project, None, "--redis-url", url), 2)
    assert error.startswith("error: --redis-url: ")
    env_error = one_error_line(audit(cli, project, {"REDIS_URL": url}), 2)
    assert "REDIS_URL: " in env_error


def _as_user(user: str, password: str) -> str:
    """The session's Redis URL, logging in as `user`."""
    base = os.environ["REDIS_URL"]
    if base.startswith("unix://"):
        return base.replace("unix://", f"unix://{user}:{password}@", 1)
    return base.replace("://", f"://{user}:{password}@", 1).replace("@:", "@", 1)


def test_a_wrong_password_is_exit_3(cli, project):
    conn = current_redis()
    conn.acl_setuser("dbtool_tester", enabled=True, passwords=["+right-pw"], keys=["*"], commands=["+@all"])
    try:
        url = _as_user("dbtool_tester", "wrong-pw")
        error = one_error_line(audit(cli, project, {"REDIS_URL": url}), 3)
        assert "wrong password" in error and "wrong-pw" not in error
    finally:
        conn.acl_deluser("dbtool_tester")


class _FixedReply(socketserver.BaseRequestHandler):
    """Answers every read with the server's fixed bytes: a real TCP server that is not Redis."""

    def handle(self) -> None:
        while self.request.recv(65536):
            self.request.sendall(self.server.reply)


@pytest.fixture
def wrong_server():
    """Start a server on 127.0.0.1 answering `reply` to everything; its redis:// URL."""
    servers = []

    def start(reply: bytes) -> str:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _FixedReply)
        server.daemon_threads, server.reply = True, reply
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"redis://:s3cret@127.0.0.1:{server.server_address[1]}/0"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("reply, told", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n",
     "what answered does not speak the Redis protocol (Protocol Error: b'HTTP/1.1 400 Bad Request');"
     " check the host and port point at a Redis server"),
    (b"-ERR unknown command\r\n",
     "it refused the connection handshake (unknown command); check the host and port point at a Redis server"),
    (b"+PONG\r\n", "it answered the connection handshake with b'PONG'; check the host and port point at a"
                    " Redis server"),
    (b"-NOPERM no permission\r\n", "the ACL user 'default' lacks a permission (no permission); grant that user"
                                    " the command (ACL SETUSER default +<command>)"),
], ids=["http", "unknown-command", "pong", "noperm"])
def test_a_server_that_is_not_a_usable_redis_is_exit_3(cli, project, migrated, wrong_server, reply, told):
    url = wrong_server(reply)
    masked = url.replace("s3cret", "***")
    error = one_error_line(audit(cli, project, None, "--redis-url", url), 3)
    assert error == f"error: cannot use Redis at {masked}: {told}"
    _, env = migrated
    refs = one_error_line(cli("check-references", "chat", "--schemas-dir", project / "schemas",
                              env={**env, "CHAT_REDIS_URL": url}), 3)
    assert refs == error


def test_every_wrong_handshake_reply_is_exit_3(cli, project, wrong_server):
    """+PONG without a password (redis-py parses HELLO's reply) and to SELECT (a database other than 0)."""
    address = wrong_server(b"+PONG\r\n").split("@")[1].split("/")[0]
    for target, told in [(f"redis://{address}/0", "with b'PONG'"),
                         (f"redis://:s3cret@{address}/2", "wrongly (Invalid Database)")]:
        error = one_error_line(audit(cli, project, None, "--redis-url", target), 3)
        assert error == (f"error: cannot use Redis at {locate.mask(target)}: it answered the connection handshake"
                         f" {told}; check the host and port point at a Redis server")


def test_a_database_number_redis_lacks_is_exit_3(cli, project):
    base = os.environ["REDIS_URL"]
    url = base.split("?")[0] + "?db=9999" if base.startswith("unix://") else base.rsplit("/", 1)[0] + "/9999"
    error = one_error_line(audit(cli, project, {"REDIS_URL": url}), 3)
    assert error.endswith(": it refused the connection handshake (DB index is out of range); fix the database"
                          " number in the Redis URL"), error


def test_a_command_the_acl_user_lacks_is_exit_3_and_named(cli, project):
    conn = current_redis()
    conn.acl_setuser("dbtool_scanless", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-scan"])
    try:
        url = _as_user("dbtool_scanless", "pw")
        error = one_error_line(audit(cli, project, {"REDIS_URL": url}), 3)
        assert error.endswith(": the ACL user 'dbtool_scanless' may not run SCAN; grant it"
                              " (ACL SETUSER dbtool_scanless +scan)"), error
    finally:
        conn.acl_deluser("dbtool_scanless")


def test_a_bad_fail_on_level_and_sample_are_exit_2(cli, project):
    assert "--fail-on: unknown level 'loud'" in one_error_line(audit(cli, project, None, "--fail-on", "loud"), 2)
    assert "--sample 0" in one_error_line(audit(cli, project, None, "--sample", "0"), 2)


# ------------------------------------------------------------------ seed and audit


def test_seed_fills_the_context_cache_and_the_audit_is_clean(cli, project, migrated):
    dbs, env = migrated
    seeded = cli("seed", "chat", "--schemas-dir", project / "schemas", env=env)
    assert seeded.exit_code == 0, seeded.output
    assert "cached the context of 3 chat session(s), 0 already cached" in seeded.stdout
    conn = current_redis()
    doc = json.loads(conn.get(f"chat:context:{SEEDED_SESSIONS[1]}"))
    assert doc["message_count"] == 4 and [m["role"] for m in doc["messages"]] == ["user", "assistant"] * 2
    assert 3590 < conn.ttl(f"chat:context:{SEEDED_SESSIONS[1]}") <= 3600

    again = cli("seed", "chat", "--schemas-dir", project / "schemas", env=env)
    assert "0 chat session(s), 3 already cached" in again.stdout
    assert sorted(conn.keys("chat:context:*")) == sorted(f"chat:context:{s}" for s in SEEDED_SESSIONS)

    result = audit(cli, project, env, "--fail-on", "info", "--json")
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["findings"] == [] and report["keys"] == 3
    assert {p["pattern"]: p["keys"] for p in report["patterns"]}["chat:context:{session_id}"] == 3
    assert report["round_trips"] == report["scan_batches"] + report["inspect_calls"] >= 2

    text = audit(cli, project, env)
    assert "chat:context:{session_id}" in text.stdout and "0 finding(s)" in text.stdout
    refs = cli("check-references", "chat", "--json", "--schemas-dir", project / "schemas", env=env)
    assert refs.exit_code == 0, refs.output
    assert {"service": "chat", "column": "chat:context:{session_id}", "redis_key": "chat:context:{session_id}",
            "points_at": "chat.chat_sessions.id", "rows": 3, "dangling": {"rows": 0, "examples": []},
            "stale_copies": {}} in json.loads(refs.stdout)


def test_seed_succeeds_when_redis_is_down(cli, project, migrated):
    _, env = migrated
    result = cli("seed", "chat", "--schemas-dir", project / "schemas", env={**env, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 0, result.output
    assert "redis: context cache not filled (cannot connect to Redis at redis://127.0.0.1:1/0: connection refused" \
           in result.stdout and "the database is seeded" in result.stdout


def test_seed_at_scale_caches_a_bounded_number_of_recent_sessions(cli, project, migrated):
    _, env = migrated
    result = cli("seed", "chat", "--scale", "1", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.output
    assert "cached the context of 50 chat session(s)" in result.stdout  # scale 1: 50 sessions, under the bound
    assert len(current_redis().keys("chat:context:*")) == 50


def test_the_audit_reports_every_kind_of_finding(cli, project, migrated):
    _, env = migrated
    assert cli("seed", "chat", "course", "--schemas-dir", project / "schemas", env=env).exit_code == 0
    conn = current_redis()
    good = {"messages": [], "message_count": 0, "last_updated": "2025-03-01T10:05:00Z"}
    conn.set(f"chat:context:{NO_SESSION}", json.dumps(good), ex=100)  # dangling
    conn.set("chat:context:00000000-0000-4000-8000-000000000999", "{not json", ex=100)  # bad JSON: a finding
    conn.set(f"chat:context:{SEEDED_SESSIONS[0]}", json.dumps({**good, "message_count": "2"}), ex=7200)
    conn.delete(f"chat:context:{SEEDED_SESSIONS[2]}")
    conn.hset(f"chat:context:{SEEDED_SESSIONS[2]}", "messages", "[]")  # wrong type, no TTL
    conn.set("chat:context:not-a-uuid", json.dumps(good), ex=100)
    conn.set("chat:sessions:cache", "1")  # stray
    conn.set("chat:ratelimit:00000000-0000-4000-8000-000000000201:20250301", "3", ex=60)  # fine
    conn.set("chat:ratelimit:00000000-0000-4000-8000-000000000201:20251399", "x", ex=60)
    conn.set("course:cache:list", json.dumps(["course"] * 200_000), ex=300)  # over 1 MB

    result = audit(cli, project, env, "--json", "--fail-on", "warning")
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.stdout)
    found = {(f["kind"], f["pattern"]): f for f in report["findings"]}
    context = "chat:context:{session_id}"
    assert found[("bad-json", context)]["level"] == "error"
    assert found[("wrong-type", context)]["examples"] == [f"chat:context:{SEEDED_SESSIONS[2]}"]
    assert found[("no-ttl", context)]["count"] == 1
    assert found[("ttl-too-long", context)]["detail"].startswith(("TTL 72", "TTL 71"))
    assert "field 'message_count' is a string, declared integer" in found[("wrong-shape", context)]["detail"]
    assert found[("bad-placeholder", context)]["examples"] == ["chat:context:not-a-uuid"]
    assert found[("dangling", context)]["examples"] == [f"chat:context:{NO_SESSION}"] or \
        f"chat:context:{NO_SESSION}" in found[("dangling", context)]["examples"]
    assert found[("stray", "chat:sessions:*")]["count"] == 1
    ratelimit = "chat:ratelimit:{user_id}:{day}"
    assert found[("bad-placeholder", ratelimit)]["count"] == 1 and found[("wrong-shape", ratelimit)]["count"] == 1
    assert found[("too-large", "course:cache:list")]["detail"].endswith("declared at most 1,048,576")
    assert {f["level"] for f in report["findings"]} <= {"error", "warning"}

    # Only warnings and errors: --fail-on error still fails on the bad JSON; no flag never fails.
    assert audit(cli, project, env, "--fail-on", "error").exit_code == 1
    text = audit(cli, project, env)
    assert text.exit_code == 0 and "bad-json" in text.stdout and "Traceback" not in text.output
    assert all(len(line) <= 200 for line in text.stdout.splitlines())
    chat_only = json.loads(audit(cli, project, env, "chat", "--json").stdout)[0]
    assert chat_only["services"] == ["chat"] and all(f["service"] == "chat" for f in chat_only["findings"])

    refs = cli("check-references", "chat", "--schemas-dir", project / "schemas", env=env)
    assert refs.exit_code == 1
    assert "redis chat:context:{session_id}: {session_id} -> chat.chat_sessions.id:" in refs.stdout


def test_sample_bounds_the_value_checks_per_pattern(cli, project, migrated):
    _, env = migrated
    conn = current_redis()
    for n in range(30):
        conn.set(f"chat:ratelimit:00000000-0000-4000-8000-{n:012d}:20250301", "x", ex=60)  # no integer
    result = audit(cli, project, env, "chat", "--sample", "5", "--json")
    (report,) = json.loads(result.stdout)
    stats = {p["name"]: p for p in report["patterns"]}
    assert (stats["ratelimit"]["keys"], stats["ratelimit"]["checked"]) == (30, 5)
    shape = [f for f in report["findings"] if f["kind"] == "wrong-shape"]
    assert shape[0]["count"] == 5


def test_an_audit_with_no_declared_keys_is_bad_input(cli, project):
    for path in (project / "schemas").glob("*/redis.toml"):
        path.unlink()
    error = one_error_line(audit(cli, project, None), 2)
    assert "no selected service declares Redis keys" in error


def test_socket_paths_fit_the_unix_limit(tmp_path: Path):
    deep = tmp_path / ("d" * 120)
    assert len(str(locate.socket_path(deep))) < 108

"""The real Redis of a test session: DBTOOL_TEST_REDIS_URL if set, else dbtool's embedded redis-server.

Each test gets a database number of its own, flushed first, so keys never leak between tests.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dbtool.redis import locate

DATABASES = 16  # what any Redis has by default; db 0 stays for the session's own use


class TestRedis:
    def __init__(self) -> None:
        self.kind = "none"
        self.base = ""
        self._dir: Path | None = None
        self._numbers = itertools.cycle(range(1, DATABASES))

    def start(self) -> None:
        if os.environ.get("DBTOOL_TEST_REDIS_URL"):
            self.kind, self.base = "DBTOOL_TEST_REDIS_URL", os.environ["DBTOOL_TEST_REDIS_URL"]
        else:
            self._dir = Path(tempfile.mkdtemp(prefix="dbtool-redis-"))
            self.kind, self.base = "embedded", locate.start(self._dir)

    def stop(self) -> None:
        if self._dir is not None:
            locate.stop(self._dir)
            shutil.rmtree(self._dir, ignore_errors=True)

    def fresh_url(self) -> str:
        """The URL of the next database number, emptied."""
        import redis

        number = next(self._numbers)
        parts = urlsplit(self.base)
        if parts.scheme == "unix":
            url = f"{self.base.split('?')[0]}?db={number}"  # urlunsplit would drop the '//' of unix://
        else:
            url = urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))
        with redis.Redis.from_url(url) as conn:
            conn.flushdb()
        return url


REDIS = TestRedis()

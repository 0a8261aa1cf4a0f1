"""Login passwords from the environment, sent as SCRAM hashes so the password itself never leaves."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Mapping

import psycopg

from .names import password_variable

_SCRAM = re.compile(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)")


def password_for(role: str, environ: Mapping[str, str]) -> str | None:
    return environ.get(password_variable(role)) or None


def matches(stored: str | None, password: str) -> bool:
    """Whether a pg_authid SCRAM verifier was made from this password (its server key, RFC 5802)."""
    found = _SCRAM.fullmatch(stored or "")
    if not found:
        return False  # no password, or an md5 one: set it again
    iterations, salt = int(found[1]), base64.b64decode(found[2])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return hmac.compare_digest(server_key, base64.b64decode(found[4]))


def verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    """The SCRAM verifier libpq computes on this side, so the server never sees the password."""
    return conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()

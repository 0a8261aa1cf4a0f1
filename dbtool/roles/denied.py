"""A refused privilege (SQLSTATE 42501) as one line: the privilege, the object and the GRANT that gives it.

PostgreSQL names the object ("permission denied for table users") but not the privilege; whoever
knows the statement passes it, else the one a dbtool command most often needs on that kind of object
is named.
"""

from __future__ import annotations

import re

_DENIED = re.compile(r"permission denied for (materialized view|table|view|relation|sequence|schema|function|"
                     r"procedure|routine|database|type) (.+)$")
_NOT_OWNER = re.compile(r"must be owner of (materialized view|table|view|relation|sequence|schema|function|"
                        r"procedure|routine|database|type|index) (.+)$")
# The privilege a command most often lacks on each kind of object.
_LIKELY = {"schema": "CREATE", "sequence": "USAGE", "function": "EXECUTE", "procedure": "EXECUTE",
           "routine": "EXECUTE", "database": "CONNECT", "type": "USAGE"}
_GRANT_WORD = {"view": "TABLE", "materialized view": "TABLE", "relation": "TABLE"}
_ALTER_WORD = {"relation": "TABLE", "index": "INDEX"}
_FIRST_WORD = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(\w+)", re.S)
_STATEMENT_PRIVILEGE = {"select": "SELECT", "with": "SELECT", "insert": "INSERT", "copy": "INSERT",
                        "update": "UPDATE", "delete": "DELETE", "truncate": "TRUNCATE", "create": "CREATE"}


def privilege_of(statement: str) -> str | None:
    """The privilege a statement needs on the object it names, from its first word."""
    found = _FIRST_WORD.match(statement)
    return _STATEMENT_PRIVILEGE.get(found[1].lower()) if found else None


def explain(message: str, privilege: str | None = None, role: str | None = None) -> str:
    who = role or "<role>"
    message = message.strip().splitlines()[0] if message.strip() else "permission denied"
    owner_fix = "or run dbtool as the service's owner role (see dbtool roles)"
    if found := _DENIED.match(message):
        kind, name = found.groups()
        if kind == "schema" and privilege is not None and privilege not in ("CREATE", "USAGE"):
            privilege = "USAGE"  # reading or writing a table in a schema needs USAGE on the schema
        wanted = privilege or _LIKELY.get(kind, "SELECT")
        word = _GRANT_WORD.get(kind, kind.upper())
        return (f"permission denied: {role or 'this role'} lacks {wanted} on {kind} {name}; as its owner"
                f" run GRANT {wanted} ON {word} {name} TO {who}, {owner_fix}")
    if found := _NOT_OWNER.match(message):
        kind, name = found.groups()
        word = _ALTER_WORD.get(kind, kind.upper())
        return (f"permission denied: only the owner of {kind} {name} may alter or drop it; run dbtool as the"
                f" owner role (dbtool roles moves ownership to it), or ALTER {word} {name} OWNER TO {who}")
    return (f"permission denied: {message}; GRANT the privilege it names to this role (as the owner or a"
            f" superuser), {owner_fix}")

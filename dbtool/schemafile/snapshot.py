"""A catalog snapshot of a database's schema (columns, constraints, indexes, triggers, functions) for tests and comparisons.
"""

from __future__ import annotations

import psycopg

from ..migrate.state import TRACKING_TABLES

# One query per kind of object, whatever the size of the schema.
_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum"""


_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid, true)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema()
ORDER BY c.relname, k.conname"""


_INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(i.oid)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = current_schema()
ORDER BY t.relname, i.relname"""


_TRIGGERS = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid, true)
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND NOT t.tgisinternal
ORDER BY c.relname, t.tgname"""


_FUNCTIONS = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(pg_get_functiondef(p.oid))
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.prokind IN ('f', 'p')
ORDER BY 1, 2"""


def snapshot(conn: psycopg.Connection, include_tracking: bool = False) -> dict:
    """Tables with columns, constraints, indexes and triggers, plus functions; dbtool's own tables left out."""
    skip = set() if include_tracking else set(TRACKING_TABLES)
    tables: dict[str, dict] = {}

    def table(name: str) -> dict:
        return tables.setdefault(name, {"columns": {}, "constraints": {}, "indexes": {}, "triggers": {}})

    for rel, col, typ, notnull, default in conn.execute(_COLUMNS):
        if rel not in skip:
            table(rel)["columns"][col] = {"type": typ, "not_null": notnull, "default": default}
    for rel, name, kind, definition in conn.execute(_CONSTRAINTS):
        if rel not in skip:
            table(rel)["constraints"][name] = {"type": kind, "definition": definition}
    for rel, name, definition in conn.execute(_INDEXES):
        if rel not in skip:
            table(rel)["indexes"][name] = definition
    for rel, name, definition in conn.execute(_TRIGGERS):
        if rel not in skip:
            table(rel)["triggers"][name] = definition
    functions = {f"{name}({args})": digest for name, args, digest in conn.execute(_FUNCTIONS)}
    return {"tables": tables, "functions": functions}

"""Looking before queueing: a migration does not ask for a lock that a long transaction holds.

A lock request that waits holds up every later request on its table, because PostgreSQL queues
them behind it; so even a wait bounded by lock_timeout stalls the table's writers for that long.
Before each attempt dbtool reads pg_locks: when a session whose transaction has been open longer
than a quarter of the lock timeout holds a lock on a table the migration needs, in a mode that
conflicts with the mode the migration will ask for, the attempt is not made. Nothing queues and no
writer stalls; the migration waits for that session as it would after a lock timeout. A young
transaction is likely to end within the wait, so the attempt is made and lock_timeout bounds it.

Which tables and modes a migration needs is read from its statements with PostgreSQL's parser
(pglast), only when an old transaction holds some lock in the database at all.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .blockers import Blocker, redacted_query
from .locks import LockPolicy

if TYPE_CHECKING:
    import psycopg

# pg_locks' modes, weakest first, and which held modes each requested mode waits for
# (the table in PostgreSQL's documentation, "Conflicting Lock Modes").
_MODES = ["AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
          "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"]
_CONFLICTS = {
    "AccessShareLock": {"AccessExclusiveLock"},
    "RowShareLock": {"ExclusiveLock", "AccessExclusiveLock"},
    "RowExclusiveLock": {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"},
    "ShareUpdateExclusiveLock": {"ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                                 "ExclusiveLock", "AccessExclusiveLock"},
    "ShareLock": {"RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareRowExclusiveLock", "ExclusiveLock",
                  "AccessExclusiveLock"},
    "ShareRowExclusiveLock": set(_MODES[2:]),
    "ExclusiveLock": set(_MODES[1:]),
    "AccessExclusiveLock": set(_MODES),
}

# Granted relation locks of other sessions, but for those known to be younger than the patience.
# A session of another role shows a migrator without pg_read_all_stats no xact_start: its locks come
# back too, and Look times them itself.
_HOLDERS = """
SELECT l.relation::oid, l.relation::regclass::text, l.mode, l.pid, l.virtualtransaction,
       coalesce(nullif(a.application_name, ''), '?'), coalesce(a.state, '?'),
       extract(epoch FROM now() - a.xact_start), left(split_part(a.query, E'\\n', 1), 60)
FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (a.xact_start IS NULL OR a.xact_start <= now() - make_interval(secs => %s))
ORDER BY a.xact_start NULLS LAST
"""
# A name as the migration writes it, to the table it locks: an index stands for its table too,
# since building, dropping or altering an index locks the table.
_RESOLVE = """
SELECT n.name, r.oid, i.indrelid FROM unnest(%s::text[]) AS n(name)
CROSS JOIN LATERAL (SELECT to_regclass(n.name)::oid AS oid) r
LEFT JOIN pg_index i ON i.indexrelid = r.oid
WHERE r.oid IS NOT NULL
"""


def _stronger(a: str | None, b: str) -> str:
    return b if a is None or _MODES.index(b) > _MODES.index(a) else a


def _quoted(*parts: str | None) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts if p)


def needs(sql: str) -> dict[str, str]:
    """The relations the statements lock, as quoted names, each with the strongest mode asked for.

    What is not known to be weaker is taken as ACCESS EXCLUSIVE: waiting needlessly for a long
    transaction is a slower migration, queueing behind one is an outage."""
    from pglast import ast, enums, parse_sql

    from ..lint.naming import walk

    found: dict[str, str] = {}

    def want(name: str, mode: str) -> None:
        found[name] = _stronger(found.get(name), mode)

    def rel(node: ast.RangeVar) -> str:
        return _quoted(node.schemaname, node.relname)

    weak_alters = {enums.AlterTableType.AT_ValidateConstraint: "ShareUpdateExclusiveLock",
                   enums.AlterTableType.AT_SetStatistics: "ShareUpdateExclusiveLock"}
    for raw in parse_sql(sql):
        stmt = raw.stmt
        target: str | None = None
        if isinstance(stmt, ast.IndexStmt):
            target = rel(stmt.relation)
            want(target, "ShareUpdateExclusiveLock" if stmt.concurrent else "ShareLock")
        elif isinstance(stmt, ast.CreateTrigStmt):
            target = rel(stmt.relation)
            want(target, "ShareRowExclusiveLock")
        elif isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
            target = rel(stmt.relation)
            want(target, "RowExclusiveLock")
        elif isinstance(stmt, ast.AlterTableStmt):
            target = rel(stmt.relation)
            for cmd in stmt.cmds or ():
                mode = weak_alters.get(cmd.subtype, "AccessExclusiveLock")
                if isinstance(cmd.def_, ast.Constraint) and cmd.def_.contype == enums.ConstrType.CONSTR_FOREIGN:
                    mode = "ShareRowExclusiveLock"  # and the same on the referenced table, below
                want(target, mode)
        elif isinstance(stmt, ast.DropStmt) and stmt.removeType in (
                enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_INDEX, enums.ObjectType.OBJECT_VIEW,
                enums.ObjectType.OBJECT_MATVIEW, enums.ObjectType.OBJECT_SEQUENCE):
            mode = "ShareUpdateExclusiveLock" if stmt.concurrent else "AccessExclusiveLock"
            for obj in stmt.objects or ():
                want(_quoted(*(s.sval for s in obj)), mode)
        elif isinstance(stmt, ast.ViewStmt):
            target = rel(stmt.view)  # OR REPLACE of an existing view
            want(target, "AccessExclusiveLock")
        elif isinstance(stmt, ast.CreateStmt):
            for parent in stmt.inhRelations or ():  # INHERITS, PARTITION OF: the parent changes too
                want(rel(parent), "AccessExclusiveLock")
        elif getattr(stmt, "relation", None) is not None and isinstance(stmt.relation, ast.RangeVar):
            target = rel(stmt.relation)  # RENAME, TRUNCATE's kin, CLUSTER, ...: assume the worst
            want(target, "AccessExclusiveLock")
        for node in walk(stmt):
            if isinstance(node, ast.Constraint) and node.pktable is not None:
                want(rel(node.pktable), "ShareRowExclusiveLock")  # a foreign key locks what it references
            elif isinstance(node, ast.RangeVar) and rel(node) != target:
                want(rel(node), "AccessShareLock")  # read: a view's tables, INSERT ... SELECT's source
        if isinstance(stmt, ast.TruncateStmt):
            for node in stmt.relations or ():
                want(rel(node), "AccessExclusiveLock")
    return found


class Look:
    """Called before each attempt: a description of the old transaction the migration would queue
    behind ("users held by pid 4242 (...)"), or None when it is safe to ask for the locks.

    How old a transaction is comes from pg_stat_activity where the role may see it; where it may not
    (another role's session, for a least-privilege migrator), from how long this Look has seen that
    transaction hold its lock: the first attempt goes ahead, bounded by the lock timeout, and a
    transaction still holding the lock after it counts as old."""

    def __init__(self, conn: psycopg.Connection, sql: str, policy: LockPolicy):
        self.conn, self.sql, self.policy = conn, sql, policy
        self._needs: dict[str, str] | None = None
        self._seen: dict[str, float] = {}  # virtual transaction -> when first seen holding a lock
        self._ahead: psycopg.Cursor | None = None  # the first look, sent ahead (prefetch)

    def prefetch(self) -> None:
        """Send the first look now, in the caller's pipeline, to save it a round trip; the first call
        reads its rows."""
        if self.policy.lock_timeout > 0:
            self._ahead = self.conn.execute(_HOLDERS, (self.policy.patience,), prepare=True)

    def __call__(self, older_than: float | None = None) -> str | None:
        """`older_than` seconds (default: the policy's patience); 0 names any holder, which is how a
        lock timeout too short for the watcher still names who held the lock."""
        import psycopg

        if self.policy.lock_timeout <= 0:
            return None  # told to wait as long as it takes: queueing is what was asked for
        patience = self.policy.patience if older_than is None else older_than
        ahead, self._ahead = self._ahead, None
        if ahead is not None and older_than is None:
            holders = ahead.fetchall()
        else:
            # Prepared at once: a migration looks before each attempt, and planning this join of two
            # views costs the server more than running it.
            holders = self.conn.execute(_HOLDERS, (patience,), prepare=True).fetchall()
        now = time.monotonic()
        for row in holders:
            self._seen.setdefault(row[4], now)
        if not holders:
            return None  # the common case: one catalog read, no parse
        if self._needs is None:
            try:
                self._needs = needs(self.sql)
            except Exception:  # pglast cannot read it (validate would have said): fall back to lock_timeout
                self._needs = {}
        if not self._needs:
            return None
        try:
            resolved = self.conn.execute(_RESOLVE, (list(self._needs),)).fetchall()
        except psycopg.Error:
            return None
        wanted: dict[int, str] = {}
        for name, oid, table in resolved:
            for target in {oid, table} - {None}:
                wanted[target] = _stronger(wanted.get(target), self._needs[name])
        for oid, relname, mode, pid, vxid, app, state, age, query in holders:
            if oid not in wanted or mode not in _CONFLICTS[wanted[oid]]:
                continue
            if age is not None:
                shown = redacted_query(query or "", [self.conn.info.password or ""])
                return f"{relname} held by {Blocker(pid, app, state, float(age), shown).describe()}"
            held_for = now - self._seen[vxid]
            if held_for >= patience:
                return (f"{relname} held by pid {pid} (a session this role may not see into, holding it for at"
                        f" least {held_for:.1f}s)")
        return None

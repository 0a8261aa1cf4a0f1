"""A service's migration files: names, up/down pairs, checksums, and validating the tree offline
(what each file's text says is sqltext's).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Settings, plain_bytes, select_services
from ..errors import BadInput, MigrationTreeError, Refused
from .sqltext import (
    Statement,
    batches,
    client_copy_line,
    first_words,
    has_sql,
    may_control_transaction,
    split_sql,
    transaction_control,
    transactional,
)

FILE_NAME = re.compile(r"^(?P<version>\d{3,})_(?P<name>[a-z][a-z0-9]*(?:_[a-z0-9]+)*)(?P<down>\.down)?\.sql$")


# A down file that cannot undo its up file says so; rollback then refuses instead of doing nothing.
IRREVERSIBLE = re.compile(r"^\s*--\s*dbtool:\s*irreversible\b", re.MULTILINE | re.IGNORECASE)


# Files that live beside migrations but are not migrations.
NOT_MIGRATIONS = {"schema.sql"}


def parse_file_name(name: str) -> tuple[int, str, bool] | None:
    """(version, name, is_down) for a migration file name, None for anything else."""
    match = FILE_NAME.match(name)
    if not match:
        return None
    return int(match["version"]), match["name"], match["down"] is not None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Migration:
    service: str
    version: int
    name: str
    up: Path
    down: Path
    up_bytes: bytes = field(repr=False)
    down_bytes: bytes = field(repr=False)

    @property
    def id(self) -> str:
        """The up file's name without .sql: what yoyo's tracking table shows."""
        return self.up.name[: -len(".sql")]

    @property
    def hash(self) -> str:
        """The key of yoyo's tracking rows: the sha256 of the id (yoyo's get_migration_hash; a test
        holds the two equal, so that reading state need not load yoyo)."""
        return hashlib.sha256(self.id.encode("utf-8")).hexdigest()

    @property
    def up_checksum(self) -> str:
        return sha256(self.up_bytes)

    @property
    def down_checksum(self) -> str:
        return sha256(self.down_bytes)

    @property
    def irreversible(self) -> bool:
        return bool(IRREVERSIBLE.search(self.text("down"))) and not self.statements("down")

    def transactional(self, direction: str = "up") -> bool:
        return transactional(self.text(direction))

    def statements(self, direction: str = "up") -> list[Statement]:
        return split_sql(self.text(direction))[1]

    def batches(self, direction: str = "up") -> list[Statement]:
        """What the runner sends, one message each (sqltext.batches)."""
        return batches(self.text(direction), self.transactional(direction))

    def text(self, direction: str = "up") -> str:
        return (self.up_bytes if direction == "up" else self.down_bytes).decode("utf-8")

    def path(self, direction: str) -> Path:
        return self.up if direction == "up" else self.down


def _content_problem(path: Path, data: bytes, is_down: bool) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8"
    if text.startswith("\ufeff"):  # yoyo and the server would read it as part of the first word
        return f"{path}: starts with a byte order mark; save the file as UTF-8 without BOM"
    if not has_sql(text) and not (is_down and IRREVERSIBLE.search(text)):
        hint = " or mark it '-- dbtool: irreversible <reason>'" if is_down else ""
        return f"{path}: has no SQL statement; write the migration{hint}"
    line = client_copy_line(text)
    if line:
        return (f"{path}:{line}: COPY with STDIN or STDOUT streams rows through psql, and a migration has"
                " no such stream; write the rows as INSERT statements, or load them with dbtool seed")
    from .locks import (
        directive_problem,  # a bad -- lock-timeout: fails validate, before any database
    )

    return directive_problem(text, path)


def load_tree(service_dir: Path) -> list[Migration]:
    """Every migration of one service, in order; MigrationTreeError lists every problem found."""
    service = service_dir.name
    problems: list[str] = []
    all_ups: dict[int, list[Path]] = {}
    all_downs: dict[int, list[Path]] = {}
    contents: dict[Path, bytes] = {}
    if not service_dir.is_dir():
        raise BadInput(f"{service_dir}: no such service folder; create it or check the name")
    for path in sorted(service_dir.iterdir()):
        if path.is_dir() or path.suffix != ".sql" or path.name in NOT_MIGRATIONS:
            continue
        parsed = parse_file_name(path.name)
        if parsed is None:
            problems.append(
                f"{path}: not a migration file name; rename it NNN_snake_case.sql or NNN_snake_case.down.sql"
            )
            continue
        version, _, is_down = parsed
        (all_downs if is_down else all_ups).setdefault(version, []).append(path)
        try:
            contents[path] = data = plain_bytes(path)
        except BadInput as exc:
            problems.append(str(exc))
            continue
        problem = _content_problem(path, data, is_down)
        if problem:
            problems.append(problem)
    ups = {v: paths[0] for v, paths in all_ups.items()}
    downs = {v: paths[0] for v, paths in all_downs.items()}
    for version, paths in all_ups.items():
        for extra in paths[1:]:
            problems.append(f"{extra}: duplicate number {version:03d} (also {paths[0].name}); renumber one")
    for version, paths in all_downs.items():
        up_stems = {p.name[:-4] for p in all_ups.get(version, [])}
        for extra in paths[1:]:
            # A duplicated down file that pairs with a duplicated up file is the same clash, told once.
            if extra.name[: -len(".down.sql")] not in up_stems or len(up_stems) < 2:
                problems.append(f"{extra}: duplicate number {version:03d} (also {paths[0].name}); renumber one")
    for version, up in ups.items():
        down = downs.get(version)
        if down is None:
            problems.append(f"{up}: has no down file; add {up.name[:-4]}.down.sql")
        elif down.name != up.name[:-4] + ".down.sql":
            problems.append(f"{down}: does not match its up file {up.name}; rename it {up.name[:-4]}.down.sql")
    for version, down in downs.items():
        if version not in ups:
            problems.append(f"{down}: down file without an up file; add {down.name.replace('.down', '')} or delete it")
    if 0 in ups:  # not a gap below 001: a number the tree never starts at
        up = ups[0]
        name = parse_file_name(up.name)[1]  # type: ignore[index]
        fix = (f"rename it 001_{name}.sql and its down file 001_{name}.down.sql" if 1 not in ups else
               f"renumber from 001: this one becomes 001_{name}.sql (its down file too), each after it one up")
        problems.append(f"{up}: migration numbers start at 001, not {up.name.split('_', 1)[0]}; {fix}")
    expected = 1
    for version in sorted(v for v in ups if v != 0):
        if version != expected:
            missing = f"{expected:03d}" if version == expected + 1 else f"{expected:03d} to {version - 1:03d}"
            problems.append(f"{ups[version]}: gap before it, no migration {missing}; renumber to close the gap")
        expected = version + 1
    if problems:
        raise MigrationTreeError(problems)
    migrations = []
    for version in sorted(ups):
        up, down = ups[version], downs[version]
        name = parse_file_name(up.name)[1]  # type: ignore[index]
        migrations.append(Migration(service, version, name, up, down, contents[up], contents[down]))
    return migrations


def load(settings: Settings, service: str) -> list[Migration]:
    return load_tree(settings.schemas_dir / service)


def validate(settings: Settings, services: list[str] | None, statements: bool = True) -> dict[str, list[Migration]]:
    """Check every selected service's tree; report every problem of every service at once.

    `statements=False` skips splitting the files (read-only callers such as status, which run nothing).
    """
    problems: list[str] = []
    trees = {}
    for service in select_services(settings, services):
        try:
            trees[service] = load(settings, service)
        except MigrationTreeError as exc:
            problems.extend(exc.problems)
            continue
        if statements:
            problems.extend(p for m in trees[service] for p in transaction_control_problems(m))
    if problems:
        raise MigrationTreeError(problems)
    return trees


def transaction_control_problems(m: Migration) -> list[str]:
    problems = []
    for direction in ("up", "down"):
        if not may_control_transaction(m.text(direction)) or not m.transactional(direction):
            continue
        for st in m.statements(direction):
            if transaction_control(st.sql):
                word = first_words(st.sql)
                problems.append(
                    f"{m.path(direction)}:{st.line}: {word} ends or replaces the one transaction dbtool runs"
                    " this migration and its record in; remove it and split the migration in two, or mark"
                    " the file '-- transactional: false' as its first line"
                )
    return problems


def new_migration(settings: Settings, service: str, name: str) -> tuple[Path, Path]:
    """Write the next numbered up/down pair of a service; the up file must be filled in before migrate."""
    select_services(settings, [service])
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    if not re.match(r"^[a-z][a-z0-9_]*$", slug):
        raise BadInput(f"NAME {name!r}: give a name that starts with a letter, e.g. add_user_bio_column")
    folder = settings.schemas_dir / service
    versions = [
        parsed[0]
        for p in folder.glob("*.sql")
        if (parsed := parse_file_name(p.name)) is not None
    ]
    version = max(versions, default=0) + 1
    stem = f"{version:03d}_{slug}"
    up, down = folder / f"{stem}.sql", folder / f"{stem}.down.sql"
    if up.exists() or down.exists():
        raise Refused(f"{up}: already exists; choose another name")
    up.write_text(f"-- Up migration {stem}: one change, reversed by {down.name}.\n", encoding="utf-8")
    down.write_text(f"-- Down migration {stem}: undo exactly what {up.name} does.\n", encoding="utf-8")
    return up, down

"""A service's tree as lint reads it: what migrate would refuse becomes a problem, every file is still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import plain_bytes
from ..errors import BadInput, MigrationTreeError
from ..migrate.tree import NOT_MIGRATIONS, Migration, load_tree, parse_file_name


@dataclass
class LintTree:
    migrations: list[Migration]
    problems: list[tuple[Path, str]] = field(default_factory=list)  # (file it is about, the sentence)
    loose: list[Path] = field(default_factory=list)  # .sql files no migration pairs: linted on their own


def read_tree(folder: Path) -> LintTree:
    try:
        return LintTree(load_tree(folder))
    except MigrationTreeError as exc:
        problems = exc.problems
    files = sorted(p for p in folder.glob("*.sql") if p.name not in NOT_MIGRATIONS)
    tree = LintTree([], [(_about(problem, files, folder), problem) for problem in problems])
    ups: dict[int, Path] = {}
    downs: dict[Path, Path] = {}
    for path in files:
        parsed = parse_file_name(path.name)
        if parsed is None:
            tree.loose.append(path)
        elif not parsed[2] and parsed[0] not in ups:
            ups[parsed[0]] = path
        elif not parsed[2]:
            tree.loose.append(path)  # a duplicate number: the first file takes the place in the order
    for path in files:
        parsed = parse_file_name(path.name)
        if parsed is not None and parsed[2]:
            up = ups.get(parsed[0])
            if up is not None and up.name[:-4] + ".down.sql" == path.name:
                downs[up] = path
            else:
                tree.loose.append(path)
    for version in sorted(ups):
        up = ups[version]
        down = downs.get(up, up.with_name(up.name[:-4] + ".down.sql"))  # missing: Linter skips its down
        up_bytes, down_bytes = utf8_bytes(up), utf8_bytes(down) if down.exists() else b""
        name = parse_file_name(up.name)[1]  # type: ignore[index]
        tree.migrations.append(Migration(folder.name, version, name, up, down, up_bytes, down_bytes))
    return tree


def _about(problem: str, files: list[Path], folder: Path) -> Path:
    return next((p for p in files if problem.startswith(f"{p}: ")), folder)


def utf8_bytes(path: Path) -> bytes:
    """A file's bytes, or the line validate gives when they are not UTF-8: skipping the file would
    pass it unread. Bytes, not config.read_utf8's text: a migration keeps its line endings."""
    data = plain_bytes(path)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    return data

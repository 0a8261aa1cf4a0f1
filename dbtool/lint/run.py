"""`dbtool lint` on paths: service folders, single migration files, folders of loose files.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings, discover_services
from ..errors import BadInput
from ..migrate.tree import NOT_MIGRATIONS, load_tree, parse_file_name
from .linter import Linter
from .rules import LintReport

FORMATS = ("text", "json", "github")


def output_format(fmt: str, as_json: bool) -> str:
    """--json is short for --format json, as on the other reporting commands."""
    if fmt not in FORMATS:
        raise BadInput(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return "json" if as_json else fmt


# Folders beside migrations that hold other SQL.
NOT_MIGRATION_FOLDERS = {"seeds", "queries"}


def lint(settings: Settings, paths: list[Path] | None = None) -> LintReport:
    """Lint each path (a service folder, a migration file, a folder of .sql files) or every service."""
    report = LintReport()
    if not paths:
        services = discover_services(settings.schemas_dir)
        if not services:
            raise BadInput(f"{settings.schemas_dir}: holds no service folders; add one, e.g. schemas/identity/")
        paths = [settings.schemas_dir / s for s in services]
    for path in paths:
        _lint_path(Path(path), report)
    order = {p: i for i, p in enumerate(dict.fromkeys(f.path for f in report.findings))}
    report.findings.sort(key=lambda f: (order[f.path], f.line, f.column))
    return report


def _lint_path(path: Path, report: LintReport) -> None:
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder; give a service folder, a migration file or a folder"
                       " of .sql files")
    if NOT_MIGRATION_FOLDERS & set(path.parts) or path.name in NOT_MIGRATIONS:
        raise BadInput(f"{path}: not a migration (seeds, queries and schema.sql are not linted);"
                       " give a service folder or a migration file")
    if path.is_file():
        _lint_file(path, report)
    elif any(parse_file_name(p.name) for p in path.glob("*.sql")):
        _lint_tree(path, report)
    elif any(path.glob("*.sql")):
        for p in sorted(path.glob("*.sql")):
            if p.name not in NOT_MIGRATIONS:
                _lint_loose(p, report)
    else:
        children = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))
                    and any(p.glob("*.sql"))]
        if not children:
            raise BadInput(f"{path}: holds no migrations; give a service folder or a migration file")
        for child in children:
            _lint_tree(child, report)


def _lint_tree(folder: Path, report: LintReport, version: int | None = None) -> None:
    """Lint a service's tree, reporting every file or only migration `version`'s pair.

    The whole tree is read either way: a migration is checked against what came before it, and the
    rules on what the tree leaves behind need its end.
    """
    tree = load_tree(folder)
    keep = {p for m in tree if m.version == version for p in (m.up, m.down)} if version is not None else None
    linter = Linter(report, keep)
    for m in tree:
        linter.migration(m)
    linter.final()
    report.files += 2 if version is not None else 2 * len(tree)


def _lint_file(path: Path, report: LintReport) -> None:
    if path.suffix != ".sql":
        raise BadInput(f"{path}: not a migration (.sql file); give a service folder or an NNN_name.sql file")
    parsed = parse_file_name(path.name)
    if parsed is None:
        _lint_loose(path, report)
    else:
        _lint_tree(path.parent, report, parsed[0])


def _lint_loose(path: Path, report: LintReport) -> None:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 (byte {exc.start}); save the file as UTF-8") from None
    linter = Linter(report)
    linter.loose(path, text)
    linter.final()
    report.files += 1

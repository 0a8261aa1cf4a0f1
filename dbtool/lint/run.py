"""`dbtool lint` on paths: service folders, single migration files, folders of loose files.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings, discover_services, load_toml
from ..errors import BadInput
from ..migrate.tree import NOT_MIGRATIONS, parse_file_name
from .linter import Linter
from .rules import RULE_SETS, RULES, Finding, LintReport
from .tree import read_tree, utf8_bytes

FORMATS = ("text", "json", "github")


def output_format(fmt: str, as_json: bool) -> str:
    """--json is short for --format json, as on the other reporting commands."""
    if fmt not in FORMATS:
        raise BadInput(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return "json" if as_json else fmt


# Folders beside migrations that hold other SQL.
NOT_MIGRATION_FOLDERS = {"seeds", "queries"}


def lint(settings: Settings, paths: list[Path] | None = None, rule_set: str | None = None) -> LintReport:
    """Lint each path (a service folder, a migration file, a folder of .sql files) or every service.

    rule_set ("all" or "safety") wins over a folder's [lint] rules; neither means every rule.
    """
    if rule_set is not None and rule_set not in RULE_SETS:
        raise BadInput(f"--rules: unknown rule set {rule_set!r}; use one of {', '.join(RULE_SETS)}")
    report = LintReport()
    if not paths:
        services = discover_services(settings.schemas_dir)
        if not services:
            raise BadInput(f"{settings.schemas_dir}: holds no service folders; add one, e.g. schemas/identity/")
        paths = [settings.schemas_dir / s for s in services]
    for path in paths:
        _lint_path(Path(path), report, rule_set)
    order = {p: i for i, p in enumerate(dict.fromkeys(f.path for f in report.findings))}
    report.findings.sort(key=lambda f: (order[f.path], f.line, f.column))
    return report


CONFIG_FILE = "dbtool.toml"


def chosen_rules(folder: Path, rule_set: str | None) -> frozenset[str]:
    """The rules for a folder's files: --rules, else [lint] rules in its dbtool.toml, else all."""
    path = folder / CONFIG_FILE
    if rule_set is None and path.is_file():
        section = load_toml(path).get("lint", {})
        if not isinstance(section, dict):
            raise BadInput(f"{path}: lint is not a table; write [lint] and rules = \"safety\" under it")
        for key in section:
            if key != "rules":
                raise BadInput(f"{path}: [lint] has no setting {key!r}; the only one is rules")
        rule_set = section.get("rules", "all")
        if rule_set not in RULE_SETS:
            raise BadInput(f"{path}: [lint] rules = {rule_set!r} is not a rule set; use one of"
                           f" {', '.join(repr(r) for r in RULE_SETS)}")
    return RULE_SETS[rule_set or "all"]


def _lint_path(path: Path, report: LintReport, rule_set: str | None) -> None:
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder; give a service folder, a migration file or a folder"
                       " of .sql files")
    if NOT_MIGRATION_FOLDERS & set(path.parts) or path.name in NOT_MIGRATIONS:
        raise BadInput(f"{path}: not a migration (seeds, queries and schema.sql are not linted);"
                       " give a service folder or a migration file")
    if not path.is_dir():  # a file; plain_bytes refuses a FIFO or a device by name
        _lint_file(path, report, rule_set)
        return
    sql = _sql_files(path)
    if any(parse_file_name(p.name) for p in sql):
        _lint_tree(path, report, chosen_rules(path, rule_set))
    elif sql:
        for p in sql:
            if p.name not in NOT_MIGRATIONS:
                _lint_loose(p, report, chosen_rules(path, rule_set))
    else:
        children = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))
                    and _sql_files(p)]
        if not children:
            raise BadInput(f"{path}: holds no migrations; give a service folder or a migration file")
        for child in children:
            _lint_tree(child, report, chosen_rules(child, rule_set))


def _sql_files(folder: Path) -> list[Path]:
    # Listed, not globbed: glob finds nothing in a folder it may not read, and lint would skip it unread.
    return sorted(p for p in folder.iterdir() if p.suffix == ".sql")


def _lint_tree(folder: Path, report: LintReport, rules: frozenset[str], version: int | None = None) -> None:
    """Lint a service's tree, reporting every file or only migration `version`'s pair.

    The whole tree is read either way: a migration is checked against what came before it, and the
    rules on what the tree leaves behind need its end. What migrate would refuse in the tree is a
    finding of its own; the files are linted all the same.
    """
    tree = read_tree(folder)
    mine = [m for m in tree.migrations if version is None or m.version == version]
    keep = {p for m in mine for p in (m.up, m.down)} if version is not None else None
    linter = Linter(report, keep, rules)
    for m in tree.migrations:
        linter.migration(m)
    linter.final()
    if "tree" in rules:
        for about, problem in tree.problems:
            if keep is None or about in keep:
                report.findings.append(_tree_finding(about, problem))
    report.files += sum(1 + m.down.exists() for m in mine)
    for path in tree.loose if version is None else ():
        _lint_loose(path, report, rules)


def _tree_finding(about: Path, problem: str) -> Finding:
    message, _, fix = problem.removeprefix(f"{about}: ").rpartition("; ")
    return Finding("tree", RULES["tree"], str(about), 1, 1, message or fix, fix if message else "")


def _lint_file(path: Path, report: LintReport, rule_set: str | None) -> None:
    if path.suffix != ".sql":
        raise BadInput(f"{path}: not a migration (.sql file); give a service folder or an NNN_name.sql file")
    parsed = parse_file_name(path.name)
    if parsed is None:
        _lint_loose(path, report, chosen_rules(path.parent, rule_set))
    else:
        _lint_tree(path.parent, report, chosen_rules(path.parent, rule_set), parsed[0])


def _lint_loose(path: Path, report: LintReport, rules: frozenset[str]) -> None:
    linter = Linter(report, rules=rules)
    linter.loose(path, utf8_bytes(path).decode("utf-8"))
    linter.final()
    report.files += 1

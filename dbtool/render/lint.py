"""What `dbtool lint` prints: text lines, JSON, or GitHub workflow annotations.
"""

from __future__ import annotations

from rich.markup import escape

from ..lint.rules import LintReport
from .console import emit_json, out


def lint(report: LintReport, fmt: str = "text") -> None:
    """Findings one a line: `path:line:col: level rule message (fix: ...)`, as JSON, or as GitHub annotations."""
    if fmt == "json":
        emit_json([f.as_dict() for f in report.findings])
        return
    if fmt == "github":
        for f in report.findings:
            props = ",".join(f"{k}={_gh_escape(str(v), True)}" for k, v in
                             (("file", f.path), ("line", f.line), ("col", f.column), ("title", f.rule)))
            print(f"::{f.level} {props}::{_gh_escape(f'{f.message} (fix: {f.fix})', False)}")
        return
    colours = {"error": "red", "warning": "yellow"}
    for f in report.findings:
        out.print(f"{f.path}:{f.line}:{f.column}: [{colours[f.level]}]{f.level}[/] [bold]{f.rule}[/] "
                  f"{_escape(f.message)} [dim](fix: {_escape(f.fix)})[/]")
    silenced = f", {len(report.silenced)} silenced by ignore comments" if report.silenced else ""
    out.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in {report.files} file(s){silenced}",
              markup=False)


def _escape(text: str) -> str:

    return escape(text)


def _gh_escape(text: str, property_value: bool) -> str:
    # GitHub's workflow-command encoding: these characters would end the value or the command.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text

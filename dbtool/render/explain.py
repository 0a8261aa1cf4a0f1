"""What `dbtool explain` prints, and its Markdown report.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from .console import emit_json, line, out, write_atomically


def explain_data(results: list) -> list[dict]:
    return [
        {
            "service": s.service,
            "database": s.where,
            "queries": [
                {
                    "name": r.query.name,
                    "file": str(r.query.path),
                    "description": r.query.description,
                    "params": {k: str(v) for k, v in r.values.items()},
                    "execution_ms": round(r.execution_ms, 3),
                    "planning_ms": round(r.planning_ms, 3),
                    "shape": r.shape,
                    "uses_index": r.uses_index,
                    "rows": {"estimated": r.estimated_rows, "actual": r.actual_rows},
                    "buffers": {"shared_hit": r.shared_hit, "shared_read": r.shared_read, "temp": r.temp_blocks},
                    "warnings": r.warnings,
                    "budget": {"max_ms": r.query.budget.max_ms, "no_seq_scan": r.query.budget.no_seq_scan},
                    "broken": r.broken,
                    "error": r.error,
                    "plan": r.plan,
                }
                for r in s.reports
            ],
        }
        for s in results
    ]


def explain(results: list, as_json: bool, output: Path | None = None) -> None:
    """The table (or JSON) on stdout and, with `output`, the Markdown report written whole or not at all."""
    if output is not None:
        write_atomically(output, explain_markdown(results))
    if as_json:
        emit_json(explain_data(results))
        return
    for s in results:
        table = Table(title=f"{s.service}: {s.where}", title_justify="left")
        for col, justify in (("query", "left"), ("ms", "right"), ("plan", "left"), ("rows est/actual", "right"),
                             ("buffers hit/read", "right"), ("budget", "left")):
            table.add_column(col, justify=justify, no_wrap=col == "query")  # type: ignore[arg-type]
        for r in s.reports:
            state = "[red]broken[/]" if r.broken else ("[green]ok[/]" if r.query.budget.describe() else "-")
            table.add_row(r.query.name, f"{r.execution_ms:.2f}" if not r.error else "[red]timeout[/]",
                          "\n".join(r.shape) or "-", f"{r.estimated_rows:,.0f} / {r.actual_rows:,.0f}",
                          f"{r.shared_hit:,} / {r.shared_read:,}", state)
        out.print(table)
        for r in s.reports:
            for warning in r.warnings:
                out.print(f"  [yellow]warning[/] {r.query.name}: ", end="")
                line(warning)
            for broken in r.broken:
                out.print(f"  [red]budget[/] {r.query.name}: ", end="")
                line(broken)
    reports = [r for s in results for r in s.reports]
    line(f"explained {len(reports)} key quer{'y' if len(reports) == 1 else 'ies'} in {len(results)} service"
         f"{'s' if len(results) != 1 else ''}: {sum(len(r.warnings) for r in reports)} warning(s),"
         f" {sum(1 for r in reports if r.broken)} over budget")


def explain_markdown(results: list, title: str = "dbtool explain") -> str:
    """The report for --output: a summary table, then each query with its SQL, values and plan."""
    from datetime import datetime, timezone

    from ..inspect.plans import plan_lines

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", "<br>")

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = [f"# {title}", "", f"{now}. EXPLAIN (ANALYZE, BUFFERS) of each key query, in a read-only"
          " transaction rolled back afterwards.", "",
          "| service | query | time (ms) | plan | rows est / actual | buffers hit / read | warnings | budget |",
          "|---|---|---:|---|---:|---:|---|---|"]
    for s in results:
        for r in s.reports:
            budget = r.query.budget.describe() or "-"
            verdict = f"broken: {'; '.join(r.broken)}" if r.broken else (f"ok ({budget})" if budget != "-" else "-")
            md.append(f"| {s.service} | {r.query.name} | {r.execution_ms:.2f} | {cell(', '.join(r.shape)) or '-'} |"
                      f" {r.estimated_rows:,.0f} / {r.actual_rows:,.0f} | {r.shared_hit:,} / {r.shared_read:,} |"
                      f" {len(r.warnings)} | {cell(verdict)} |")
    for s in results:
        md += ["", f"## {s.service}", "", f"Database: {s.where}"]
        for r in s.reports:
            md += ["", f"### {r.query.name}", "", r.query.description, "", f"File: `{r.query.path}`", ""]
            if r.values:
                md += ["Parameters: " + ", ".join(f"`{k}` = `{v}`" for k, v in r.values.items()), ""]
            md += ["```sql", r.query.text, "```", ""]
            if r.error:
                md += [f"**Not finished:** {r.error}", ""]
            else:
                md += [f"Execution {r.execution_ms:.3f} ms, planning {r.planning_ms:.3f} ms; buffers shared hit"
                       f" {r.shared_hit:,}, read {r.shared_read:,}, temp {r.temp_blocks:,}.", "",
                       "```", *plan_lines(r.plan), "```", ""]
            md += [f"- warning: {w}" for w in r.warnings] + [f"- **budget broken:** {b}" for b in r.broken]
    return "\n".join(md).rstrip() + "\n"

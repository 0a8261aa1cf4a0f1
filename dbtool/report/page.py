"""The HTML page: every section built from the JSON documents collect.py keeps. Everything is inline
(styles, script, the plan pictures), so the file opens offline, e.g. from a CI artifact, and makes
no network request. Every name, query and message is escaped: a table called <script> is text.
"""

from __future__ import annotations

from html import escape

from .plan_svg import plan_svg

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#222}
h1{font-size:22px}h2{font-size:19px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin:20px 0 4px}h4{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f4f4f4}td.num{text-align:right}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;margin:4px 0}
.ok{color:#1b7f3b}.bad{color:#b00020;font-weight:600}.warn{color:#9a6700}.muted{color:#666}
.query{border:1px solid #e3e3e3;border-radius:6px;padding:4px 12px 10px;margin:14px 0}
.plan .node{cursor:pointer}.plan .node:hover rect,.plan .node:focus rect{stroke:#000;stroke-width:2}
.detail{white-space:pre-wrap}.detail:empty{display:none}summary{cursor:pointer;color:#444}.legend span{display:inline-block;width:14px;height:10px;
margin:0 3px 0 10px;border:1px solid #555}
"""

# Clicking a box shows its details under the picture; the body records how many pictures the script
# found, which the browser test reads to know the script ran.
SCRIPT = """
document.querySelectorAll('svg.plan').forEach(function (svg) {
  var panel = svg.parentNode.querySelector('pre.detail');
  svg.querySelectorAll('g.node').forEach(function (node) {
    node.addEventListener('click', function () { panel.textContent = node.getAttribute('data-detail'); });
  });
});
document.body.setAttribute('data-plans', String(document.querySelectorAll('svg.plan').length));
"""

LEGEND = ('<p class="legend muted">Each plan is drawn top-down from its root: a box\'s width is its share of'
          ' the time, its colour its own time (<span style="background:#fff7cc"></span>none'
          ' <span style="background:#c81e1e"></span>all of it); a dashed purple border and ! mark an'
          ' estimate more than 10x off. Hover or click a box for its details.</p>')


def _e(value: object) -> str:
    return escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[str]], numeric: tuple[int, ...] = ()) -> str:
    """`rows` hold HTML already escaped."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>\n")


def explain_section(service: dict) -> str:
    parts = [f'<p class="muted">Database: {_e(service["database"])}</p>']
    if service.get("analysed"):
        parts.append(f'<p class="warn">Analysed first (never analysed): {_e(", ".join(service["analysed"]))}</p>')
    rows = [[f'<a href="#{_e(_anchor(service, q))}">{_e(q["name"])}</a>',
             "timeout" if q["error"] else f'{q["execution_ms"]:.2f}', _e(", ".join(q["summary"]) or "-"),
             f'{q["rows"]["estimated"]:,.0f} / {q["rows"]["actual"]:,.0f}',
             f'{q["buffers"]["shared_hit"]:,} / {q["buffers"]["shared_read"]:,}', _verdict(q)]
            for q in service["queries"]]
    parts.append(_table(["query", "ms", "plan", "rows est / actual", "buffers hit / read", "check"], rows,
                        numeric=(1, 3, 4)))
    parts.append(LEGEND)
    for q in service["queries"]:
        parts.append(_query(service, q))
    return "".join(parts)


def _anchor(service: dict, q: dict) -> str:
    return f"q-{service['service']}-{q['name']}"


def _verdict(q: dict) -> str:
    if q["broken"]:
        return '<span class="bad">broken</span>'
    if q.get("regressions"):
        return '<span class="bad">regressed</span>'
    return '<span class="ok">ok</span>' if (q["budget"]["max_ms"] is not None or q["budget"]["no_seq_scan"]) else "-"


def _query(service: dict, q: dict) -> str:
    items = ([f'<li class="warn">warning: {_e(w)}</li>' for w in q["warnings"]]
             + [f'<li class="bad">budget broken: {_e(b)}</li>' for b in q["broken"]]
             + [f'<li class="bad">regression: {_e(b)}</li>' for b in q.get("regressions", [])]
             + [f'<li class="ok">{_e(n)}</li>' for n in q.get("budget_notes", [])])
    params = ", ".join(f"{_e(k)} = {_e(v)}" for k, v in q["params"].items())
    figures = ("not finished: " + _e(q["error"]) if q["error"] else
               f'{q["execution_ms"]:.3f} ms execution, {q["planning_ms"]:.3f} ms planning; buffers hit'
               f' {q["buffers"]["shared_hit"]:,}, read {q["buffers"]["shared_read"]:,}')
    return (f'<div class="query" id="{_e(_anchor(service, q))}"><h4>{_e(q["name"])}</h4>'
            f'<p>{_e(q["description"])} <span class="muted">{figures}</span></p>'
            f"{'<ul>' + ''.join(items) + '</ul>' if items else ''}"
            f'<div class="picture">{plan_svg(q["plan"], "plan of " + q["name"])}<pre class="detail"></pre></div>'
            f'<details><summary>SQL{" and parameters" if params else ""}</summary><p class="muted">{_e(q["file"])}'
            f'{"; parameters: " + params if params else ""}</p><pre><code>{_e(q.get("sql", ""))}</code></pre>'
            f"</details></div>")


def _status(status: dict) -> str:
    rows = [[f'{m["version"]:03d}', _e(m["id"]), _e(m["state"]), _e(str(m["applied_at"] or "")[:19])]
            for m in status["migrations"]] + [["", _e(m), "missing file", ""] for m in status["missing"]]
    extra = "".join(f'<p class="bad">invalid index {_e(i)}</p>' for i in status["invalid_indexes"])
    pending = len(status["pending"])
    note = f'<p class="{"warn" if pending else "ok"}">{len(status["migrations"]) - pending} applied, {pending} pending</p>'
    return _table(["version", "migration", "state", "applied at (UTC)"], rows) + note + extra


def _audit(audit: dict) -> str:
    if audit["notice"]:
        head = f'<p class="warn">{_e(audit["notice"])}</p>'
    else:
        head = ""
    if not audit["findings"]:
        return head + '<p class="ok">no findings</p>'
    rows = [[_e(f["level"]), _e(f["kind"]), _e(f["table"]), _e(f["index"] or f["subject"]), _e(f["evidence"]),
             f'<pre>{_e(f["fix"])}</pre>'] for f in audit["findings"]]
    return head + _table(["level", "kind", "table", "index", "evidence", "fix"], rows)


def _lint(findings: list[dict]) -> str:
    if not findings:
        return '<p class="ok">no findings</p>'
    rows = [[_e(f["level"]), _e(f["rule"]), f'{_e(f["path"])}:{f["line"]}:{f["column"]}', _e(f["message"]),
             _e(f["fix"])] for f in findings]
    return _table(["level", "rule", "where", "message", "fix"], rows)


def _drift(check: dict) -> str:
    parts = []
    for what, part in (("schema.sql", check["schema_file"]), ("live database", check["live"])):
        state = part["state"]
        parts.append(f'<p class="{"ok" if state == "ok" else "bad"}">{_e(what)}: {_e(state)}</p>')
        parts += [f"<p>{_e(o)}</p>" for o in part["objects"]]
        if part["diff"]:
            parts.append(f'<pre>{_e(part["diff"])}</pre>')
    return "".join(parts)


def report_page(data: dict) -> str:
    """The whole report: per service its status, plans, audit, lint and (when collected) drift."""
    by = {key: {d["service"]: d for d in data[key]} for key in ("status", "explain", "audit")}
    drift = {d["service"]: d for d in data["drift"]} if data.get("drift") else {}
    nav = " · ".join(f'<a href="#{_e(s)}">{_e(s)}</a>' for s in data["services"])
    body = [f"<h1>dbtool report</h1><p class=\"muted\">{_e(data['generated'])}, --env {_e(data['env'])}:"
            f" {nav}</p>"]
    for s in data["services"]:
        body.append(f'<h2 id="{_e(s)}">{_e(s)}</h2><h3>Migrations</h3>{_status(by["status"][s])}')
        body.append(f"<h3>Key queries</h3>{explain_section(by['explain'][s])}")
        body.append(f"<h3>Index audit</h3>{_audit(by['audit'][s])}")
        body.append(f"<h3>Lint</h3>{_lint(data['lint'].get(s, []))}")
        if s in drift:
            body.append(f"<h3>Drift (schema check)</h3>{_drift(drift[s])}")
    return _document("dbtool report", "".join(body))


def explain_page(explain: list[dict]) -> str:
    """`dbtool explain --output x.html`: the key query part alone."""
    body = ["<h1>dbtool explain</h1>"]
    for s in explain:
        body.append(f'<h2 id="{_e(s["service"])}">{_e(s["service"])}</h2>{explain_section(s)}')
    return _document("dbtool explain", "".join(body))

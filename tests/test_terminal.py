"""Terminal output: every table fits 80 columns without a wrapped cell, a wider terminal shows more,
and piped output is plain text without box characters."""

from __future__ import annotations

from conftest import KEY_QUERIES, connect

BOX = set("─│┌┐└┘├┤┬┴┼╭╮╯╰━┃┏┓┗┛╇╈═║╔╗╚╝")


def run(cli, project, env, columns: int, *args: str):
    result = cli(*args, "--schemas-dir", project / "schemas", env={**env, "COLUMNS": str(columns)})
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert not BOX & set(result.stdout), result.stdout
    return result.stdout


def rows_of(stdout: str, header: str) -> list[str]:
    """The lines of each table whose header line starts with `header`, header included."""
    found, inside = [], False
    for text in stdout.splitlines():
        if text.startswith(header):
            inside = True
        elif inside and (not text.strip() or text.startswith(("  ", "fine", "explained"))):
            inside = False
        if inside:
            found.append(text)
    return found


def test_explain_fits_80_columns_and_shows_more_at_120(cli, project, seeded):
    _, env = seeded
    narrow, wide = (run(cli, project, env, n, "explain") for n in (80, 120))
    for stdout, limit in ((narrow, 80), (wide, 120)):
        assert all(len(text) <= limit for text in stdout.splitlines()), stdout
        table = rows_of(stdout, "query ")
        # One line per query (12 shipped) plus one header per service: no cell wrapped onto a second line.
        assert len(table) == KEY_QUERIES + 3, table
    assert "Index Scan Backward idx_courses_live_created_at_id" in wide
    assert "Index Scan Backward idx_courses_live_created_at_id" not in narrow and "…" in narrow
    assert "Seq Scan chat_sessions" in narrow or "Index Scan idx_chat_sessions_user_id" in narrow


def test_status_and_audit_cut_names_in_the_middle_only_when_they_must(cli, project, seeded):
    _, env = seeded
    long = "add chat messages session id created at index"  # 003_add_chat_messages_..., as Flyway shows it
    narrow, wide = (run(cli, project, env, n, "status", "chat") for n in (80, 120))
    assert all(len(text) <= 80 for text in narrow.splitlines()), narrow
    assert long in wide and long not in narrow
    cut = next(t for t in narrow.splitlines() if t.startswith("003"))
    assert "add chat messag" in cut and "created at index" in cut and "…" in cut
    assert len(rows_of(narrow, "version")) == 1 + 4
    with connect(seeded[0]["chat"]) as conn:  # a foreign key without an index: a long kind to keep whole
        conn.execute("DROP INDEX idx_chat_messages_session_id_created_at")
    audit = run(cli, project, env, 80, "audit-indexes", "chat")
    table = rows_of(audit, "#  level")
    assert table and all(len(text) <= 80 for text in table), audit
    assert any("fk-without-index" in text for text in table), audit

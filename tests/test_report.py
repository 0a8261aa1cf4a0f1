"""dbtool report and explain --output x.html: one self-contained page, escaped, opened in a real
headless Chromium (Debian's `chromium`), screenshot taken and checked."""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from conftest import KEY_QUERIES, assert_one_line, connect


def report(cli, project, env, *args):
    return cli("report", *args, "--schemas-dir", project / "schemas", env=env)


def hostile(project: Path, dbs: dict[str, str]) -> None:
    """A table and a key query both named <script>: the page must show them as text."""
    with connect(dbs["course"]) as conn:
        conn.execute('CREATE TABLE "<script>" (id int); INSERT INTO "<script>" VALUES (1); ANALYZE "<script>"')
    (project / "schemas" / "course" / "queries" / "<script>.sql").write_text(
        "-- A hostile </script><b>name</b>.\nSELECT id FROM \"<script>\" WHERE id > 0;\n", encoding="utf-8")


def test_report_is_one_self_contained_escaped_page(cli, project, seeded, tmp_path):
    dbs, env = seeded
    hostile(project, dbs)
    out = tmp_path / "report.html"
    result = report(cli, project, env, "--output", out)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert f"wrote {out}: 3 service(s), {KEY_QUERIES + 1} plan(s)" in " ".join(result.stdout.split())
    page = out.read_text(encoding="utf-8")
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    # Offline: nothing fetched, everything inline.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(|@import""", page, re.I)
    assert page.count("<script>") == 1 and page.count("</script>") == 1
    assert "&lt;script&gt;" in page and "&lt;/script&gt;&lt;b&gt;name&lt;/b&gt;" in page
    assert page.count('<svg class="plan"') == KEY_QUERIES + 1
    for section in ("Migrations", "Key queries", "Index audit", "Lint", "003_guard_course_capacity",
                    "idx_courses_live_created_at_id", "DROP INDEX CONCURRENTLY", "missing-timestamps"):
        assert section in page, section
    assert "Drift" not in page


def test_explain_output_html_is_the_explain_part_alone(cli, project, seeded, tmp_path):
    _, env = seeded
    out = tmp_path / "explain.html"
    result = cli("explain", "identity", "chat", "--output", out, "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "<h1>dbtool explain</h1>" in page and page.count('<svg class="plan"') == 3
    assert "Index audit" not in page and "Migrations" not in page


def test_report_with_drift_names_the_changed_object(cli, project, seeded, tmp_path):
    dbs, env = seeded
    with connect(dbs["identity"]) as conn:
        conn.execute("CREATE INDEX idx_users_phone ON users (phone)")
    out = tmp_path / "report.html"
    result = report(cli, project, env, "identity", "--drift", "--output", out)
    assert result.exit_code == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    assert "Drift (schema check)" in page and "idx_users_phone" in page


def test_bad_report_input_leaves_no_file(cli, project, seeded, tmp_path):
    _, env = seeded
    assert_one_line(report(cli, project, env, "--output", tmp_path), 2, "--output", "is a folder")
    assert_one_line(report(cli, project, env, "--output", tmp_path / "no" / "r.html"), 2, "does not exist")
    assert_one_line(report(cli, project, env, "--output", "/proc/r.html"), 2, "--output /proc/r.html: cannot write")
    empty = project / "schemas" / "identity" / "queries"
    shutil.rmtree(empty)
    assert_one_line(report(cli, project, env, "--output", tmp_path / "r.html"), 2, "identity has no key queries")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schemas"]


def test_explain_output_through_a_symlink_writes_its_target(cli, project, seeded, tmp_path):
    _, env = seeded
    (tmp_path / "reports").mkdir()
    target, link = tmp_path / "reports" / "explain.html", tmp_path / "explain.html"
    link.symlink_to(target)

    def explain(out: Path):
        return cli("explain", "identity", "--output", out, "--schemas-dir", project / "schemas", env=env)

    result = explain(link)
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and "<h1>dbtool explain</h1>" in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["explain.html", "reports", "schemas"]
    assert os.listdir(tmp_path / "reports") == ["explain.html"]  # no temporary file left
    # A write that fails is bad input naming the path, and the link is left as it was.
    full = tmp_path / "full.html"
    full.symlink_to("/dev/full")
    assert_one_line(explain(full), 2, f"{full}: No space left on device")
    assert full.is_symlink()
    # A link into a folder that does not exist is refused before any query runs, naming that folder.
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "gone" / "explain.html")
    assert_one_line(explain(dangling), 2, f"--output {dangling}: folder {tmp_path / 'gone'} does not exist")


def test_a_fifo_output_is_written_into_not_replaced(tmp_path):
    """A FIFO (or /dev/stdout, a device) is no file to rename over: that would put a regular file
    in its place."""
    from dbtool.render.outfile import write_atomically

    fifo = tmp_path / "report.html"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened first, so the writer need not wait
    try:
        write_atomically(fifo, "<p>report</p>\n")
        assert os.read(reader, 1000) == b"<p>report</p>\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert os.listdir(tmp_path) == ["report.html"]


def test_a_failed_write_is_the_oserror_naming_the_path(tmp_path):
    from dbtool.render.outfile import write_atomically

    full = tmp_path / "report.html"
    full.symlink_to("/dev/full")  # a device behind a link: written through, so ENOSPC
    with pytest.raises(OSError) as raised:
        write_atomically(full, "<p>report</p>\n")
    assert (raised.value.errno, raised.value.filename) == (errno.ENOSPC, str(full))
    assert full.is_symlink() and stat.S_ISCHR(full.stat().st_mode)


def test_prod_database_without_statistics_writes_nothing(cli, project, migrated, tmp_path):
    _, env = migrated
    out = tmp_path / "r.html"
    assert_one_line(report(cli, project, env, "course", "--env", "prod", "--output", out), 4, "no statistics")
    assert not out.exists() and not list(tmp_path.glob(".r.html*"))


# ---------------------------------------------------------------- in a real browser


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium); CI runs this test")
    return found


def headless(browser: str, page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", "--no-first-run", "--disable-extensions", f"--user-data-dir={page.parent / 'profile'}",
         *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG (no imaging library needed)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, size = 8, b"", (0, 0)
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    return size[0], size[1], zlib.decompress(idat)


def test_the_report_renders_in_headless_chromium(cli, project, seeded, tmp_path):
    browser = chromium()
    _, env = seeded
    out = tmp_path / "report.html"
    assert report(cli, project, env, "--output", out).exit_code == 0
    dom = headless(browser, out, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The page's script ran (it counts the pictures) and every key query has its picture.
    assert f'data-plans="{KEY_QUERIES}"' in dom.stdout
    assert dom.stdout.count('<svg class="plan"') == KEY_QUERIES and dom.stdout.count('class="node') > KEY_QUERIES
    # No console message at all: no script error, no blocked request.
    assert "CONSOLE" not in dom.stderr, [t for t in dom.stderr.splitlines() if "CONSOLE" in t]
    shot = tmp_path / "report.png"
    taken = headless(browser, out, f"--screenshot={shot}", "--window-size=1100,1400")
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1100, 1400)
    # Non-blank: a white page compresses to a handful of distinct bytes; text and plan boxes give many.
    assert len(set(pixels)) > 64 and pixels.count(b"\xff" * 64) < len(pixels) // 64 * 0.95


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

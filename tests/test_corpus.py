"""A corpus of bad inputs, tried as a new user would: each is one line on stderr, a documented exit
code, and no crash, whatever the command."""

from __future__ import annotations

import pytest
from conftest import assert_no_crash

from dbtool import server

BAD = "postgresql://nobody:pw@127.0.0.1:1/nothing"  # a port nothing listens on

# (arguments, exit code); {s} is the schemas folder, {f} a file in a scratch folder.
CORPUS = [
    (["migrate", "--env", "qa"], 2), (["migrate", "--wait", "-1"], 2), (["migrate", "--lock-timeout", "-3"], 2),
    (["migrate", "nosuch"], 2), (["migrate", "--dsn", "not a url = x"], 2), (["migrate", "--dsn", BAD], 2),
    (["migrate", "course", "--dsn", BAD], 3), (["migrate", "course", "--to", "99"], 2),
    (["migrate", "--to", "1"], 2), (["migrate", "course", "--env", "prod", "--dsn", BAD], 4),
    (["rollback", "--steps", "0"], 2), (["rollback", "--steps", "1", "--all"], 2),
    (["rollback", "course", "--to", "77"], 2), (["rollback", "course", "--dsn", BAD], 3),
    (["status", "course", "--dsn", BAD], 3), (["status", "--env", "prod"], 2), (["status", "Nope"], 2),
    (["validate", "ghost"], 2), (["validate", "--schemas-dir", "{f}/nope"], 2),
    (["new", "course", "123"], 2), (["new", "ghost", "add_x"], 2), (["new", "course", "!!!"], 2),
    (["repair", "course", "--dsn", BAD], 3), (["triggers", "course", "--dsn", BAD], 3),
    (["seed", "--scale", "0"], 2), (["seed", "--scale", "5001"], 2), (["seed", "--env", "prod"], 4),
    (["seed", "course", "--dsn", BAD], 3), (["check-references", "course", "--dsn", BAD], 3),
    (["explain", "--query", "no_such_query"], 2), (["explain", "--timeout", "0"], 2),
    (["explain", "--large-rows", "-1"], 2), (["explain", "--output", "{f}/missing/x.md"], 2),
    (["explain", "course", "--dsn", BAD], 3),
    (["audit-indexes", "--fail-on", "fatal"], 2), (["audit-indexes", "--min-size", "lots"], 2),
    (["audit-indexes", "course", "--dsn", BAD], 3),
    (["advise", "--top", "5"], 2), (["advise", "--from-stats", "--top", "0"], 2),
    (["advise", "--min-gain", "120"], 2), (["advise", "course", "--from-stats", "--dsn", BAD], 3),
    (["lint", "{f}/missing.sql"], 2), (["lint", "--format", "xml"], 2), (["lint", "{s}/course/queries"], 2),
    (["schema", "dump", "--env", "prod"], 4), (["schema", "check", "course", "--scratch-dsn", "x = = y"], 2),
    (["schema", "check", "course", "--scratch-dsn", BAD], 3), (["verify", "ghost"], 2),
    (["verify", "course", "--scratch-dsn", BAD], 3), (["verify", "--env", "prod", "--dsn", BAD], 2),
    (["baseline", "course"], 4), (["baseline", "ghost"], 2),
]


@pytest.mark.parametrize("args, code", CORPUS, ids=[" ".join(a) for a, _ in CORPUS])
def test_bad_input_is_one_line_and_its_code(cli, project, tmp_path, args, code):
    schemas = project / "schemas"
    args = [a.format(s=schemas, f=tmp_path) for a in args]
    if "--schemas-dir" not in args:
        args += ["--schemas-dir", str(schemas)]
    try:
        result = cli(*args, env={"DBTOOL_DATA_DIR": str(tmp_path / "no-server")})
    finally:
        server.stop(tmp_path / "no-server")  # what a service without --dsn started (seed reads identity's)
    assert_no_crash(result)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and "pw@" not in result.output

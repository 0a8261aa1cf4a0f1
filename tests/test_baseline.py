"""explain --save-baseline / --baseline: a plan that changed shape, or got slower, is exit 1."""

from __future__ import annotations

import json

from conftest import assert_one_line, connect

from dbtool.inspect.baseline import changes


def explain(cli, project, env, *args):
    return cli("explain", *args, "--schemas-dir", project / "schemas", env=env)


def test_the_baseline_catches_a_dropped_index(cli, project, seeded, tmp_path):
    dbs, env = seeded
    baseline = tmp_path / "baseline.json"
    assert explain(cli, project, env, "course", "--save-baseline", baseline).exit_code == 0
    saved = json.loads(baseline.read_text())
    keyset = saved["queries"]["course/course_list_keyset"]
    assert any("using idx_courses_live_created_at_id" in node for node in keyset["shape"]), keyset
    # Plan shapes only: --slower 1000 keeps a loaded machine's timing out of it (timings have their own test).
    same = explain(cli, project, env, "course", "--baseline", baseline, "--slower", "1000")
    assert same.exit_code == 0, same.stdout
    assert "0 regressed against the baseline" in " ".join(same.stdout.split())

    with connect(dbs["course"]) as conn:
        conn.execute("DROP INDEX idx_courses_live_created_at_id")
    result = explain(cli, project, env, "course", "--baseline", baseline, "--json", "--slower", "1000")
    assert result.exit_code == 1
    queries = {q["name"]: q for q in json.loads(result.stdout)[0]["queries"]}
    (change, *_) = queries["course_list_keyset"]["regressions"]
    assert change.startswith("courses: Index Scan Backward using idx_courses_live_created_at_id became "), change
    assert "idx_courses_live_created_at_id" not in change.split(" became ")[1]
    assert not queries["enrollments_of_course"]["regressions"]
    human = explain(cli, project, env, "course", "--baseline", baseline, "--slower", "1000")
    assert human.exit_code == 1
    assert "regression course_list_keyset: courses: Index Scan" in " ".join(human.stdout.split())


def test_a_new_sort_and_a_slower_query_are_regressions(cli, project, seeded, tmp_path):
    assert changes(["Limit", "  Index Scan using i on t"], ["Limit", "  Sort", "    Seq Scan on t"]) == [
        "t: Index Scan using i became Seq Scan", "new Sort node"]
    assert changes(["Hash Join", "  Seq Scan on a", "  Hash", "    Seq Scan on b"],
                   ["Hash Join", "  Seq Scan on b", "  Hash", "    Seq Scan on a"])[0].startswith(
        "plan shape changed (join order")
    _, env = seeded
    baseline = tmp_path / "baseline.json"
    assert explain(cli, project, env, "identity", "--save-baseline", baseline).exit_code == 0
    data = json.loads(baseline.read_text())
    data["queries"]["identity/user_by_email"]["execution_ms"] = 0.0001
    baseline.write_text(json.dumps(data))
    # Faster than 1 ms either way: noise, not a regression, whatever the factor.
    assert explain(cli, project, env, "identity", "--baseline", baseline).exit_code == 0
    data["queries"]["identity/user_by_email"]["execution_ms"] = -5.0  # a run 5 ms faster than any can be
    baseline.write_text(json.dumps(data))
    slower = explain(cli, project, env, "identity", "--baseline", baseline, "--json")
    assert slower.exit_code == 1
    (query,) = json.loads(slower.stdout)[0]["queries"]
    assert "its baseline -5.00 ms (more than 2x)" in query["regressions"][0]


def test_bad_baseline_input(cli, project, seeded, tmp_path):
    _, env = seeded
    assert_one_line(explain(cli, project, env, "--baseline", tmp_path / "none.json"), 2, "none.json: no such file",
             "--save-baseline")
    other = tmp_path / "other.json"
    other.write_text('{"queries": []}')
    assert_one_line(explain(cli, project, env, "--baseline", other), 2, "other.json: not a dbtool explain baseline")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json at all")
    assert_one_line(explain(cli, project, env, "--baseline", garbage), 2, "garbage.json: not a dbtool explain baseline")
    assert_one_line(explain(cli, project, env, "--baseline", tmp_path), 2, "is a folder")
    assert_one_line(explain(cli, project, env, "--slower", "1"), 2, "--slower 1: give a factor above 1")
    assert_one_line(explain(cli, project, env, "--save-baseline", tmp_path / "no" / "b.json"), 2, "--save-baseline",
             "does not exist")
    assert_one_line(explain(cli, project, env, "--save-baseline", tmp_path), 2, "--save-baseline", "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.json", "other.json", "schemas"]

"""`dbtool lint` against squawk on a corpus of dangerous migrations, case by case and rule by rule.

Each case in benchmarks/lint_corpus/ is one danger (its first line says which) with its down file.
dbtool lints it as migration 002 of a service whose 001 is base.sql (so it knows which tables
already exist); squawk lints the same up file on its own, told --assume-in-transaction when dbtool
would run the file in a transaction, as squawk's documentation advises for such tools.
Which rule of either tool addresses which danger is the judgement written in CATCHES below.

Needs squawk: pip install squawk-cli (a comparison tool, not a dbtool dependency).
Usage: python benchmarks/lint_vs_squawk.py [--pg-version 18]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from dbtool.migrate.sqltext import split_sql

CORPUS = Path(__file__).resolve().parent / "lint_corpus"

# rule -> the dangers (case labels) it addresses.
CATCHES: dict[str, dict[str, set[str]]] = {
    "dbtool": {
        "index-not-concurrent": {"index-build-blocks-writes"},
        "not-null-without-default": {"not-null-column"},
        "column-type-change": {"column-type-change"},
        "rename": {"rename"},
        "drop-in-up": {"drop", "data-loss"},
        "concurrent-in-transaction": {"concurrent-in-transaction"},
        "typed-as-text": {"typed-as-text"},
        "prefer-jsonb": {"json"},
        "uuid-primary-key": {"primary-key-type"},
        "fk-without-index": {"fk-without-index"},
        "cross-service-fk": {"cross-service-fk"},
        "status-without-check": {"status-without-check"},
        "missing-timestamps": {"missing-timestamps"},
        "soft-delete-without-index": {"soft-delete-without-index"},
        "table-name": {"naming"}, "column-name": {"naming"}, "index-name": {"naming"},
        "boolean-name": {"naming"}, "timestamp-name": {"naming"},
        "down-incomplete": {"down-incomplete"},
        "volatile-default": {"volatile-default"},
        "constraint-not-valid": {"constraint-validation-scan"},
        "transaction-control": {"transaction-control"},
        "not-rerunnable": {"not-rerunnable"},
    },
    "squawk": {
        "require-concurrent-index-creation": {"index-build-blocks-writes"},
        "disallowed-unique-constraint": {"index-build-blocks-writes"},
        "adding-required-field": {"not-null-column"},
        "adding-not-nullable-field": {"not-null-column"},
        "changing-column-type": {"column-type-change"},
        "renaming-column": {"rename"},
        "renaming-table": {"rename"},
        "ban-drop-table": {"drop"},
        "ban-drop-column": {"drop"},
        "require-concurrent-index-deletion": {"drop"},
        "adding-foreign-key-constraint": {"constraint-validation-scan"},
        "constraint-missing-not-valid": {"constraint-validation-scan"},
        "ban-concurrent-index-creation-in-transaction": {"concurrent-in-transaction"},
        "adding-field-with-default": {"volatile-default"},
        "prefer-identity": {"primary-key-type"},
        "adding-serial-primary-key-field": {"primary-key-type"},
        "transaction-nesting": {"transaction-control"},
        "ban-truncate-cascade": {"data-loss"},
        "ban-char-field": {"char-padding"},
        "ban-drop-not-null": {"drop-not-null"},
        "prefer-robust-stmts": {"not-rerunnable"},
    },
}
# squawk rules that fire on every statement taking a lock, whatever the danger: counted apart.
BLANKET = {"require-lock-timeout", "require-statement-timeout"}


def cases() -> list[Path]:
    return sorted(p for p in CORPUS.glob("[0-9]*.sql") if not p.name.endswith(".down.sql"))


def danger(case: Path) -> str:
    first = case.read_text().splitlines()[0]
    assert first.startswith("-- danger: "), f"{case}: first line must be '-- danger: <label>'"
    return first.removeprefix("-- danger: ").strip()


def run_dbtool(case: Path, scratch: Path) -> list[str]:
    service = scratch / case.stem
    service.mkdir()
    shutil.copy(CORPUS / "base.sql", service / "001_base.sql")
    shutil.copy(CORPUS / "base.down.sql", service / "001_base.down.sql")
    name = case.stem.split("_", 1)[1]
    shutil.copy(case, service / f"002_{name}.sql")
    shutil.copy(case.with_name(case.stem + ".down.sql"), service / f"002_{name}.down.sql")
    done = subprocess.run([sys.executable, "-m", "dbtool", "lint", "--json", str(service / f"002_{name}.sql")],
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"dbtool lint failed on {case}: {done.stderr.strip()}")
    return [f["rule"] for f in json.loads(done.stdout)]


def run_squawk(squawk: str, case: Path, pg_version: str) -> list[str]:
    args = [squawk, "--reporter", "json", f"--pg-version={pg_version}", str(case)]
    if split_sql(case.read_text())[0]:
        args.insert(1, "--assume-in-transaction")
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"squawk failed on {case}: {done.stderr.strip()}")
    return [f["rule_name"] for f in json.loads(done.stdout or "[]")]


def caught(tool: str, rules: list[str], label: str) -> list[str]:
    return sorted({r for r in rules if label in CATCHES[tool].get(r, set())})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-version", default="18", help="PostgreSQL version squawk assumes")
    args = parser.parse_args()
    squawk = shutil.which("squawk") or str(Path(sys.executable).with_name("squawk"))
    if not Path(squawk).exists():
        raise SystemExit("squawk not found; pip install squawk-cli")
    version = subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()

    rows = []
    fired: dict[tuple[str, str], list[str]] = defaultdict(list)  # (tool, rule) -> cases
    with tempfile.TemporaryDirectory(prefix="lint-vs-squawk-") as scratch:
        for case in cases():
            label = danger(case)
            found = {"dbtool": run_dbtool(case, Path(scratch)), "squawk": run_squawk(squawk, case, args.pg_version)}
            for tool, rules in found.items():
                for rule in sorted(set(rules)):
                    fired[(tool, rule)].append(case.stem)
            hit = {tool: caught(tool, rules, label) for tool, rules in found.items()}
            other = {tool: sorted(set(rules) - set(hit[tool]) - BLANKET) for tool, rules in found.items()}
            verdict = {(True, True): "both", (True, False): "dbtool only", (False, True): "squawk only",
                       (False, False): "neither"}[(bool(hit["dbtool"]), bool(hit["squawk"]))]
            rows.append((case.stem, label, hit, other, verdict))

    print(f"dbtool lint vs {version} (--pg-version {args.pg_version}) on {len(rows)} cases in {CORPUS.name}/\n")
    print("| case | danger | dbtool: caught by | squawk: caught by | found by | other findings |")
    print("|---|---|---|---|---|---|")
    for stem, label, hit, other, verdict in rows:
        extra = "; ".join(f"{tool}: {', '.join(rules)}" for tool, rules in other.items() if rules)
        print(f"| {stem} | {label} | {', '.join(hit['dbtool']) or '-'} | {', '.join(hit['squawk']) or '-'} |"
              f" {verdict} | {extra} |")
    counts = defaultdict(int)
    for row in rows:
        counts[row[4]] += 1
    print("\n" + ", ".join(f"{k}: {counts[k]}" for k in ("both", "dbtool only", "squawk only", "neither")))

    print("\nRule by rule: the cases each rule caught, and which of them the other tool missed.\n")
    print("| tool | rule | caught | the other tool missed | fired elsewhere |")
    print("|---|---|---|---|---|")
    by_case = {row[0]: row for row in rows}
    for (tool, rule), stems in sorted(fired.items()):
        if rule in BLANKET:
            continue
        other_tool = "squawk" if tool == "dbtool" else "dbtool"
        hits = [s for s in stems if rule in by_case[s][2][tool]]
        missed = [s for s in hits if not by_case[s][2][other_tool]]
        elsewhere = [s for s in stems if s not in hits]
        print(f"| {tool} | {rule} | {len(hits)} | {', '.join(missed) or '-'} | {', '.join(elsewhere) or '-'} |")
    for rule in sorted(BLANKET):
        print(f"\nsquawk {rule}: fired on {len(fired.get(('squawk', rule), []))} of {len(rows)} cases"
              " (every statement that takes a lock; not counted as catching a danger)")


if __name__ == "__main__":
    main()

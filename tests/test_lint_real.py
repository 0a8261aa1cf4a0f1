"""dbtool lint on what real projects hold: pg_dump output, broken trees, foreign schemas, implicit drops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_no_crash, connect

from dbtool.config import make_settings
from dbtool.lint.rules import SAFETY_RULES, LintReport
from dbtool.lint.run import lint as run_lint
from dbtool.schemafile.dump import pg_dump

TIMESTAMPS = "created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP"
USERS = f"CREATE TABLE users (id UUID PRIMARY KEY, email TEXT NOT NULL, {TIMESTAMPS});\n"


def run(path: Path, rules: str | None = None) -> LintReport:
    return run_lint(make_settings(), [path], rules)


def found(report: LintReport) -> set[tuple[str, str]]:
    return {(f.rule, f.message) for f in report.findings}


def service(folder: Path, pairs: list[tuple[str, str | None]], first: int = 1) -> Path:
    """Numbered up/down pairs; a None down file is left out."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, (up, down) in enumerate(pairs, first):
        (folder / f"{number:03d}_step_{number}.sql").write_text(up)
        if down is not None:
            (folder / f"{number:03d}_step_{number}.down.sql").write_text(down)
    return folder


# ------------------------------------------------------------ a tree migrate would refuse


def _broken_tree(tmp_path: Path) -> Path:
    folder = service(tmp_path / "svc", [(USERS, "-- drop the table\n")])
    # 002 is missing; 003 stores a price as text.
    service(folder, [(f"CREATE TABLE courses (id UUID PRIMARY KEY, price TEXT, {TIMESTAMPS});",
                      "DROP TABLE courses;")], first=3)
    return folder


@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_tree_problems_are_findings_and_every_file_is_still_linted(tmp_path, cli, fmt):
    folder = _broken_tree(tmp_path)
    result = cli("lint", "--format", fmt, folder)
    assert_no_crash(result)
    assert result.exit_code == 1, result.output
    gap, empty = folder / "003_step_3.sql", folder / "001_step_1.down.sql"
    if fmt == "json":
        rows = {(f["rule"], Path(f["path"]).name, f["message"]) for f in json.loads(result.stdout)}
        assert rows == {
            ("tree", gap.name, "gap before it, no migration 002"),
            ("tree", empty.name, "has no SQL statement"),
            ("down-incomplete", "001_step_1.sql", "the down file does not remove table users"),
            ("typed-as-text", gap.name, "courses.price holds a number but is stored as text"),
        }
    elif fmt == "github":
        assert f"::error file={gap},line=1,col=1,title=tree::gap before it, no migration 002" in result.stdout
        assert f"::error file={empty},line=1,col=1,title=tree::has no SQL statement" in result.stdout
        assert "title=typed-as-text::" in result.stdout
    else:
        assert f"{gap}:1:1: error tree gap before it, no migration 002 (fix: renumber to close the gap)" \
            in result.stdout
        assert f"{empty}:1:1: error tree has no SQL statement" in result.stdout
        assert "typed-as-text courses.price" in result.stdout
        assert "4 error(s), 0 warning(s) in 4 file(s)" in result.stdout


def test_missing_down_file_is_a_finding_and_the_up_file_is_linted(tmp_path):
    folder = service(tmp_path / "svc", [(USERS, "DROP TABLE users;"),
                                        ("ALTER TABLE users ADD COLUMN is_active BOOLEAN;\n"
                                         "ALTER TABLE users RENAME COLUMN email TO mail;", None)])
    report = run(folder)
    assert found(report) == {
        ("tree", "has no down file"),
        ("rename", "renaming column users.email to mail breaks every running query that names it"),
    }
    assert report.files == 3


def test_misnamed_file_in_a_tree_is_a_finding_and_is_linted_on_its_own(tmp_path):
    folder = service(tmp_path / "svc", [(USERS, "DROP TABLE users;")])
    (folder / "add_bio.sql").write_text("ALTER TABLE users ADD COLUMN bio JSON;\n")
    assert found(run(folder)) == {
        ("tree", "not a migration file name"),
        ("prefer-jsonb", "users.bio is JSON: stored as text, re-parsed on every read, no indexing or equality"),
    }


def test_one_file_of_a_broken_tree_reports_its_own_problems_only(tmp_path):
    folder = _broken_tree(tmp_path)
    report = run(folder / "003_step_3.sql")
    assert found(report) == {("tree", "gap before it, no migration 002"),
                             ("typed-as-text", "courses.price holds a number but is stored as text")}


# ------------------------------------------------------------ what pg_dump writes


def test_primary_key_added_after_the_table(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text(f"CREATE TABLE courses (id UUID NOT NULL, {TIMESTAMPS});\n"
                    "ALTER TABLE ONLY courses ADD CONSTRAINT courses_pkey PRIMARY KEY (id);\n")
    assert run(path).findings == []


def test_attached_partition_takes_its_parents_key(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text(f"CREATE TABLE events (id UUID NOT NULL, {TIMESTAMPS}, PRIMARY KEY (id, created_at))"
                    " PARTITION BY RANGE (created_at);\n"
                    f"CREATE TABLE events_2025 (id UUID NOT NULL, {TIMESTAMPS});\n"
                    "CREATE INDEX events_2025_created_at_idx ON events_2025 (created_at);\n"
                    "ALTER TABLE ONLY events ATTACH PARTITION events_2025"
                    " FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');\n")
    assert run(path).findings == []


def test_index_on_a_materialized_view_the_file_creates_is_not_on_a_live_table(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text(USERS + "CREATE MATERIALIZED VIEW user_emails AS SELECT id, email FROM users WITH NO DATA;\n"
                    "CREATE UNIQUE INDEX idx_user_emails_id ON user_emails (id);\n")
    assert run(path).findings == []


def test_inherited_columns_belong_to_the_child(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text(USERS + "CREATE TABLE admins (level INTEGER) INHERITS (users);\n"
                    "ALTER TABLE ONLY admins ADD CONSTRAINT admins_pkey PRIMARY KEY (id);\n")
    assert run(path).findings == []


# A schema with what real databases hold, dumped by pg_dump: every object the linter must model.
RICH_SCHEMA = """
CREATE DOMAIN year AS integer CONSTRAINT year_check CHECK (VALUE >= 1901 AND VALUE <= 2155);
CREATE TYPE mpaa_rating AS ENUM ('G', 'PG', 'PG-13', 'R', 'NC-17');
CREATE FUNCTION last_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- dbtool: ignore drop-in-up a comment inside a body is SQL, not an ignore comment
    NEW.last_update = CURRENT_TIMESTAMP;
    RETURN NEW;
END $$;
CREATE TABLE customer (
    customer_id serial PRIMARY KEY,
    first_name text NOT NULL,
    last_name text NOT NULL,
    full_name text GENERATED ALWAYS AS (first_name || ' ' || last_name) STORED,
    activebool boolean DEFAULT true NOT NULL,
    last_update timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE film (
    film_id serial PRIMARY KEY,
    title text NOT NULL,
    release_year year,
    rating mpaa_rating DEFAULT 'G'
);
CREATE TABLE payment (
    payment_id serial NOT NULL,
    customer_id integer NOT NULL REFERENCES customer(customer_id),
    amount numeric(5,2) NOT NULL,
    payment_date timestamp with time zone NOT NULL,
    PRIMARY KEY (payment_date, payment_id)
) PARTITION BY RANGE (payment_date);
CREATE TABLE payment_p2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
CREATE TABLE payment_p2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
CREATE INDEX idx_payment_customer_id ON payment (customer_id);
CREATE TABLE staff (staff_id serial PRIMARY KEY, first_name text NOT NULL);
CREATE TABLE manager (bonus numeric(8,2)) INHERITS (staff);
ALTER TABLE manager ADD PRIMARY KEY (staff_id);
CREATE TRIGGER last_updated BEFORE UPDATE ON customer FOR EACH ROW EXECUTE FUNCTION last_updated();
CREATE MATERIALIZED VIEW rental_by_customer AS
    SELECT c.customer_id, sum(p.amount) AS total FROM customer c JOIN payment p USING (customer_id)
    GROUP BY c.customer_id WITH NO DATA;
CREATE UNIQUE INDEX idx_rental_by_customer_customer_id ON rental_by_customer (customer_id);
CREATE VIEW customer_list AS SELECT customer_id, full_name FROM customer;
"""

RICH_DOWN = """
DROP VIEW customer_list;
DROP MATERIALIZED VIEW rental_by_customer;
DROP TABLE payment;
DROP TABLE manager;
DROP TABLE staff;
DROP TABLE film;
DROP TABLE customer;
DROP FUNCTION last_updated();
DROP TYPE mpaa_rating;
DROP DOMAIN year;
"""

# The house style's verdict on that schema; no safety rule has anything to say about it.
RICH_HOUSE_STYLE = {
    ("table-name", "table customer is not plural"),
    ("table-name", "table film is not plural"),
    ("table-name", "table payment is not plural"),
    ("table-name", "table manager is not plural"),
    ("boolean-name", "boolean customer.activebool does not start with is_ or has_"),
    ("timestamp-name", "timestamp customer.last_update does not end with _at"),
    ("timestamp-name", "timestamp payment.payment_date does not end with _at"),
    ("missing-timestamps", "table customer has no created_at or updated_at"),
    ("missing-timestamps", "table film has no created_at or updated_at"),
    ("missing-timestamps", "table payment has no created_at or updated_at"),
    ("missing-timestamps", "table staff has no created_at or updated_at"),
    ("missing-timestamps", "table manager has no created_at or updated_at"),
    ("uuid-primary-key", "primary key customer.customer_id is INTEGER, not UUID"),
    ("uuid-primary-key", "primary key film.film_id is INTEGER, not UUID"),
    ("uuid-primary-key", "primary key staff.staff_id is INTEGER, not UUID"),
    ("uuid-primary-key", "primary key manager.staff_id is INTEGER, not UUID"),
    ("uuid-primary-key", "primary key (payment_date, payment_id) of payment holds no UUID column"),
}


@pytest.fixture
def rich_dump(db) -> str:
    with connect(db) as conn:
        conn.execute(RICH_SCHEMA)
    dump = pg_dump(db)
    # What the linter has to model is really there: keys added after the tables, partitions attached.
    assert "ATTACH PARTITION public.payment_p2022_01" in dump and "ADD CONSTRAINT customer_pkey" in dump
    return dump


def test_pg_dump_of_a_rich_schema_as_a_loose_file(tmp_path, rich_dump, cli):
    path = tmp_path / "dump.sql"
    path.write_text(rich_dump)
    report = run(path)
    assert found(report) == RICH_HOUSE_STYLE
    assert run(path, "safety").findings == []
    result = cli("lint", "--rules", "safety", path)
    assert result.exit_code == 0, result.output
    assert "0 error(s), 0 warning(s) in 1 file(s)" in result.stdout


def test_pg_dump_of_a_rich_schema_as_a_services_first_migration(tmp_path, rich_dump, cli):
    folder = service(tmp_path / "schemas" / "legacy", [(rich_dump, RICH_DOWN)])
    assert found(run(folder)) == RICH_HOUSE_STYLE
    assert run(folder, "safety").findings == []
    # A team adopting dbtool says so once, in the service's dbtool.toml.
    (folder / "dbtool.toml").write_text('[lint]\nrules = "safety"\n')
    result = cli("lint", "--json", "--schemas-dir", tmp_path / "schemas")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    # --rules on the command line wins over the file.
    assert found(run(folder, "all")) == RICH_HOUSE_STYLE


def test_safety_keeps_only_the_locking_safety_and_down_file_rules(tmp_path):
    folder = service(tmp_path / "svc", [
        (USERS, "DROP TABLE users;"),
        ("CREATE TABLE course (id SERIAL PRIMARY KEY);\nCREATE INDEX idx_users_email ON users (email);",
         "DROP TABLE course;"),
    ])
    assert {f.rule for f in run(folder).findings} == {"table-name", "uuid-primary-key", "missing-timestamps",
                                                      "index-not-concurrent", "down-incomplete"}
    safe = run(folder, "safety").findings
    assert {f.rule for f in safe} == {"index-not-concurrent", "down-incomplete"}
    assert {f.rule for f in safe} <= SAFETY_RULES


@pytest.mark.parametrize("toml,message", [
    ('[lint]\nrules = "loose"\n', "[lint] rules = 'loose' is not a rule set; use one of 'all', 'safety'"),
    ('[lint]\nrule = "safety"\n', "[lint] has no setting 'rule'; the only one is rules"),
    ('lint = "safety"\n', "lint is not a table"),
    ("[lint\n", "not valid TOML"),
])
def test_bad_lint_table_is_bad_input(tmp_path, cli, toml, message):
    folder = service(tmp_path / "svc", [(USERS, "DROP TABLE users;")])
    (folder / "dbtool.toml").write_text(toml)
    result = cli("lint", folder)
    assert_no_crash(result)
    assert isinstance(result.exception, SystemExit)
    assert result.exit_code == 2
    assert f"{folder / 'dbtool.toml'}: " in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_rule_set_is_bad_input(tmp_path, cli):
    folder = service(tmp_path / "svc", [(USERS, "DROP TABLE users;")])
    result = cli("lint", "--rules", "strict", folder)
    assert_no_crash(result)
    assert isinstance(result.exception, SystemExit)
    assert result.exit_code == 2
    assert "--rules: unknown rule set 'strict'; use one of all, safety" in result.stderr
    assert result.stdout == ""


# ------------------------------------------------------------ what PostgreSQL drops implicitly


def test_down_file_that_drops_a_column_drops_its_index_and_constraint(tmp_path):
    folder = service(tmp_path / "svc", [
        (USERS, "DROP TABLE users;"),
        (f"CREATE TABLE courses (id UUID PRIMARY KEY, {TIMESTAMPS});", "DROP TABLE courses;"),
        ("ALTER TABLE courses ADD COLUMN code TEXT;\n"
         "ALTER TABLE courses ADD CONSTRAINT courses_code_check CHECK (code <> '') NOT VALID;\n"
         "-- dbtool: ignore index-not-concurrent the table is empty in every environment\n"
         "CREATE INDEX idx_courses_code ON courses (lower(code));",
         "ALTER TABLE courses DROP COLUMN code;"),
    ])
    assert run(folder).findings == []


def test_down_file_that_leaves_the_column_must_drop_the_index(tmp_path):
    folder = service(tmp_path / "svc", [
        (USERS, "DROP TABLE users;"),
        ("-- dbtool: ignore index-not-concurrent users is small\n"
         "CREATE INDEX idx_users_email ON users (email);", "SELECT 1;"),
    ])
    assert found(run(folder)) == {("down-incomplete", "the down file does not remove index idx_users_email")}


def test_sequence_owned_by_a_column_goes_with_the_column(tmp_path):
    folder = service(tmp_path / "svc", [
        (USERS, "DROP TABLE users;"),
        ("CREATE SEQUENCE users_number_seq;\n"
         "ALTER TABLE users ADD COLUMN number INTEGER;\n"
         "ALTER SEQUENCE users_number_seq OWNED BY users.number;",
         "ALTER TABLE users DROP COLUMN number;"),
        ("CREATE SEQUENCE users_ticket_seq OWNED BY users.email;", "SELECT 1;"),
    ])
    assert found(run(folder)) == {("down-incomplete", "the down file does not remove sequence users_ticket_seq")}


BODY = "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {} RETURN NEW; END $$;"


def test_replaced_function_is_restored_not_dropped(tmp_path):
    old, new = BODY.format(""), BODY.format("NEW.updated_at = now();")
    folder = service(tmp_path / "svc", [(USERS + old, "DROP FUNCTION touch();\nDROP TABLE users;"), (new, old)])
    assert run(folder).findings == []


def test_replaced_function_left_with_its_new_body_is_reported(tmp_path):
    old, new = BODY.format(""), BODY.format("NEW.updated_at = now();")
    folder = service(tmp_path / "svc", [(USERS + old, "DROP FUNCTION touch();\nDROP TABLE users;"),
                                        (new, "SELECT 1;")])
    assert found(run(folder)) == {("down-incomplete", "the down file does not restore the earlier body of"
                                                      " function touch")}

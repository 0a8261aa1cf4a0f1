"""Least privilege: each service's owner, app and read-only roles, on the real server.

Roles are cluster-wide, so every test names its roles with a prefix of its own (dbtool.toml's
[roles] prefix) and drops them afterwards.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest
from conftest import SERVER, connect, one_error_line
from fleet import SERVICES, databases, env_for
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from dbtool.roles.names import names_for

OWNER_PASSWORD = "Own3r-pw-never-shown"


class Fleet:
    def __init__(self, cli, schemas: Path, dbs: dict[str, str], env: dict[str, str], tag: str):
        self.cli, self.schemas, self.dbs, self.env, self.tag = cli, schemas, dbs, env, tag
        self.names = {s: names_for(s, f"{tag}_{s}") for s in SERVICES}

    def run(self, *args: str, env: dict[str, str] | None = None):
        return self.cli(*args, "--schemas-dir", self.schemas, env={**self.env, **(env or {})})

    def as_role(self, service: str, role: str, dbname_of: str | None = None, **extra: str) -> str:
        """The conninfo of a service's database (or another's) for one role."""
        return make_conninfo(self.dbs[dbname_of or service], user=role, **extra)

    def env_as(self, kind: str, **extra: str) -> dict[str, str]:
        return {f"{s.upper()}_DATABASE_URL": self.as_role(s, getattr(self.names[s], kind), **extra)
                for s in SERVICES}


@pytest.fixture
def empty_fleet(cli, project, new_db):
    """An empty database per service, with roles of this test's own to come."""
    tag = f"r{uuid.uuid4().hex[:6]}"
    for service in SERVICES:
        path = project / "schemas" / service / "dbtool.toml"
        text = path.read_text() if path.exists() else ""
        path.write_text(f'{text}\n[roles]\nprefix = "{tag}_{service}"\n')
    dbs = databases(new_db)
    f = Fleet(cli, project / "schemas", dbs, env_for(dbs), tag)
    yield f
    drop_roles(dbs.values(), [r for n in f.names.values() for r in n.all] + [f"{tag}_nobody"])


@pytest.fixture
def fleet(empty_fleet):
    """Every service migrated by the superuser, as before roles existed."""
    result = empty_fleet.run("migrate")
    assert result.exit_code == 0, result.stderr
    return empty_fleet


def drop_roles(conninfos, roles: list[str]) -> None:
    with connect(SERVER.admin) as admin:
        existing = [r for (r,) in admin.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (roles,))]
    if not existing:
        return
    listed = sql.SQL(", ").join(map(sql.Identifier, existing))
    for conninfo in conninfos:
        with connect(conninfo) as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(listed))
            for role in reversed(existing):  # one at a time: one statement for all trips on default ACLs
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with connect(SERVER.admin) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(listed))


def owners(conninfo: str) -> dict[str, str]:
    """Every relation, routine and schema public of a database, with its owner."""
    with connect(conninfo) as conn:
        rows = conn.execute(
            """SELECT relname, pg_get_userbyid(relowner) FROM pg_class
               WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S', 'i')
               UNION ALL SELECT proname, pg_get_userbyid(proowner) FROM pg_proc
               WHERE pronamespace = 'public'::regnamespace
               UNION ALL SELECT 'schema public', pg_get_userbyid(nspowner) FROM pg_namespace
               WHERE nspname = 'public'""").fetchall()
    return dict(rows)


@pytest.fixture
def rolled(fleet):
    result = fleet.run("roles")
    assert result.exit_code == 0, result.stderr
    return fleet


def test_roles_bring_a_migrated_database_over_and_a_second_run_changes_nothing(fleet):
    first = fleet.run("roles")
    assert first.exit_code == 0, first.stderr
    names = fleet.names["course"]
    assert f"CREATE ROLE {names.owner} NOLOGIN" in first.stdout
    assert f"CREATE ROLE {names.app} LOGIN" in first.stdout
    assert f"ALTER TABLE courses OWNER TO {names.owner}" in first.stdout
    for service in SERVICES:
        owned = owners(fleet.dbs[service])
        assert {"_yoyo_migration", "_dbtool_checksum", "schema public"} <= set(owned)
        assert set(owned.values()) == {fleet.names[service].owner}, owned
    assert owners(fleet.dbs["identity"])["update_updated_at_column"] == fleet.names["identity"].owner
    assert owners(fleet.dbs["course"])["enroll_student"] == names.owner

    second = fleet.run("roles")
    assert second.exit_code == 0, second.stderr
    assert "nothing to change in 3 services" in second.stdout
    assert second.stdout.count("up to date") == 3
    check = fleet.run("roles", "--check", "--json")
    assert check.exit_code == 0, check.stdout
    assert all(not r["findings"] and not r["statements"] for r in json.loads(check.stdout))


def test_the_app_role_reads_and_writes_rows_and_nothing_else(rolled):
    identity = rolled.names["identity"]
    with connect(rolled.as_role("identity", identity.app)) as app:
        app.execute("INSERT INTO users (email, password_hash, role, name) VALUES ('a@x.io', 'h', 'student', 'A')")
        assert app.execute("SELECT name FROM users WHERE email = 'a@x.io'").fetchone() == ("A",)
        for statement in ("DROP TABLE users", "CREATE TABLE x (id int)", "TRUNCATE users",
                          "ALTER TABLE users ADD COLUMN nickname text", "DELETE FROM _yoyo_migration",
                          "CREATE INDEX idx_users_name ON users (name)"):
            with pytest.raises(errors.InsufficientPrivilege):
                app.execute(statement)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(rolled.as_role("identity", identity.app, dbname_of="course"), connect_timeout=5)
    with connect(rolled.as_role("identity", identity.readonly)) as readonly:
        assert readonly.execute("SELECT count(*) FROM users").fetchone() == (1,)
        with pytest.raises(errors.InsufficientPrivilege):
            readonly.execute("UPDATE users SET name = 'B'")


def test_the_course_app_role_enrolls_a_student(rolled):
    from dbtool.app.enrollment import enroll_student

    course = rolled.names["course"]
    with connect(rolled.as_role("course", course.app)) as app:
        course_id = app.execute(
            """INSERT INTO courses (name, price, instructor_id, instructor_name, duration_minutes)
               VALUES ('SQL', 0, gen_random_uuid(), 'Ada', 60) RETURNING id""").fetchone()[0]
        enrollment = enroll_student(app, course_id, uuid.uuid4(), "Grace")
        assert app.execute("SELECT course_id FROM enrollments WHERE id = %s", (enrollment,)).fetchone() == (course_id,)
        assert app.execute("SELECT current_students FROM courses WHERE id = %s", (course_id,)).fetchone() == (1,)


def test_a_superuser_migrates_as_the_owner_where_roles_ran_and_as_itself_elsewhere(rolled, new_db):
    identity = rolled.names["identity"]
    folder = rolled.schemas / "identity"
    (folder / "005_create_notes_table.sql").write_text("CREATE TABLE notes (id UUID PRIMARY KEY);\n")
    (folder / "005_create_notes_table.down.sql").write_text("DROP TABLE notes;\n")
    assert rolled.run("migrate", "identity").exit_code == 0
    assert owners(rolled.dbs["identity"])["notes"] == identity.owner
    other = new_db("identity")  # another env's database on the same server: roles never ran there
    result = rolled.run("migrate", "identity", env={"IDENTITY_DATABASE_URL": other})
    assert result.exit_code == 0, result.stderr
    assert owners(other)["notes"] == SERVER_USER()


def test_roles_before_the_first_migration_give_the_owner_everything_migrate_builds(empty_fleet):
    # The first read of a database without tracking tables is the long one; it becomes the owner too.
    assert empty_fleet.run("roles").exit_code == 0
    result = empty_fleet.run("migrate")
    assert result.exit_code == 0, result.stderr
    for service, conninfo in empty_fleet.dbs.items():
        owned = owners(conninfo)
        assert "_yoyo_migration" in owned and set(owned.values()) == {empty_fleet.names[service].owner}, owned


def test_the_owner_role_alone_migrates_and_rolls_back_and_its_new_tables_reach_the_app(fleet):
    course = fleet.names["course"]
    password = {f"{course.owner.upper()}_PASSWORD": OWNER_PASSWORD}
    result = fleet.run("roles", "course", env=password)
    assert result.exit_code == 0, result.stderr
    assert f"CREATE ROLE {course.owner} LOGIN" in result.stdout
    assert OWNER_PASSWORD not in result.output
    with connect(SERVER.admin) as admin:
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (course.owner,)).fetchone() == (False,)
    again = fleet.run("roles", "course", env=password)  # the stored verifier matches: nothing to set
    assert "nothing to change" in again.stdout, again.stdout

    folder = fleet.schemas / "course"
    n = len(list(folder.glob("0*.down.sql"))) + 1
    (folder / f"{n:03d}_create_course_notes_table.sql").write_text(
        "CREATE TABLE course_notes (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), body TEXT NOT NULL,"
        " created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);\n")
    (folder / f"{n:03d}_create_course_notes_table.down.sql").write_text("DROP TABLE course_notes;\n")
    as_owner = {"COURSE_DATABASE_URL": fleet.as_role("course", course.owner, password=OWNER_PASSWORD)}
    result = fleet.run("migrate", "course", env=as_owner)
    assert result.exit_code == 0, result.stderr
    assert "created trigger update_course_notes_updated_at" in result.stdout
    assert owners(fleet.dbs["course"])["course_notes"] == course.owner
    with connect(fleet.as_role("course", course.app)) as app:
        app.execute("INSERT INTO course_notes (body) VALUES ('hello')")
        assert app.execute("SELECT body FROM course_notes").fetchone() == ("hello",)
    check = fleet.run("roles", "course", "--check")
    assert check.exit_code == 0, check.stdout

    result = fleet.run("rollback", "course", "--force", env=as_owner)
    assert result.exit_code == 0, result.stderr
    with connect(fleet.dbs["course"]) as conn:
        assert conn.execute("SELECT to_regclass('course_notes')").fetchone() == (None,)


def test_the_owner_runs_every_command_and_the_readonly_role_audits_and_explains(rolled):
    passwords = {f"{n.owner.upper()}_PASSWORD": OWNER_PASSWORD for n in rolled.names.values()}
    assert rolled.run("roles", env=passwords).exit_code == 0  # a team gives dbtool a login owner
    owner = rolled.env_as("owner", password=OWNER_PASSWORD)
    for args in (("status", "--exit-code"), ("triggers",), ("seed",), ("check-references",)):
        result = rolled.run(*args, env=owner)
        assert result.exit_code == 0, (args, result.stderr)
    result = rolled.run("schema", "dump", "identity", "--live", "--json", env=owner)
    assert result.exit_code == 0, result.stderr
    for service in SERVICES:
        with connect(rolled.dbs[service]) as conn:
            conn.execute("ANALYZE")
    readonly = rolled.env_as("readonly")
    for args in (("audit-indexes",), ("status", "--exit-code"), ("check-references",)):
        result = rolled.run(*args, env=readonly)
        assert result.exit_code == 0, (args, result.stderr)
    # On a few seeded rows a sequential scan breaks the query's budget (exit 1): it ran all the same.
    result = rolled.run("explain", "identity", "--query", "user_by_email", "--json", env=readonly)
    assert result.exit_code in (0, 1) and not result.stderr, result.stderr
    assert json.loads(result.stdout)[0]["queries"][0]["name"] == "user_by_email"


def test_every_command_run_by_a_role_without_rights_says_which_grant_in_one_line(rolled):
    nobody = f"{rolled.tag}_nobody"
    with connect(SERVER.admin) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(nobody)))
    for conninfo in rolled.dbs.values():  # it may connect and see the schema, and nothing more
        with connect(conninfo) as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), sql.Identifier(nobody)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(nobody)))
    env = {f"{s.upper()}_DATABASE_URL": rolled.as_role(s, nobody) for s in SERVICES}
    for args in (("migrate", "identity"), ("rollback", "identity"), ("status", "identity"),
                 ("triggers", "identity"), ("seed", "identity"), ("schema", "dump", "identity", "--live"),
                 ("explain", "identity"), ("repair", "identity")):
        result = rolled.run(*args, env=env)
        line = one_error_line(result)
        assert result.exit_code == 3, (args, line)
        assert "permission denied" in line or "pg_dump" in line, (args, line)
        if args[0] in ("migrate", "status", "triggers", "seed", "explain"):  # the state read names its database
            dbname = psycopg.conninfo.conninfo_to_dict(rolled.dbs["identity"])["dbname"]
            assert line.startswith(f"error: identity: database {dbname}: reading its migration state:"), line
            assert f"{nobody} lacks SELECT on table _yoyo_migration" in line, line
    status = one_error_line(rolled.run("status", "identity", env=env))
    assert "lacks SELECT on table _yoyo_migration" in status and "GRANT SELECT ON TABLE _yoyo_migration" in status
    migrate = one_error_line(rolled.run("migrate", "identity", env=env))
    assert f"{nobody} lacks SELECT on table _yoyo_migration" in migrate and f"TO {nobody}" in migrate, migrate
    with connect(rolled.dbs["identity"]) as conn:  # drift that only a role with rights may repair
        conn.execute("GRANT SELECT ON users TO PUBLIC")
    roles = rolled.run("roles", "identity", env=env)
    assert roles.exit_code == 3 and "permission denied" in one_error_line(roles)
    with connect(SERVER.admin) as admin:
        assert rolled.names["identity"].app in {r for (r,) in admin.execute("SELECT rolname FROM pg_roles")}
    with connect(rolled.dbs["identity"]) as conn:  # it may read, so seed gets as far as its first INSERT
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(nobody)))
    seed = one_error_line(rolled.run("seed", "identity", env=env))
    assert "lacks INSERT on table users" in seed, seed

    elsewhere = {"COURSE_DATABASE_URL": rolled.as_role("course", rolled.names["identity"].app)}
    result = rolled.run("status", "course", env=elsewhere)
    line = one_error_line(result)
    assert result.exit_code == 3 and "lacks CONNECT" in line and "GRANT CONNECT ON DATABASE" in line, line


def test_a_migration_the_role_may_not_run_names_the_file_and_the_fix(rolled):
    identity = rolled.names["identity"]
    folder = rolled.schemas / "identity"
    env = {"IDENTITY_DATABASE_URL": rolled.as_role("identity", identity.app)}
    line = one_error_line(rolled.run("migrate", "identity", env=env))
    assert f"{identity.app} lacks SELECT on table _yoyo_migration" in line, line  # where it first fails: the state read
    (folder / "005_add_users_nickname_column.sql").write_text(
        "-- a note\nALTER TABLE users ADD COLUMN nickname TEXT;\n")
    (folder / "005_add_users_nickname_column.down.sql").write_text("ALTER TABLE users DROP COLUMN nickname;\n")
    with connect(rolled.dbs["identity"]) as conn:  # a role that may create and write the tracking tables
        app = sql.Identifier(identity.app)
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(app))
        conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(app))
    result = rolled.run("migrate", "identity", env=env)
    line = one_error_line(result)
    assert result.exit_code == 3, line
    assert "005_add_users_nickname_column.sql:2: permission denied: only the owner of table users" in line, line
    assert "nothing of this migration was applied" in line
    with connect(rolled.dbs["identity"]) as conn:
        assert conn.execute("SELECT count(*) FROM _yoyo_migration WHERE migration_id LIKE '005%'").fetchone() == (0,)


def test_check_reports_drift_and_roles_repairs_it(rolled):
    identity, course = rolled.names["identity"], rolled.names["course"]
    with connect(rolled.dbs["identity"]) as conn:
        conn.execute("GRANT SELECT ON users TO PUBLIC")
        conn.execute("CREATE TABLE audit_log (id int)")
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(identity.app)))
        conn.execute(sql.SQL("GRANT TRUNCATE ON users TO {}").format(sql.Identifier(identity.app)))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(course.app)))
    result = rolled.run("roles", "--check")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert f"table audit_log is owned by {SERVER_USER()}, not {identity.owner}" in out
    assert "table users grants SELECT to PUBLIC" in out
    assert f"{identity.app} can create objects in schema public" in out
    assert f"{identity.app} can drop or truncate users" in out
    assert f"{course.app} (service course) can connect to" in out
    assert "course: " in out and out.count("drift:") == 5, out

    dry = rolled.run("roles", "identity", "--dry-run")
    assert dry.exit_code == 0 and "would run: REVOKE CONNECT ON DATABASE" in dry.stdout, dry.stdout
    assert rolled.run("roles", "--check").exit_code == 1  # the dry run changed nothing
    assert rolled.run("roles").exit_code == 0
    check = rolled.run("roles", "--check")
    assert check.exit_code == 0 and "no drift in 3 services" in check.stdout, check.stdout
    with connect(rolled.as_role("identity", identity.app)) as app:
        assert app.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


def SERVER_USER() -> str:
    with connect(SERVER.admin) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


def test_prod_needs_yes_and_dry_run_shows_the_sql_without_changing_anything(fleet):
    env = {**fleet.env, f"{fleet.names['identity'].app.upper()}_PASSWORD": "app-pw-never-shown"}
    result = fleet.cli("roles", "identity", "--env", "prod", "--schemas-dir", fleet.schemas, env=env)
    assert result.exit_code == 4 and "--yes" in one_error_line(result)
    dry = fleet.cli("roles", "identity", "--env", "prod", "--dry-run", "--schemas-dir", fleet.schemas, env=env)
    assert dry.exit_code == 0, dry.stderr
    app = fleet.names["identity"].app
    assert f"would run: CREATE ROLE {app} LOGIN" in dry.stdout
    assert f"would run: ALTER ROLE {app} PASSWORD '***'  -- from ${app.upper()}_PASSWORD" in dry.stdout
    assert f"note: {fleet.names['identity'].readonly} has no password" in dry.stdout
    assert "app-pw-never-shown" not in dry.output
    with connect(SERVER.admin) as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (app,)).fetchone() == (0,)
    done = fleet.cli("roles", "identity", "--env", "prod", "--yes", "--schemas-dir", fleet.schemas, env=env)
    assert done.exit_code == 0, done.stderr
    assert "app-pw-never-shown" not in done.output
    from dbtool.roles.passwords import matches

    with connect(SERVER.admin) as admin:  # the verifier the server stores was made from the password
        stored = admin.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (app,)).fetchone()[0]
    assert matches(stored, "app-pw-never-shown") and not matches(stored, "another")


def test_a_bad_prefix_is_bad_input(cli, project):
    (project / "schemas" / "identity" / "dbtool.toml").write_text('[roles]\nprefix = "Bad-Name"\n')
    result = cli("roles", "identity", "--schemas-dir", project / "schemas")
    assert result.exit_code == 2
    assert "dbtool.toml: [roles] prefix 'Bad-Name'" in one_error_line(result)


def test_migrate_in_dev_on_the_embedded_server_runs_as_the_owner(cli, project, tmp_path):
    from dbtool import server as embedded

    env = {"DBTOOL_DATA_DIR": str(tmp_path / "data")}
    try:
        result = cli("migrate", "identity", "--schemas-dir", project / "schemas", env=env)
        assert result.exit_code == 0, result.stderr
        conninfo = make_conninfo(embedded.start(tmp_path / "data"), dbname="identity_db_dev")
        owned = owners(conninfo)
        assert {"users", "_yoyo_migration", "update_updated_at_column"} <= set(owned)
        assert set(owned.values()) == {"identity_owner"}, owned
        with connect(conninfo) as conn:  # the app role never writes dbtool's tracking tables
            assert conn.execute("SELECT has_table_privilege('identity_app', '_yoyo_migration', 'INSERT')"
                                ).fetchone() == (False,)
        check = cli("roles", "identity", "--check", "--schemas-dir", project / "schemas", env=env)
        assert check.exit_code == 0, check.stdout
        result = cli("rollback", "identity", "--all", "--schemas-dir", project / "schemas", env=env)
        assert result.exit_code == 0, result.stderr
        assert "update_updated_at_column" not in owners(conninfo)
    finally:
        embedded.stop(tmp_path / "data")


def test_verify_checks_the_roles_on_scratch_roles_it_drops_after(cli, project):
    result = cli("verify", "identity", "--schemas-dir", project / "schemas")
    assert result.exit_code == 0, result.output
    assert "roles: owner, app and read-only roles hold and a second run changes nothing" in result.stdout
    with connect(SERVER.admin) as admin:
        assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'identity_scratch_%'").fetchone() == (0,)


def test_the_roles_check_of_verify_fails_for_a_role_that_may_not_create_roles(cli, project, db):
    from dbtool.config import make_settings
    from dbtool.roles.scratch import check_roles

    weak = f"r{uuid.uuid4().hex[:6]}_weak"
    result = cli("migrate", "identity", "--schemas-dir", project / "schemas", env={"IDENTITY_DATABASE_URL": db})
    assert result.exit_code == 0, result.stderr
    with connect(SERVER.admin) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(sql.Identifier(weak)))
    try:
        name, ok, detail = check_roles(make_conninfo(db, user=weak), "identity", make_settings(project / "schemas"))
        assert not ok and "permission denied to create role" in detail and "CREATEROLE" in detail, detail
    finally:
        drop_roles([db], [weak])


def test_dry_run_and_check_of_a_missing_database_are_refused(cli, project):
    env = {"IDENTITY_DATABASE_URL": SERVER.conninfo(f"missing_{uuid.uuid4().hex[:8]}")}
    for flag in ("--dry-run", "--check"):
        result = cli("roles", "identity", flag, "--schemas-dir", project / "schemas", env=env)
        assert result.exit_code == 4, result.output
        assert "does not exist; run 'dbtool migrate identity' first" in one_error_line(result)


def test_a_missing_database_on_prod_is_exit_3_naming_env(cli, project):
    """prod never creates a database: a missing one is a wrong URL or --env, as in every command."""
    dbname = f"missing_{uuid.uuid4().hex[:8]}"
    env = {"COURSE_DATABASE_URL": SERVER.conninfo(dbname)}
    result = cli("roles", "course", "--check", "--env", "prod", "--schemas-dir", project / "schemas", env=env)
    assert result.exit_code == 3, result.output
    line = one_error_line(result)
    assert f"course: database {dbname} does not exist, and --env prod never creates one" in line, line
    assert "--env (now prod)" in line, line


def test_roles_wait_for_a_migrate_of_the_database_and_give_up_after_lock_timeout_changing_nothing(fleet):
    # Grants planned while migrate creates or drops tables would miss one or name one that is gone.
    from dbtool.migrate.tracking import LOCK_KEYS

    with connect(fleet.dbs["course"]) as migrating:
        migrating.execute("SELECT pg_advisory_lock(%s, %s)", LOCK_KEYS)  # as a migrate run holds it
        line = one_error_line(fleet.run("roles", "course", "--lock-timeout", "0.3"), 3)
        assert "course: a dbtool migrate of this database still runs after 0.3s" in line, line
        with connect(SERVER.admin) as admin:
            assert admin.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                                 (fleet.names["course"].owner,)).fetchone()[0] == 0
    result = fleet.run("roles", "course", "--lock-timeout", "0.3")  # the lock went with its session
    assert result.exit_code == 0, result.stderr

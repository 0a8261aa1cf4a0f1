"""Where a database comes from: one table of cases for the one function that decides it."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from dbtool.config import (
    make_settings,
    redact,
    resolve_target,
    secrets,
    select_services,
)
from dbtool.errors import BadInput

URL = "postgresql://app:pw1@db.example:5432/course_db_custom"
OTHER = "postgresql://other:pw2@other.example:5433/course_other"
DB_VARS = {"DB_HOST": "pg.internal", "DB_PORT": "6543", "DB_USER": "svc", "DB_PASSWORD": "pw3"}

CASES = [
    # (env, --dsn, environment, expected source, expected dbname, may create)
    ("dev", URL, {"COURSE_DATABASE_URL": OTHER, **DB_VARS}, "--dsn", "course_db_custom", True),
    ("dev", None, {"COURSE_DATABASE_URL": OTHER, **DB_VARS}, "COURSE_DATABASE_URL", "course_other", True),
    ("dev", None, {"IDENTITY_DATABASE_URL": OTHER, **DB_VARS}, "DB_HOST", "course_db_dev", True),
    ("test", None, DB_VARS, "DB_HOST", "course_db_test", True),
    ("prod", None, DB_VARS, "DB_HOST", "course_db_prod", False),
    ("prod", None, {"COURSE_DATABASE_URL": OTHER}, "COURSE_DATABASE_URL", "course_other", False),
    ("prod", URL, {}, "--dsn", "course_db_custom", False),
    ("dev", None, {}, "embedded", "course_db_dev", True),
    ("test", None, {"DB_PORT": "5432"}, "embedded", "course_db_test", True),
    ("dev", None, {"COURSE_DATABASE_URL": ""}, "embedded", "course_db_dev", True),
]


@pytest.mark.parametrize("env,dsn,environ,source,dbname,may_create", CASES)
def test_resolution_order(env, dsn, environ, source, dbname, may_create):
    target = resolve_target("course", make_settings(env=env, dsn=dsn, environ=environ))
    assert (target.source, target.dbname, target.may_create) == (source, dbname, may_create)
    assert target.embedded == (source == "embedded")


def test_db_host_variables_reach_the_connection():
    target = resolve_target("identity", make_settings(environ=DB_VARS))
    parts = conninfo_to_dict(target.conninfo)
    assert parts == {"host": "pg.internal", "port": "6543", "user": "svc", "password": "pw3",
                     "dbname": "identity_db_dev"}


def test_prod_never_falls_back_to_the_embedded_server():
    with pytest.raises(BadInput, match="prod never uses the embedded server"):
        resolve_target("course", make_settings(env="prod", environ={}))


@pytest.mark.parametrize("kwargs,message", [
    ({"env": "staging"}, "--env: unknown environment 'staging'"),
    ({"wait": -1}, "--wait"),
    ({"dsn": "not a dsn at all"}, "--dsn: not a PostgreSQL connection string"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(BadInput, match=message):
        make_settings(environ={}, **kwargs)


def test_dsn_without_database_is_refused():
    with pytest.raises(BadInput, match="names no database"):
        resolve_target("course", make_settings(dsn="postgresql://u:p@h:5432", environ={}))


def test_services_are_discovered_and_checked(tmp_path: Path):
    for name in ("beta", "alpha", ".hidden", "_skip"):
        (tmp_path / name).mkdir()
    settings = make_settings(schemas_dir=tmp_path, environ={})
    assert select_services(settings, None) == ["alpha", "beta"]
    with pytest.raises(BadInput, match="no such service folder"):
        select_services(settings, ["gamma"])
    with pytest.raises(BadInput, match="--dsn names one database"):
        select_services(make_settings(schemas_dir=tmp_path, dsn=URL, environ={}), None)


def test_every_configured_password_is_redacted():
    settings = make_settings(dsn=URL, environ={"COURSE_DATABASE_URL": OTHER, **DB_VARS})
    hidden = secrets(settings)
    text = redact(f"{URL} {OTHER} password=pw3", hidden)
    assert not any(pw in text for pw in ("pw1", "pw2", "pw3"))
    assert "***" in text

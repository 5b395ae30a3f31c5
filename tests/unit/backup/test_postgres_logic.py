import pytest
from lighthouse_bridge.backup.errors import ConfigError, RefusedError
from lighthouse_bridge.backup.manifest import DatabaseStats
from lighthouse_bridge.backup.postgres import PgTarget, check_empty, compare_stats, quote_ident, replace_preamble


def test_password_travels_in_env_not_argv() -> None:
    t = PgTarget("postgresql://user:p%40ss@db.local:5432/bridge?sslmode=require")
    assert t.safe_url == "postgresql://user@db.local:5432/bridge?sslmode=require"
    assert "p%40ss" not in t.safe_url and "p@ss" not in t.safe_url
    assert t.env()["PGPASSWORD"] == "p@ss"
    assert t.dbname == "bridge"


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="postgresql://"):
        PgTarget("mysql://x@y/z")


def test_compare_stats_reports_each_difference() -> None:
    want = DatabaseStats("db", 10, {"public.events": 10, "public.blobs": 2})
    assert compare_stats(want, DatabaseStats("other", 10, {"public.events": 10, "public.blobs": 2})) == []
    problems = compare_stats(want, DatabaseStats("db", 9, {"public.events": 9, "public.extra": 1}))
    assert problems == [
        "event store high-water: manifest 10, restored 9",
        "public.blobs: manifest 2 rows, restored absent",
        "public.events: manifest 10 rows, restored 9",
        "public.extra: manifest absent rows, restored 1",
    ]


def test_check_empty_refuses_without_replace() -> None:
    check_empty([], replace=False, dbname="db")
    check_empty(["public.t"], replace=True, dbname="db")
    with pytest.raises(RefusedError, match=r"not empty \(7 objects: public.a, .*, \.\.\.\).*--replace"):
        check_empty([f"public.{c}" for c in "abcdefg"], replace=False, dbname="db")


def test_replace_preamble_drops_every_user_schema_and_recreates_public() -> None:
    sql = replace_preamble(["app", 'we"ird', "public"], 150004)
    assert sql[:3] == [
        'DROP SCHEMA IF EXISTS "app" CASCADE',
        'DROP SCHEMA IF EXISTS "we""ird" CASCADE',
        'DROP SCHEMA IF EXISTS "public" CASCADE',
    ]
    assert "CREATE SCHEMA public AUTHORIZATION pg_database_owner" in sql
    assert quote_ident('a"b') == '"a""b"'

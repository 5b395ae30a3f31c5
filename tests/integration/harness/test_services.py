"""The data services are real: PostgreSQL, Redis and S3 each complete a round trip, and per-test isolation holds."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from tests.harness.ports import ephemeral_range, free_listen_port
from tests.harness.services import (
    SERVICES_SH,
    ServiceEnv,
    fresh_bucket,
    fresh_database,
    key_prefix,
    parse_exports,
    run_sync,
    unique_name,
)


async def _pg(url: str, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        out: list[Any] = []
        for sql in statements:
            out.append(await conn.fetch(sql))
        return out
    finally:
        await conn.close()


def test_env_prints_loopback_exports(services: ServiceEnv) -> None:
    out = subprocess.run([str(SERVICES_SH), "env"], capture_output=True, text=True, check=True).stdout
    env = parse_exports(out)
    assert env["LIGHTHOUSE_DATABASE_URL"].startswith("postgresql://lighthouse:lighthouse@127.0.0.1:")
    assert env["LIGHTHOUSE_REDIS_URL"].startswith("redis://:lighthouse@127.0.0.1:")
    assert env["LIGHTHOUSE_S3_ENDPOINT"].startswith("http://127.0.0.1:")
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]


def test_status_reports_all_running(services: ServiceEnv) -> None:
    status = subprocess.run([str(SERVICES_SH), "status"], capture_output=True, text=True)
    assert status.returncode == 0, status.stdout
    states = {line.split()[0]: line.split()[1] for line in status.stdout.splitlines() if line.strip()}
    assert states == {"postgres": "running", "redis": "running", "s3": "running"}


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def private_state() -> Iterator[Path]:
    """A state directory for a private set of services, outside pytest's temporary tree: pytest resets
    /tmp/pytest-of-<user> to mode 0700 whenever any session starts, which would lock the postgres user out."""
    path = Path(tempfile.mkdtemp(prefix="lh-services-"))
    os.chmod(path, 0o755)
    try:
        yield path / "state"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_private_instance_up_then_down_leaves_nothing_listening(private_state: Path) -> None:
    # A second, private set of services (own state dir and ports) so the shared one is not disturbed.
    ports = {name: free_listen_port() for name in ("LIGHTHOUSE_PG_PORT", "LIGHTHOUSE_REDIS_PORT", "LIGHTHOUSE_S3_PORT")}
    env = {**os.environ, "LIGHTHOUSE_STATE": str(private_state), **{k: str(v) for k, v in ports.items()}}
    try:
        up = subprocess.run([str(SERVICES_SH), "up"], env=env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        assert all(_listening(p) for p in ports.values())
        exports = parse_exports(subprocess.run([str(SERVICES_SH), "env"], env=env, capture_output=True, text=True,
                                               check=True).stdout)
        assert f":{ports['LIGHTHOUSE_PG_PORT']}/" in exports["LIGHTHOUSE_DATABASE_URL"]
        (rows,) = run_sync(_pg(exports["LIGHTHOUSE_DATABASE_URL"], "SELECT current_database() AS d"))
        assert rows[0]["d"] == "lighthouse"
    finally:
        down = subprocess.run([str(SERVICES_SH), "down"], env=env, capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert [p for p in ports.values() if _listening(p)] == []
    status = subprocess.run([str(SERVICES_SH), "status"], env=env, capture_output=True, text=True)
    assert status.returncode != 0 and status.stdout.count("stopped") == 3


def test_up_twice_reuses_running_services(services: ServiceEnv) -> None:
    up = subprocess.run([str(SERVICES_SH), "up"], capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    assert "PostgreSQL already running" in up.stderr
    assert "Redis already running" in up.stderr
    assert "S3 server already running" in up.stderr


# ---------------------------------------------------------------- PostgreSQL
def test_postgres_round_trip(postgres_url: str) -> None:
    payload = os.urandom(4096).hex()
    (_, _, rows, version) = run_sync(_pg(
        postgres_url,
        "CREATE TABLE roundtrip (id bigserial PRIMARY KEY, body text NOT NULL)",
        f"INSERT INTO roundtrip (body) VALUES ('{payload}'), ('second')",
        "SELECT id, body FROM roundtrip ORDER BY id",
        "SHOW server_version",
    ))
    assert [(r["id"], r["body"]) for r in rows] == [(1, payload), (2, "second")]
    assert version[0]["server_version"].split(".")[0].isdigit()


def test_postgres_database_is_fresh_and_listens_on_loopback(postgres_url: str) -> None:
    (tables, addr) = run_sync(_pg(
        postgres_url,
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
        "SELECT inet_server_addr()::text AS addr, current_setting('listen_addresses') AS listen",
    ))
    assert tables[0]["n"] == 0
    assert addr[0]["addr"].startswith("127.0.0.1")
    assert addr[0]["listen"] == "127.0.0.1"


def test_postgres_databases_are_isolated(services: ServiceEnv, postgres_url: str) -> None:
    # A second fresh database, made the same way the fixture does, must not see the first one's table.
    other = unique_name("t_")
    admin = services.database("postgres")
    run_sync(_pg(admin, f'CREATE DATABASE "{other}"'))
    try:
        run_sync(_pg(postgres_url, "CREATE TABLE only_here (x int)", "INSERT INTO only_here VALUES (1)"))
        (seen,) = run_sync(_pg(services.database(other), "SELECT to_regclass('public.only_here') AS t"))
        assert seen[0]["t"] is None
        (mine,) = run_sync(_pg(postgres_url, "SELECT to_regclass('public.only_here')::text AS t"))
        assert mine[0]["t"] == "only_here"
    finally:
        run_sync(_pg(admin, f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)'))


def test_fresh_database_is_dropped_on_exit(services: ServiceEnv) -> None:
    with fresh_database(services) as url:
        name = url.rsplit("/", 1)[1]
        exists = f"SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
        assert run_sync(_pg(services.database("postgres"), exists))[0][0]["n"] == 1
        run_sync(_pg(url, "CREATE TABLE t (x int)"))  # an open connection elsewhere must not block the drop
    assert run_sync(_pg(services.database("postgres"), exists))[0][0]["n"] == 0


# ---------------------------------------------------------------- Redis
def test_redis_round_trip(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        value = os.urandom(1024)
        client.set(f"{redis_prefix}blob", value)
        client.rpush(f"{redis_prefix}list", "a", "b", "c")
        assert client.get(f"{redis_prefix}blob") == value
        assert client.lrange(f"{redis_prefix}list", 0, -1) == [b"a", b"b", b"c"]
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("bind")["bind"] == "127.0.0.1"
    finally:
        client.close()


def test_redis_requires_password(services: ServiceEnv) -> None:
    url = services.redis_db(0).replace(":lighthouse@", "@")
    client = redis.Redis.from_url(url)
    try:
        with pytest.raises(redis.AuthenticationError):
            client.ping()
    except redis.ResponseError as exc:  # older servers answer NOAUTH as a plain error
        assert "NOAUTH" in str(exc)
    finally:
        client.close()


def test_redis_prefix_keys_are_deleted_after_test(services: ServiceEnv) -> None:
    client = redis.Redis.from_url(services.redis_db(0))
    try:
        with key_prefix(services) as prefix:
            client.mset({f"{prefix}{i}": i for i in range(2500)})
            client.set("outside:" + prefix, 1)
            assert len(list(client.scan_iter(match=f"{prefix}*", count=1000))) == 2500
        assert list(client.scan_iter(match=f"{prefix}*")) == []
        assert client.get("outside:" + prefix) == b"1"
    finally:
        client.delete("outside:" + prefix)
        client.close()


def test_redis_db_url_is_a_private_logical_database(redis_db_url: str, redis_url: str) -> None:
    mine = redis.Redis.from_url(redis_db_url)
    shared = redis.Redis.from_url(redis_url)
    try:
        assert mine.dbsize() == 0
        key = unique_name("isolated:")
        mine.set(key, "x")
        assert mine.get(key) == b"x"
        assert shared.get(key) is None
    finally:
        mine.close()
        shared.close()


# ---------------------------------------------------------------- S3
def test_s3_round_trip(s3_client: Any, s3_bucket: str) -> None:
    body = os.urandom(256 * 1024)
    s3_client.put_object(Bucket=s3_bucket, Key="dir/object.bin", Body=body)
    got = s3_client.get_object(Bucket=s3_bucket, Key="dir/object.bin")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == ["dir/object.bin"]


def test_s3_multipart_round_trip(s3_client: Any, s3_bucket: str) -> None:
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1024)]
    up = s3_client.create_multipart_upload(Bucket=s3_bucket, Key="multi")
    etags = []
    for n, data in enumerate(parts, start=1):
        r = s3_client.upload_part(Bucket=s3_bucket, Key="multi", UploadId=up["UploadId"], PartNumber=n, Body=data)
        etags.append({"PartNumber": n, "ETag": r["ETag"]})
    s3_client.complete_multipart_upload(Bucket=s3_bucket, Key="multi", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": etags})
    got = s3_client.get_object(Bucket=s3_bucket, Key="multi")["Body"].read()
    assert got == b"".join(parts)


def test_s3_buckets_are_isolated(s3_client: Any, s3_bucket: str) -> None:
    other = unique_name("test-")
    s3_client.create_bucket(Bucket=other)
    try:
        s3_client.put_object(Bucket=s3_bucket, Key="mine", Body=b"1")
        assert s3_client.list_objects_v2(Bucket=other).get("KeyCount") == 0
        assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 1
    finally:
        s3_client.delete_object(Bucket=s3_bucket, Key="mine")
        s3_client.delete_bucket(Bucket=other)


def test_s3_bucket_fixture_empties_and_deletes(s3_client: Any) -> None:
    from botocore.exceptions import ClientError

    with fresh_bucket(s3_client) as bucket:
        s3_client.put_object(Bucket=bucket, Key="a", Body=b"a")
        s3_client.create_multipart_upload(Bucket=bucket, Key="pending")
    with pytest.raises(ClientError) as err:
        s3_client.head_bucket(Bucket=bucket)
    assert err.value.response["Error"]["Code"] in ("404", "NoSuchBucket")


@pytest.mark.parametrize("variable", ["LIGHTHOUSE_PG_PORT", "LIGHTHOUSE_REDIS_PORT", "LIGHTHOUSE_S3_PORT"])
def test_a_port_in_the_ephemeral_range_is_refused(tmp_path: Any, variable: str) -> None:
    # An outgoing connection may hold any port of that range at any moment: a fixed one there fails at random.
    lo, hi = ephemeral_range()
    env = {**os.environ, "LIGHTHOUSE_STATE": str(tmp_path / "state"), variable: str(lo + 7)}
    up = subprocess.run([str(SERVICES_SH), "up"], env=env, capture_output=True, text=True, timeout=60)
    assert up.returncode != 0
    assert f"port {lo + 7} lies in the ephemeral range {lo}-{hi}" in up.stderr
    assert not (tmp_path / "state" / "services").exists(), "nothing may start before the ports are checked"

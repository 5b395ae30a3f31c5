"""Data-service fixtures: real PostgreSQL, Redis and an S3 server, started by ``hack/services.sh up``.

Nothing starts unless a test asks for one of these fixtures, so the unit tier never touches a server. The servers
keep running after the session (other sessions share them); ``make services-down`` stops them.

* ``services``: session-wide :class:`ServiceEnv` (the exports of ``hack/services.sh env``).
* ``postgres_url``: a fresh, empty database per test, dropped afterwards (``WITH (FORCE)``).
* ``redis_url`` + ``redis_prefix``: logical db 0 and a unique key prefix; keys under the prefix are deleted after.
* ``redis_db_url``: a whole logical database (1..63) for tests that need FLUSHDB or keyspace-wide commands; a file
  lock makes the number exclusive across concurrent pytest sessions, and it is flushed before and after.
* ``s3_client`` (boto3) and ``s3_bucket``: a fresh bucket per test, emptied (objects, versions, pending multipart
  uploads) and deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shlex
import subprocess
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_SH = REPO_ROOT / "hack" / "services.sh"
REDIS_DBS = range(1, 64)  # hack/services.sh configures 64 logical databases; db 0 is the shared one

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceEnv:
    """Connection settings of the running services, as ``hack/services.sh env`` prints them."""

    env: dict[str, str]

    @property
    def database_url(self) -> str:
        """Superuser URL of the ``lighthouse`` database (use ``postgres_url`` for a private database)."""
        return self.env["LIGHTHOUSE_DATABASE_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["LIGHTHOUSE_REDIS_URL"]

    @property
    def s3_endpoint(self) -> str:
        return self.env["LIGHTHOUSE_S3_ENDPOINT"]

    @property
    def region(self) -> str:
        return self.env.get("AWS_DEFAULT_REGION", "us-east-1")

    def database(self, name: str) -> str:
        """URL of database ``name`` on the same server with the same credentials."""
        return with_path(self.database_url, f"/{name}")

    def redis_db(self, index: int) -> str:
        return with_path(self.redis_url, f"/{index}")


def with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def parse_exports(text: str) -> dict[str, str]:
    """Parses ``export NAME='value'`` lines (the output of ``hack/services.sh env``)."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            env[key] = value
    return env


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to completion from sync code, even when the calling thread already runs a loop."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    t = threading.Thread(target=target, name="services-fixture")
    t.start()
    t.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def unique_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- session
@pytest.fixture(scope="session")
def services() -> ServiceEnv:
    """Starts (or reuses) the data services; fails with the script's output when they cannot start."""
    up = subprocess.run([str(SERVICES_SH), "up"], capture_output=True, text=True, timeout=900)
    if up.returncode != 0:
        pytest.fail(f"hack/services.sh up failed (exit {up.returncode}):\n{up.stderr}{up.stdout}", pytrace=False)
    out = subprocess.run([str(SERVICES_SH), "env"], capture_output=True, text=True, timeout=60, check=True)
    env = parse_exports(out.stdout)
    missing = {"LIGHTHOUSE_DATABASE_URL", "LIGHTHOUSE_REDIS_URL", "LIGHTHOUSE_S3_ENDPOINT"} - env.keys()
    if missing:
        pytest.fail(f"hack/services.sh env did not print {sorted(missing)}", pytrace=False)
    return ServiceEnv(env)


# ---------------------------------------------------------------- PostgreSQL
async def _pg_execute(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=30)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(services: ServiceEnv) -> Iterator[str]:
    """Creates an empty database and yields its URL; drops it (closing its connections) on exit."""
    name = unique_name("t_")
    admin = services.database("postgres")
    run_sync(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield services.database(name)
    finally:
        run_sync(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_url(services: ServiceEnv) -> Iterator[str]:
    """A fresh empty database owned by the superuser ``lighthouse``; dropped after the test."""
    with fresh_database(services) as url:
        yield url


# ---------------------------------------------------------------- Redis
@pytest.fixture
def redis_url(services: ServiceEnv) -> str:
    """Logical db 0, shared: combine with ``redis_prefix``."""
    return services.redis_db(0)


@contextlib.contextmanager
def key_prefix(services: ServiceEnv) -> Iterator[str]:
    """Yields a unique key prefix (``test:<hex>:``) in db 0; deletes every key under it on exit."""
    import redis

    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(services.redis_db(0))
        try:
            batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for i in range(0, len(batch), 1000):
                client.delete(*batch[i:i + 1000])
        finally:
            client.close()


@pytest.fixture
def redis_prefix(services: ServiceEnv) -> Iterator[str]:
    """A unique key prefix (``test:<hex>:``); every key under it is deleted after the test."""
    with key_prefix(services) as prefix:
        yield prefix


@pytest.fixture
def redis_db_url(services: ServiceEnv) -> Iterator[str]:
    """A whole logical database for this test alone (exclusive across processes via a lock file)."""
    import redis

    lock_dir = Path(os.environ.get("LIGHTHOUSE_STATE", REPO_ROOT / ".state")) / "services" / "redis-db-locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    for index in REDIS_DBS:
        fh = open(lock_dir / f"{index}.lock", "w")  # held (locked) for the whole test
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        url = services.redis_db(index)
        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
            yield url
            client.flushdb()
        finally:
            client.close()
            fh.close()  # releases the lock
        return
    pytest.fail("all Redis logical databases 1..63 are in use by other tests", pytrace=False)


# ---------------------------------------------------------------- S3
@pytest.fixture(scope="session")
def s3_client(services: ServiceEnv) -> Any:
    """A boto3 S3 client for the local S3 server (path-style addressing)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=services.s3_endpoint,
        region_name=services.region,
        aws_access_key_id=services.env.get("AWS_ACCESS_KEY_ID", "lighthouse"),
        aws_secret_access_key=services.env.get("AWS_SECRET_ACCESS_KEY", "lighthouse-secret"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def empty_bucket(client: Any, bucket: str) -> None:
    """Deletes every object, object version and pending multipart upload of ``bucket``."""
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for up in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        items = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                 for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(items), 1000):
            client.delete_objects(Bucket=bucket, Delete={"Objects": items[i:i + 1000], "Quiet": True})


@contextlib.contextmanager
def fresh_bucket(client: Any) -> Iterator[str]:
    """Creates an empty bucket and yields its name; empties and deletes it on exit."""
    name = unique_name("test-")
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        empty_bucket(client, name)
        client.delete_bucket(Bucket=name)


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A fresh bucket name (created, empty); emptied and deleted after the test."""
    with fresh_bucket(s3_client) as name:
        yield name

"""Backup to the real S3 server and restore into real PostgreSQL, through the CLI."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from typing import Any

from tests.integration.backup.conftest import BackupTool, fingerprint, seed, sql


def _objects(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def test_round_trip_restores_equal_counts_and_content(
    backup_tool: BackupTool, postgres_url: str, target_url: str, s3_client: Any, s3_bucket: str
) -> None:
    seed(postgres_url)
    before = fingerprint(postgres_url)
    r = backup_tool.ok("backup", "--json")
    manifest = json.loads(r.stdout)

    # Layout <prefix>/<namespace>/<name>/<UTC timestamp>/ and manifest checksums match the stored bytes.
    root = f"backups/test/{backup_tool.env['LIGHTHOUSE_NAME']}/{manifest['id']}/"
    stored = _objects(s3_client, s3_bucket, root)
    assert set(stored) == {root + n for n in ("manifest.json", "database.dump", "config.json")}
    assert json.loads(stored[root + "manifest.json"]) == manifest
    for obj in manifest["objects"]:
        data = stored[root + obj["name"]]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (obj["size"], obj["sha256"])
    assert manifest["database"]["high_water"] == 2000
    assert manifest["database"]["tables"] == {"public.events": 2000, "public.blobs": 300, "public.notes": 17}
    assert manifest["server_version"].startswith(manifest["pg_dump_version"].split(".")[0])
    assert manifest["duration_seconds"] >= 0
    assert stored[root + "database.dump"][:5] == b"PGDMP"  # pg_dump custom format
    config = json.loads(stored[root + "config.json"])
    assert config["env"]["LIGHTHOUSE_NAME"] == backup_tool.env["LIGHTHOUSE_NAME"]
    assert "lighthouse@" not in config["env"]["LIGHTHOUSE_DATABASE_URL"]  # password redacted

    restored = backup_tool.ok("restore", "--from", "latest", LIGHTHOUSE_DATABASE_URL=target_url)
    assert f"restored {manifest['id']}" in restored.stdout
    assert fingerprint(target_url) == before
    assert sql(target_url, "SELECT n FROM event_types WHERE event_type = 'file_1'")[0][0]["n"] == 667


def test_restore_by_id_and_list(backup_tool: BackupTool, postgres_url: str, target_url: str) -> None:
    seed(postgres_url, events=10)
    first = json.loads(backup_tool.ok("backup", "--json").stdout)["id"]
    sql(postgres_url, "INSERT INTO events (position, event_type, data) VALUES (11, 'late', '{}')")
    second = json.loads(backup_tool.ok("backup", "--json").stdout)["id"]
    assert second > first

    listed = json.loads(backup_tool.ok("backup", "list", "--json").stdout)
    assert [(b["id"], b["complete"], b["high_water"]) for b in listed] == [(first, True, 10), (second, True, 11)]
    table = backup_tool.ok("backup", "list").stdout
    assert first in table and second in table and "complete" in table

    backup_tool.ok("restore", "--from", first, LIGHTHOUSE_DATABASE_URL=target_url)
    assert sql(target_url, "SELECT max(position) AS m FROM events")[0][0]["m"] == 10


def test_restore_refuses_non_empty_database_unless_replace(
    backup_tool: BackupTool, postgres_url: str, target_url: str
) -> None:
    seed(postgres_url, events=50)
    backup_tool.ok("backup")
    sql(target_url, "CREATE TABLE precious (x int)", "INSERT INTO precious VALUES (42)")

    refused = backup_tool.run("restore", "--from", "latest", LIGHTHOUSE_DATABASE_URL=target_url)
    assert refused.returncode == 5
    assert "is not empty" in refused.stderr and "public.precious" in refused.stderr and "--replace" in refused.stderr
    assert sql(target_url, "SELECT x FROM precious")[0][0]["x"] == 42

    backup_tool.ok("restore", "--from", "latest", "--replace", LIGHTHOUSE_DATABASE_URL=target_url)
    assert sql(target_url, "SELECT to_regclass('public.precious') AS t")[0][0]["t"] is None
    assert fingerprint(target_url) == fingerprint(postgres_url)


def test_backup_is_consistent_while_the_bridge_writes(
    backup_tool: BackupTool, postgres_url: str, target_url: str
) -> None:
    # A writer appends events during the dump; the manifest's counts come from the dump's own snapshot, so the
    # restore's verification (which fails on any difference) must pass.
    seed(postgres_url, events=20000)
    stop = threading.Event()

    def writer() -> None:
        pos = 20000
        while not stop.is_set():
            pos += 1
            sql(
                postgres_url,
                f"INSERT INTO events (position, event_type, data) VALUES ({pos}, 'w', '{{}}')",
                f"INSERT INTO notes (body) VALUES ('w{pos}')",
            )

    t = threading.Thread(target=writer)
    t.start()
    try:
        manifest = json.loads(backup_tool.ok("backup", "--json").stdout)
    finally:
        stop.set()
        t.join()
    assert manifest["database"]["tables"]["public.events"] == manifest["database"]["high_water"]
    backup_tool.ok("restore", "--from", manifest["id"], LIGHTHOUSE_DATABASE_URL=target_url)
    restored_hw = sql(target_url, "SELECT max(position) AS m FROM events")[0][0]["m"]
    assert restored_hw == manifest["database"]["high_water"]


def test_corrupted_object_is_refused_before_any_change(
    backup_tool: BackupTool, postgres_url: str, target_url: str, s3_client: Any, s3_bucket: str
) -> None:
    seed(postgres_url, events=100)
    manifest = json.loads(backup_tool.ok("backup", "--json").stdout)
    key = f"backups/test/{backup_tool.env['LIGHTHOUSE_NAME']}/{manifest['id']}/database.dump"
    data = bytearray(s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0xFF
    s3_client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(data))
    sql(target_url, "CREATE TABLE precious (x int)", "INSERT INTO precious VALUES (7)")

    # Even with --replace (permission to drop everything) nothing is touched.
    r = backup_tool.run("restore", "--from", "latest", "--replace", LIGHTHOUSE_DATABASE_URL=target_url)
    assert r.returncode == 4, r.stderr
    assert "database.dump does not match the manifest" in r.stderr and "nothing was changed" in r.stderr
    assert sql(target_url, "SELECT x FROM precious")[0][0]["x"] == 7
    assert sql(target_url, "SELECT to_regclass('public.events') AS t")[0][0]["t"] is None


def test_failing_restore_rolls_back_completely(
    backup_tool: BackupTool, postgres_url: str, target_url: str, s3_client: Any, s3_bucket: str
) -> None:
    # A truncated dump whose manifest was rewritten to match passes the checksum step; pg_restore then fails
    # midway, and the single transaction leaves the target exactly as it was (the --replace drop included).
    seed(postgres_url, events=5000)
    manifest = json.loads(backup_tool.ok("backup", "--json").stdout)
    root = f"backups/test/{backup_tool.env['LIGHTHOUSE_NAME']}/{manifest['id']}/"
    data = s3_client.get_object(Bucket=s3_bucket, Key=root + "database.dump")["Body"].read()
    cut = data[: int(len(data) * 0.8)]
    s3_client.put_object(Bucket=s3_bucket, Key=root + "database.dump", Body=cut)
    for obj in manifest["objects"]:
        if obj["name"] == "database.dump":
            obj.update(size=len(cut), sha256=hashlib.sha256(cut).hexdigest())
    s3_client.put_object(Bucket=s3_bucket, Key=root + "manifest.json", Body=json.dumps(manifest).encode())
    sql(target_url, "CREATE TABLE precious (x int)", "INSERT INTO precious VALUES (7)")

    r = backup_tool.run("restore", "--from", manifest["id"], "--replace", LIGHTHOUSE_DATABASE_URL=target_url)
    assert r.returncode != 0
    assert "restore failed" in r.stderr and "rolled back" in r.stderr
    assert sql(target_url, "SELECT x FROM precious")[0][0]["x"] == 7
    assert sql(target_url, "SELECT to_regclass('public.events') AS t")[0][0]["t"] is None


def test_incomplete_backup_is_not_restorable(
    backup_tool: BackupTool, postgres_url: str, target_url: str, s3_client: Any, s3_bucket: str
) -> None:
    seed(postgres_url, events=10)
    manifest = json.loads(backup_tool.ok("backup", "--json").stdout)
    s3_client.delete_object(
        Bucket=s3_bucket, Key=f"backups/test/{backup_tool.env['LIGHTHOUSE_NAME']}/{manifest['id']}/manifest.json"
    )
    by_id = backup_tool.run("restore", "--from", manifest["id"], LIGHTHOUSE_DATABASE_URL=target_url)
    assert by_id.returncode != 0 and "incomplete" in by_id.stderr
    latest = backup_tool.run("restore", "--from", "latest", LIGHTHOUSE_DATABASE_URL=target_url)
    assert latest.returncode == 3 and "no complete backup" in latest.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


def test_unreachable_s3_fails_clearly(backup_tool: BackupTool, postgres_url: str, target_url: str) -> None:
    seed(postgres_url, events=10)
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    for args in (("backup",), ("backup", "list"), ("restore", "--from", "latest")):
        r = backup_tool.run(*args, timeout=120, LIGHTHOUSE_S3_ENDPOINT=endpoint, LIGHTHOUSE_DATABASE_URL=target_url)
        assert r.returncode == 3, (args, r.stderr)
        assert f"cannot reach S3 endpoint {endpoint}" in r.stderr
        assert "Traceback" not in r.stderr


def test_missing_bucket_and_bad_config_fail_clearly(backup_tool: BackupTool) -> None:
    r = backup_tool.run("backup", "--bucket", "no-such-bucket-lighthouse")
    assert r.returncode == 3 and "bucket 'no-such-bucket-lighthouse' does not exist" in r.stderr
    r = backup_tool.run("backup", LIGHTHOUSE_BACKUP_MAX_AGE="soon")
    assert r.returncode == 2 and "retention: not a duration" in r.stderr
    r = backup_tool.run("restore", "--from", "yesterday")
    assert r.returncode != 0 and "not a backup id" in r.stderr


def test_unreachable_database_fails_without_publishing(backup_tool: BackupTool, s3_client: Any, s3_bucket: str) -> None:
    r = backup_tool.run("backup", LIGHTHOUSE_DATABASE_URL=f"postgresql://lighthouse:x@127.0.0.1:{_closed_port()}/x")
    assert r.returncode == 1 and "cannot connect to PostgreSQL" in r.stderr
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount") == 0
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_cache_snapshot_is_labelled_cache(
    backup_tool: BackupTool, postgres_url: str, redis_url: str, redis_prefix: str, s3_client: Any, s3_bucket: str
) -> None:
    import redis

    seed(postgres_url, events=5)
    client = redis.Redis.from_url(redis_url)
    client.mset({f"{redis_prefix}k{i}": f"v{i}" for i in range(1200)})
    client.set("unrelated:" + redis_prefix, "x")
    try:
        manifest = json.loads(
            backup_tool.ok(
                "backup", "--cache", "--json", LIGHTHOUSE_REDIS_URL=redis_url, LIGHTHOUSE_REDIS_PREFIX=redis_prefix
            ).stdout
        )
    finally:
        client.delete("unrelated:" + redis_prefix)
        client.close()
    cache = [o for o in manifest["objects"] if o["kind"] == "cache"]
    assert len(cache) == 1 and cache[0]["label"] == "cache"
    key = f"backups/test/{backup_tool.env['LIGHTHOUSE_NAME']}/{manifest['id']}/{cache[0]['name']}"
    lines = s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read().splitlines()
    assert len(lines) == 1200

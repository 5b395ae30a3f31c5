"""Retention against the real S3 server: exactly the right backups go, and only after a newer one completed."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from lighthouse_bridge.backup.layout import backup_id

from tests.integration.backup.conftest import BackupTool, seed


def _put_backup(s3: Any, bucket: str, root: str, bid: str, complete: bool) -> None:
    s3.put_object(Bucket=bucket, Key=f"{root}{bid}/database.dump", Body=b"PGDMP-fake")
    s3.put_object(Bucket=bucket, Key=f"{root}{bid}/config.json", Body=b"{}")
    if complete:
        s3.put_object(Bucket=bucket, Key=f"{root}{bid}/manifest.json", Body=b"{}")


def _ids(s3: Any, bucket: str, root: str) -> set[str]:
    keys = [
        o["Key"]
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root)
        for o in p.get("Contents", [])
    ]
    return {k[len(root) :].split("/")[0] for k in keys}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retention_deletes_exactly_the_right_backups(
    backup_tool: BackupTool, postgres_url: str, s3_client: Any, s3_bucket: str
) -> None:
    seed(postgres_url, events=10)
    name = backup_tool.env["LIGHTHOUSE_NAME"]
    root = f"backups/test/{name}/"
    now = datetime.now(UTC)
    old = {d: backup_id(now - timedelta(days=d)) for d in (30, 5, 3, 2, 1)}
    for d, bid in old.items():
        _put_backup(s3_client, s3_bucket, root, bid, complete=d != 3)  # 3 days ago: a run that died
    neighbour = f"backups/test/{name}-other/"  # another bridge: never touched
    _put_backup(s3_client, s3_bucket, neighbour, old[30], complete=True)
    s3_client.put_object(Bucket=s3_bucket, Key=f"{root}README.txt", Body=b"not a backup")

    # A backup that fails (database unreachable) must not prune anything, whatever the policy says.
    failed = backup_tool.run(
        "backup", "--keep-last", "1", LIGHTHOUSE_DATABASE_URL=f"postgresql://lighthouse:x@127.0.0.1:{_closed_port()}/x"
    )
    assert failed.returncode != 0
    assert _ids(s3_client, s3_bucket, root) == {*old.values(), "README.txt"}

    new = json.loads(backup_tool.ok("backup", "--keep-last", "3", "--max-age", "10d", "--json").stdout)["id"]
    # Complete, newest first: new, 1d, 2d, 5d, 30d -> keep 3 (new, 1d, 2d); 5d beyond keepLast, 30d also too old.
    # Incomplete 3d is older than the newest complete backup -> deleted.
    assert _ids(s3_client, s3_bucket, root) == {new, old[1], old[2], "README.txt"}
    assert _ids(s3_client, s3_bucket, neighbour) == {old[30]}

    # max-age alone: only the 2-day-old backup is older than 36h.
    pruned = json.loads(backup_tool.ok("backup", "prune", "--max-age", "36h", "--json").stdout)
    assert pruned == {"deleted": [old[2]]}
    assert _ids(s3_client, s3_bucket, root) == {new, old[1], "README.txt"}


def test_prune_never_deletes_the_only_complete_backup(
    backup_tool: BackupTool, postgres_url: str, s3_client: Any, s3_bucket: str
) -> None:
    root = f"backups/test/{backup_tool.env['LIGHTHOUSE_NAME']}/"
    bid = backup_id(datetime.now(UTC) - timedelta(days=400))
    _put_backup(s3_client, s3_bucket, root, bid, complete=True)
    out = json.loads(backup_tool.ok("backup", "prune", "--keep-last", "1", "--max-age", "1d", "--json").stdout)
    assert out == {"deleted": []}
    assert _ids(s3_client, s3_bucket, root) == {bid}
    r = backup_tool.run("backup", "prune")
    assert r.returncode == 2 and "no retention set" in r.stderr

"""Backups and restores for real: the backup CronJob's Job runs pg_dump in a pod against the in-cluster PostgreSQL and
writes to this checkout's S3 server (reached from pods through the node address); a new bridge restored from that
backup serves the same events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cluster import wait_for
from tests.integration.operator.conftest import condition

from .conftest import Bridge, Kubectl, RealNode, http, node_namespace, node_operator, port_forward

BACKUP_NOW = "lighthouse.dev/backup-now"
YEARLY = "0 0 1 1 *"  # never fires during the test: only the on-demand Job runs


@pytest.fixture
def setup(real_node: RealNode, crd: Path, s3_bucket: str, tmp_path: Path) -> Iterator[tuple[Kubectl, dict[str, Any]]]:
    with node_namespace(real_node.cluster, "backup") as ns, node_operator(real_node, [ns], tmp_path / "operator.log"):
        k = Kubectl(real_node.cluster, ns)
        # moto checks no signature; the Jobs still need the Secret the spec names.
        k("create", "secret", "generic", "s3", "-n", ns, "--from-literal=AWS_ACCESS_KEY_ID=lighthouse",
          "--from-literal=AWS_SECRET_ACCESS_KEY=lighthouse-secret")  # fmt: skip
        s3 = {
            "bucket": s3_bucket,
            "prefix": "node",
            "endpoint": real_node.s3_endpoint,
            "region": "us-east-1",
            "pathStyle": True,
            "credentialsSecret": "s3",
        }
        yield k, s3


def events(b: Bridge) -> list[list[str]]:
    """(event id, type, path) of every event, in order, read from the bridge's own PostgreSQL pod."""
    creds = f"{b.name}-postgres-credentials"
    user, password, db = (b.secret(creds, key) for key in ("username", "password", "database"))
    q = "SELECT event_id, event_type, aggregate_id FROM events ORDER BY position"
    out = b.exec(b.pod("postgres")["metadata"]["name"], "env", f"PGPASSWORD={password}", "psql", "-h", "127.0.0.1",
                 "-U", user, "-d", db, "-AtF", " ", "-c", q).stdout  # fmt: skip
    return [line.split() for line in out.splitlines()]


def test_backup_job_dumps_to_s3_and_a_restored_bridge_has_the_same_events(
    setup: tuple[Kubectl, dict[str, Any]], real_node: RealNode, s3_client: Any, s3_bucket: str
) -> None:
    k, s3 = setup
    src = Bridge(k, "source")
    src.apply({"backup": {"schedule": YEARLY, "s3": s3}})
    src.wait_ready()
    with port_forward(k.cluster, k.ns, "svc/source-bridge", 8765) as port:
        for i in range(5):
            status, out = http(
                f"http://127.0.0.1:{port}/shadow/update",
                src.token(),
                {"operation": "create", "path": f"src/f{i}.txt", "content": f"{i} {uuid.uuid4()}\n"},
            )
            assert status == 200, out
    before = events(src)
    assert len([e for e in before if e[1] == "file_created"]) == 5, before

    k("annotate", "--overwrite", "lhb", "source", "-n", k.ns, f"{BACKUP_NOW}=node-tier-1")
    obj = wait_for(
        lambda: (o := src.obj()) and (c := condition(o, "BackupSucceeded")) and c["status"] == "True" and o,
        timeout=240,
        message=f"BackupSucceeded ({src.describe()})",
    )
    (job,) = k.items("jobs", "app.kubernetes.io/instance=source,app.kubernetes.io/component=backup")
    pods = k.items("pods", f"job-name={job['metadata']['name']}")
    # One pod, first time: a Job that needed retries says why in its failed pods' logs.
    failed = {p["metadata"]["name"]: k("logs", "-n", k.ns, p["metadata"]["name"], check=False).stdout[-1500:]
              for p in pods if p["status"]["phase"] == "Failed"}  # fmt: skip
    assert [p["spec"]["nodeName"] for p in pods] == ["lighthouse-node"], failed
    # The tool's own report, through the kubelet's termination message.
    (result,) = [
        p["status"]["containerStatuses"][0]["state"]["terminated"] for p in pods if p["status"]["phase"] == "Succeeded"
    ]
    report = json.loads(result["message"])
    keys = [
        o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"node/{k.ns}/source/").get("Contents", [])
    ]
    assert keys and any(report["id"] in key for key in keys), (report, keys)
    assert obj["status"]["lastBackup"]["name"] == report["id"], obj["status"]["lastBackup"]

    restored = Bridge(k, "restored")
    restored.apply({"restore": {"from": "latest", "sourceName": "source", "s3": s3}})
    obj = restored.wait_ready(timeout=360)
    assert obj["status"]["restore"]["phase"] == "Succeeded" and obj["status"]["restore"]["backup"] == report["id"]
    # Every event of the source, in order, with the same ids; after them only what the new bridge itself recorded
    # when it started (its policy), never a file event.
    after = events(restored)
    assert after[: len(before)] == before, (before, after)
    assert all(e[1] != "file_created" for e in after[len(before) :]), after[len(before) :]

"""Backup and restore with the shipped bridge image, run exactly as the operator's Jobs run it.

The containers are made from the operator's own builders (builders/backup.py, builders/restore.py) for sample
LighthouseBridges: image, args, env (Secret references resolved like the kubelet does), securityContext, the emptyDir
volumes and the termination-message file all come from the built Job, so a drift between what the operator emits and
what the image expects fails here. PostgreSQL and the S3 server are the real ones on loopback (host network).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from lighthouse_operator import jobs, naming
from lighthouse_operator.builders import backup as backup_builder
from lighthouse_operator.builders import restore as restore_builder
from lighthouse_operator.models import LighthouseBridge

from tests.e2e.containers import RUN_FLAGS, Images, podman, running_container
from tests.e2e.test_bridge_container import bridge_flags, free_port, project_tree, wait_ready
from tests.harness.services import ServiceEnv, fresh_database, run_sync

NAMESPACE = "e2e"
SOURCE = "shop"
TARGET = "shop-copy"
CREDENTIALS = "s3-credentials"
PREFIX = "backups"
EVENTS = 300  # appended through the API, on top of the initial ingest's file events
EXIT_NOT_EMPTY = 5  # docs/backup-tool.md: refused, non-empty database without --replace


def lighthouse_bridge(name: str, spec: dict[str, Any]) -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {"metadata": {"name": name, "namespace": NAMESPACE, "uid": f"uid-{name}", "generation": 1}, "spec": spec}
    )


def s3_location(services: ServiceEnv, bucket: str) -> dict[str, Any]:
    return {"bucket": bucket, "prefix": PREFIX, "endpoint": services.s3_endpoint, "region": services.region,
            "pathStyle": True, "credentialsSecret": CREDENTIALS}  # fmt: skip


def resolve_env(env: list[dict[str, Any]], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """A container's env as the kubelet resolves it; a Secret reference this test does not know is drift."""
    out = {}
    for e in env:
        if "value" in e:
            out[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]["secretKeyRef"]
        key = (ref["name"], ref["key"])
        assert key in secrets, f"{e['name']} references Secret {key}, which the e2e test does not provide"
        out[e["name"]] = secrets[key]
    return out


def podman_flags(pod_spec: dict[str, Any], secrets: dict[tuple[str, str], str], termination_log: Path) -> list[str]:
    """The pod's one container as podman flags: only what the Job declares is writable."""
    (container,) = pod_spec["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["allowPrivilegeEscalation"] is False
    flags = [
        "--network", "host",
        "--user", str(sc["runAsUser"]),
        "--read-only", "--read-only-tmpfs=false",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        # The kubelet bind-mounts a writable file at terminationMessagePath and reads it when the container ends.
        "-v", f"{termination_log}:{container['terminationMessagePath']}",
    ]  # fmt: skip
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for mount in container["volumeMounts"]:
        assert "emptyDir" in volumes[mount["name"]], f"volume {mount['name']} is not an emptyDir"
        flags += ["--tmpfs", mount["mountPath"]]
    for name, value in resolve_env(container["env"], secrets).items():
        flags += ["-e", f"{name}={value}"]
    return flags


def run_job(job: dict[str, Any], secrets: dict[tuple[str, str], str], tmp: Path) -> tuple[int, str, str]:
    """Runs a built Job's container once; returns (exit code, output, termination message)."""
    pod_spec = job["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    termination_log = tmp / f"termination-{job['metadata']['name']}"
    termination_log.write_text("")
    termination_log.chmod(0o666)  # the container runs as runAsUser, not as the file's owner
    flags = podman_flags(pod_spec, secrets, termination_log)
    proc = podman("run", "--rm", *RUN_FLAGS, *flags, container["image"], *container["args"], check=False,
                  timeout=600)  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr, termination_log.read_text()


# ----------------------------------------------------------------------------------------------- the database side
async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def fetch(url: str, query: str) -> list[asyncpg.Record]:
    return run_sync(_fetch(url, query))


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and content checksum of every user table (events, streams, blobs, projections, migrations ...)."""
    tables = [f'"{r["s"]}"."{r["t"]}"' for r in fetch(
        url, "SELECT schemaname AS s, tablename AS t FROM pg_tables "
             "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2")]  # fmt: skip
    out = {}
    for table in tables:
        (row,) = fetch(url, f"SELECT count(*) AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                            f"AS h FROM {table} x")  # fmt: skip
        out[table] = (row["n"], row["h"])
    return out


def events_in_order(url: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in fetch(
        url, "SELECT position, event_id, event_type, aggregate_id, version, data::text, recorded_at FROM events "
             "ORDER BY position")]  # fmt: skip


def seed_with_the_bridge(images: Images, database_url: str, redis_url: str, redis_prefix: str, tmp: Path) -> None:
    """The bridge image itself writes the events: its first-start ingest, then a few batches through /events."""
    port = free_port()
    flags = [*bridge_flags(port, database_url, redis_url, project_tree(tmp), "disabled"),
             "-e", f"LIGHTHOUSE_REDIS_PREFIX={redis_prefix}"]  # fmt: skip
    with running_container(images.bridge, flags=flags) as bridge:
        wait_ready(bridge, port)
        for start in range(0, EVENTS, 100):
            batch = [{"event_type": "task_noted", "aggregate_id": f"task-{i % 7}", "aggregate_type": "task",
                      "data": {"n": i, "text": f"note {i} \u00e9\u2603"}, "source_agent": "e2e"}
                     for i in range(start, start + 100)]  # fmt: skip
            r = httpx.post(f"http://127.0.0.1:{port}/events", json={"events": batch}, timeout=30)
            assert r.status_code == 200, r.text
    # The container is gone: nothing writes to the source database any more.


@pytest.fixture
def target_url(services: ServiceEnv) -> Iterator[str]:
    """The new bridge's database: fresh and empty, as a new PostgreSQL StatefulSet gives it."""
    with fresh_database(services) as url:
        yield url


def test_backup_then_restore_with_the_operators_jobs_in_the_bridge_image(
    images: Images,
    services: ServiceEnv,
    postgres_url: str,
    target_url: str,
    redis_url: str,
    redis_prefix: str,
    s3_client: Any,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o755)
    seed_with_the_bridge(images, postgres_url, redis_url, redis_prefix, tmp_path)
    source_events = events_in_order(postgres_url)
    assert len(source_events) > EVENTS  # the ingest's file events and the API's
    assert [e[0] for e in source_events] == list(range(1, len(source_events) + 1))
    before = fingerprint(postgres_url)

    location = s3_location(services, s3_bucket)
    secrets = {
        (CREDENTIALS, "AWS_ACCESS_KEY_ID"): services.env.get("AWS_ACCESS_KEY_ID", "lighthouse"),
        (CREDENTIALS, "AWS_SECRET_ACCESS_KEY"): services.env.get("AWS_SECRET_ACCESS_KEY", "lighthouse-secret"),
        (naming.Names(SOURCE).postgres_secret, "url"): postgres_url,
        (naming.Names(TARGET).postgres_secret, "url"): target_url,
    }

    # --- the on-demand backup Job, as the operator makes it from the CronJob's jobTemplate
    source = lighthouse_bridge(SOURCE, {"image": images.bridge, "backup": {
        "schedule": "0 3 * * *", "s3": location, "retention": {"keepLast": 3}}})  # fmt: skip
    job = backup_builder.job(source, backup_builder.request_job_name(source, "e2e"), "request", "e2e")
    assert job is not None
    code, output, message = run_job(job, secrets, tmp_path)
    assert code == 0, output
    result = json.loads(message)
    assert set(result) == {"id", "time", "size"} and result["size"] > 0, result
    # The operator's own parser reads what the tool wrote (status.lastBackup).
    parsed = jobs.parse_result(message)
    assert parsed is not None and (parsed.id, parsed.size) == (result["id"], result["size"])

    root = f"{PREFIX}/{NAMESPACE}/{SOURCE}/{result['id']}/"
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=root).get("Contents", [])
    sizes = {o["Key"].removeprefix(root): o["Size"] for o in listed}
    assert set(sizes) == {"manifest.json", "database.dump", "config.json"}, sizes
    assert all(size > 0 for size in sizes.values())
    manifest = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=root + "manifest.json")["Body"].read())
    assert manifest["id"] == result["id"]
    assert manifest["database"]["high_water"] == len(source_events)
    assert manifest["database"]["tables"]["public.events"] == len(source_events)
    assert result["size"] == sum(o["size"] for o in manifest["objects"])

    # --- the restore Job of a new bridge seeded from the source bridge's latest backup
    target = lighthouse_bridge(TARGET, {"image": images.bridge, "restore": {
        "from": "latest", "sourceName": SOURCE, "s3": location}})  # fmt: skip
    restore_job = restore_builder.job(target)
    assert restore_job is not None
    code, output, message = run_job(restore_job, secrets, tmp_path)
    assert code == 0, output
    restored = json.loads(message)
    assert restored["id"] == result["id"] and restored["replaced"] is False
    assert restored["high_water"] == len(source_events)
    assert (r := jobs.parse_result(message)) is not None and r.id == result["id"]  # status.restore.backup
    assert events_in_order(target_url) == source_events
    assert fingerprint(target_url) == before

    # --- the same Job again: the database is no longer empty, so it refuses and changes nothing
    code, output, message = run_job(restore_job, secrets, tmp_path)
    assert code == EXIT_NOT_EMPTY, output
    assert EXIT_NOT_EMPTY in restore_builder.PERMANENT_EXIT_CODES  # the Job fails at once instead of retrying
    assert "not empty" in output and "--replace" in output
    assert jobs.parse_result(message) is None  # no success reported
    assert fingerprint(target_url) == before

"""Backups on the real control plane: the real CronJob and Job controllers run the Jobs, kwok plays their pods
(Job pods succeed, or fail with the `broken` image tag, or never start with `pullfail`). Every wait is bounded."""

from __future__ import annotations

import time
from typing import Any

from lighthouse_operator import naming

from tests.harness.cluster import wait_for

from .conftest import RESYNC, Kubectl, Operator, condition, lhb
from .test_operator import events, wait_ready

BACKUP_NOW = "lighthouse.dev/backup-now"
YEARLY = "0 0 1 1 *"  # never fires during a test: only on-demand Jobs run
S3 = {"bucket": "lighthouse-backups", "prefix": "it", "endpoint": "http://127.0.0.1:29000", "pathStyle": True}


def spec(schedule: str = YEARLY, image: str | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"backup": {"schedule": schedule, "s3": S3}, **extra}
    if image:
        out["image"] = image
    return out


def request(k: Kubectl, value: str, name: str = "demo") -> None:
    k("annotate", "--overwrite", "lhb", name, "-n", k.ns, f"{BACKUP_NOW}={value}")


def backup_jobs(k: Kubectl, name: str = "demo") -> list[dict[str, Any]]:
    return k.items("jobs", f"{naming.instance_selector(name)},{naming.L_COMPONENT}=backup")


def backup_condition(k: Kubectl, status: str, reason: str | None = None, timeout: float = 90) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = k.get("lhb", "demo")
        c = condition(obj, "BackupSucceeded")
        return obj if c and c["status"] == status and (reason is None or c["reason"] == reason) else None

    return wait_for(check, timeout=timeout, message=f"BackupSucceeded={status} {reason or ''}")


def reasons(k: Kubectl, name: str = "demo") -> list[str]:
    return [e["reason"] for e in events(k, name)]


# ---------------------------------------------------------------------------------------------------------------------


def test_cronjob_spec(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec("*/30 * * * *", image="localhost/lighthouse-bridge:custom")))
    cj = wait_for(lambda: k.get("cronjob", "demo-backup"), timeout=60, message="CronJob")
    s = cj["spec"]
    assert s["schedule"] == "*/30 * * * *" and s["concurrencyPolicy"] == "Forbid" and s["suspend"] is False
    assert s["successfulJobsHistoryLimit"] == 3 and s["failedJobsHistoryLimit"] == 3
    job = s["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] > 0
    (c,) = job["template"]["spec"]["containers"]
    assert c["image"] == "localhost/lighthouse-bridge:custom" and c["args"] == ["backup"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["LIGHTHOUSE_S3_BUCKET"] == "lighthouse-backups" and env["LIGHTHOUSE_NAME"] == "demo"
    assert env["LIGHTHOUSE_BACKUP_RESULT_FILE"] == "/dev/termination-log"
    obj = k.get("lhb", "demo")
    assert [r["uid"] for r in cj["metadata"]["ownerReferences"]] == [obj["metadata"]["uid"]]
    # No backup yet: Unknown, with the deadline that would make it missed.
    obj = backup_condition(k, "Unknown", "NoBackupYet", timeout=30)
    assert obj["status"]["backup"]["schedule"] == "*/30 * * * *"


def test_on_demand_backup_updates_status_once_per_value(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec()))
    wait_ready(k)
    request(k, "2026-11-29-a")
    obj = backup_condition(k, "True", "BackupSucceeded")
    (job,) = backup_jobs(k)
    assert job["metadata"]["labels"]["lighthouse.dev/backup-trigger"] == "request"
    assert job["metadata"]["annotations"]["lighthouse.dev/backup-request"] == "2026-11-29-a"
    assert job["status"].get("succeeded") == 1
    st = obj["status"]
    # kwok runs no container, so no termination message: the Job's name and completion time stand in, no size.
    assert st["lastBackup"] == {"name": job["metadata"]["name"], "time": job["status"]["completionTime"]}
    assert st["lastSuccessfulBackupTime"] == job["status"]["completionTime"]
    assert st["backup"]["lastRequest"] == "2026-11-29-a" and st["backup"]["requestJob"] == job["metadata"]["name"]
    printed = k("get", "lhb", "demo", "-n", k.ns).stdout
    assert "LAST BACKUP" in printed.splitlines()[0]
    assert "BackupRequested" in reasons(k)
    metrics = operator.metrics()
    key = f'lighthouse_operator_backup_last_success_timestamp_seconds{{name="demo",namespace="{k.ns}"}}'
    assert metrics.get(key, 0) > 0, sorted(m for m in metrics if "backup" in m)

    # Idle with a backup configured: no writes at all, and the same value never runs twice (also across a restart).
    time.sleep(RESYNC)
    before = operator.writes()
    time.sleep(RESYNC * 3)
    assert operator.writes() == before
    operator.stop()
    operator.start()
    time.sleep(RESYNC * 2)
    assert len(backup_jobs(k)) == 1

    # A new value (a new commit in Git) runs exactly one more.
    request(k, "2026-11-29-b")
    wait_for(lambda: len(backup_jobs(k)) == 2, timeout=30, message="second Job")
    wait_for(
        lambda: k.get("lhb", "demo")["status"]["backup"]["lastRequest"] == "2026-11-29-b",
        timeout=30,
        message="second request recorded",
    )
    wait_for(
        lambda: k.get("lhb", "demo")["status"]["lastSuccessfulBackupTime"] > st["lastSuccessfulBackupTime"],
        timeout=60,
        message="second success",
    )


def test_request_without_spec_backup_is_refused(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    wait_ready(k)
    request(k, "now")
    obj = backup_condition(k, "Unknown", "BackupNotConfigured", timeout=30)
    assert "spec.backup is not set" in condition(obj, "BackupSucceeded")["message"]
    assert backup_jobs(k) == []
    wait_for(lambda: "BackupNotConfigured" in reasons(k), timeout=15, message="Warning Event")
    time.sleep(RESYNC * 2)
    assert reasons(k).count("BackupNotConfigured") == 1  # once, not every pass


def test_failing_job_gives_backup_failed(k: Kubectl, operator: Operator) -> None:
    # The `broken` tag makes kwok fail Job pods (exit 1); the Job controller retries twice, then gives up.
    k.apply(lhb("demo", spec(image="localhost/lighthouse-bridge:broken")))
    wait_for(lambda: k.get("cronjob", "demo-backup"), timeout=60, message="CronJob")
    request(k, "try-1")
    obj = backup_condition(k, "False", "BackupFailed", timeout=150)
    (job,) = backup_jobs(k)
    c = condition(obj, "BackupSucceeded")
    assert job["metadata"]["name"] in c["message"] and "BackoffLimitExceeded" in c["message"]
    assert "lastSuccessfulBackupTime" not in obj["status"]
    wait_for(lambda: reasons(k).count("BackupFailed") == 1, timeout=15, message="one BackupFailed Event")


def test_missed_schedule_is_detected(k: Kubectl, operator: Operator) -> None:
    # Every minute, but the Jobs' pods never start (ImagePullBackOff) and Forbid keeps later runs from starting:
    # no success within two intervals (2 minutes) of the schedule's start. About 2 minutes of wall clock.
    k.apply(lhb("demo", spec("* * * * *", image="localhost/lighthouse-bridge:pullfail")))
    cj = wait_for(lambda: k.get("cronjob", "demo-backup"), timeout=60, message="CronJob")
    backup_condition(k, "Unknown", "NoBackupYet", timeout=30)
    obj = backup_condition(k, "False", "BackupMissed", timeout=160)
    c = condition(obj, "BackupSucceeded")
    assert "no backup succeeded since the schedule started" in c["message"] and "'* * * * *'" in c["message"]
    assert backup_jobs(k), "the CronJob did run: the Job exists but cannot succeed"
    assert all(not j["status"].get("succeeded") for j in backup_jobs(k))
    assert cj["metadata"]["creationTimestamp"] <= obj["status"]["backup"]["scheduleSince"]
    metrics = operator.metrics()
    assert metrics[f'lighthouse_operator_backup_missed{{name="demo",namespace="{k.ns}"}}'] == 1
    wait_for(lambda: "BackupMissed" in reasons(k), timeout=15, message="Warning Event")
    time.sleep(RESYNC * 2)
    assert reasons(k).count("BackupMissed") == 1  # once per transition, not every pass
    assert metrics[f'lighthouse_operator_backup_misses_total{{name="demo",namespace="{k.ns}"}}'] == 1

    # Suspending stops judging the schedule: Unknown, and the gauge drops.
    k.patch("lhb", "demo", {"spec": {"backup": {"suspend": True}}})
    backup_condition(k, "Unknown", "BackupSuspended", timeout=30)
    wait_for(
        lambda: operator.metrics()[f'lighthouse_operator_backup_missed{{name="demo",namespace="{k.ns}"}}'] == 0,
        timeout=15,
        message="gauge back to 0",
    )


def test_snapshot_deletion_takes_a_final_backup_then_deletes(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(deletionPolicy="Snapshot")))
    wait_ready(k)
    k("delete", "lhb", "demo", "-n", k.ns, "--wait=false")
    final = wait_for(
        lambda: next(
            (j for j in backup_jobs(k) if j["metadata"]["labels"].get("lighthouse.dev/backup-trigger") == "final"), None
        ),
        timeout=30,
        message="final backup Job",
    )
    # While it runs, the data and what the Job needs are still there.
    if not final["status"].get("succeeded"):
        assert k.get("secret", "demo-postgres-credentials") is not None and k.get("cronjob", "demo-backup")
    wait_for(lambda: k.get("lhb", "demo") is None, timeout=90, message="deletion proceeds after the final backup")
    job = k.get("job", final["metadata"]["name"])
    assert job["status"].get("succeeded") == 1, "deleted before the final backup succeeded"
    assert not job["metadata"].get("ownerReferences")  # it outlives the bridge, for its logs
    assert final["metadata"]["name"].startswith("demo-backup-final-")
    # Then as Delete: the generated Secrets go.
    wait_for(lambda: not k.items("secrets", f"{naming.L_INSTANCE}=demo"), timeout=60, message="Secrets deleted")
    assert {"Snapshotting", "Snapshotted", "Deleted"} <= set(reasons(k))


def test_snapshot_deletion_waits_when_the_final_backup_fails(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(image="localhost/lighthouse-bridge:broken", deletionPolicy="Snapshot")))
    wait_for(lambda: k.get("cronjob", "demo-backup"), timeout=60, message="CronJob")
    k("delete", "lhb", "demo", "-n", k.ns, "--wait=false")
    obj = wait_for(
        lambda: (
            (o := k.get("lhb", "demo"))
            and (c := condition(o, "Stalled"))
            and c["status"] == "True"
            and c["reason"] == "SnapshotFailed"
            and o
        ),
        timeout=150,
        message="SnapshotFailed",
    )
    msg = condition(obj, "Stalled")["message"]
    assert "final backup Job demo-backup-final-" in msg and "deletionPolicy to Retain" in msg
    assert obj["status"]["phase"] == "Deleting"
    assert k.get("secret", "demo-admin-token") is not None  # nothing deleted
    k.patch("lhb", "demo", {"spec": {"deletionPolicy": "Delete"}})
    wait_for(lambda: k.get("lhb", "demo") is None, timeout=90, message="deletion proceeds after the switch")

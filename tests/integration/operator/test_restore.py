"""spec.restore on the real control plane: the restore Job seeds the database before the bridge Deployment scales up.

kwok plays the Job's pods (hack/cluster/stages/pod.yaml): a pod owned by a Job succeeds after ~1 s; with an image tag
containing `broken` it fails with exit code 1 (the Job retries with backoff, then fails); with `pullfail` it never
starts (ErrImagePull), which keeps a restore "running" for as long as a test needs. Every wait is bounded and polls.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from lighthouse_operator import naming

from tests.harness.cluster import Cluster, wait_for

from .conftest import REPO, RESYNC, Kubectl, Operator, condition, is_ready, lhb
from .test_operator import events

PULLFAIL = "localhost/lighthouse-bridge:0.2.0-pullfail"
BROKEN = "localhost/lighthouse-bridge:0.2.0-broken"
S3 = {"bucket": "lighthouse-restore-test", "prefix": "backups", "endpoint": "http://127.0.0.1:29000", "pathStyle": True}
JOB_FAIL_TIMEOUT = 150  # backoffLimit 2: three pods, with the Job controller's 10 s and 20 s back-off between them


def spec(**extra: Any) -> dict[str, Any]:
    return {"replicas": 2, "backup": {"schedule": "0 3 * * *", "s3": S3}, "restore": {"from": "latest"}, **extra}


def deployment_replicas(k: Kubectl, name: str = "demo") -> int | None:
    dep = k.get("deployment", f"{name}-bridge")
    return None if dep is None else dep["spec"].get("replicas")


def job_complete(job: dict[str, Any] | None) -> bool:
    return bool(job) and any(
        c["type"] == "Complete" and c["status"] == "True" for c in (job or {}).get("status", {}).get("conditions") or []
    )


def restore_status(k: Kubectl, name: str = "demo") -> dict[str, Any]:
    obj = k.get("lhb", name)
    return ((obj or {}).get("status") or {}).get("restore") or {}


def hold_for(seconds: float, check: Any) -> None:
    """`check` must hold on every poll for `seconds` (bounded: several reconcile resyncs)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        check()
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------------------------------------


def test_restore_job_runs_before_the_bridge_scales_up(k: Kubectl, operator: Operator) -> None:
    # An image kwok never starts keeps the restore running: the bridge must stay at 0 replicas meanwhile.
    k.apply(lhb("demo", spec(image=PULLFAIL)))
    job = wait_for(lambda: k.get("job", "demo-restore"), timeout=60, message="restore Job created")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["restore", "--from", "latest"]
    assert [r["kind"] for r in job["metadata"]["ownerReferences"]] == ["LighthouseBridge"]
    wait_for(lambda: deployment_replicas(k) == 0, timeout=60, message="bridge Deployment created at 0 replicas")
    # The stores come up normally meanwhile.
    wait_for(
        lambda: (k.get("statefulset", "demo-postgres") or {}).get("status", {}).get("readyReplicas") == 1,
        timeout=90,
        message="PostgreSQL ready while the restore waits",
    )
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and condition(o, "Ready")["reason"] == "Restoring" and o,
        timeout=60,
        message="Ready=False reason Restoring",
    )
    assert obj["status"]["phase"] == "Restoring"
    assert condition(obj, "Reconciling")["status"] == "True" and condition(obj, "Reconciling")["reason"] == "Restoring"
    assert condition(obj, "Stalled")["status"] == "False"
    assert obj["status"]["restore"]["phase"] in ("Pending", "Running")
    assert obj["status"]["restore"]["source"] == "s3://lighthouse-restore-test/backups/" + k.ns + "/demo"
    # The health gate holds the bridge: no rollout starts (and no deadline runs) while the restore does.
    assert not (obj["status"].get("rollout") or {}).get("bridge", {}).get("startedAt")

    def still_held() -> None:
        assert deployment_replicas(k) == 0
        assert not job_complete(k.get("job", "demo-restore"))

    hold_for(3 * RESYNC, still_held)
    assert k.get("pods", selector=naming.selector_string("demo", naming.BRIDGE))["items"] == []

    # A working image: the stuck Job is replaced, kwok completes the new one, and only then does the bridge scale.
    k.patch("lhb", "demo", {"spec": {"image": None}})
    deadline = time.monotonic() + 90
    while (replicas := deployment_replicas(k)) == 0:
        assert time.monotonic() < deadline, f"bridge never scaled up:\n{operator.log_tail()}"
        time.sleep(0.2)
    # Completion is final: the Job must already be complete at the first sight of replicas > 0.
    assert replicas == 2 and job_complete(k.get("job", "demo-restore"))
    obj = wait_for(lambda: (o := k.get("lhb", "demo")) and is_ready(o) and o, timeout=120, message="Ready")
    rec = obj["status"]["restore"]
    assert rec["phase"] == "Succeeded" and rec["from"] == "latest" and rec["completedAt"] and rec["startedAt"]
    assert obj["status"]["readyReplicas"] == 2
    reasons = {e["reason"] for e in events(k, "demo")}
    assert {"Restoring", "Restored"} <= reasons


def test_failing_restore_stalls_and_keeps_the_bridge_at_zero(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(image=BROKEN)))
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and (c := condition(o, "Stalled")) and c["status"] == "True" and o,
        timeout=JOB_FAIL_TIMEOUT,
        message="Stalled after the restore Job failed",
    )
    stalled = condition(obj, "Stalled")
    assert stalled["reason"] == "RestoreFailed"
    assert "demo-restore failed" in stalled["message"] and "exit code 1" in stalled["message"]
    assert condition(obj, "Ready")["status"] == "False"
    assert obj["status"]["restore"]["phase"] == "Failed" and obj["status"]["restore"]["completedAt"]
    assert obj["status"]["restore"]["attempts"] == 3
    assert deployment_replicas(k) == 0
    wait_for(
        lambda: "RestoreFailed" in {e["reason"] for e in events(k, "demo") if e["type"] == "Warning"},
        timeout=15,
        message="Warning Event RestoreFailed",
    )
    # Not retried on its own: the failed Job stays, the bridge stays at 0.
    uid = k.get("job", "demo-restore")["metadata"]["uid"]

    def not_retried() -> None:
        assert deployment_replicas(k) == 0
        assert k.get("job", "demo-restore")["metadata"]["uid"] == uid

    hold_for(2 * RESYNC, not_retried)


def test_finished_restore_is_never_run_again(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(replicas=1)))
    wait_for(lambda: restore_status(k).get("phase") == "Succeeded", timeout=90, message="restore Succeeded")
    wait_for(lambda: deployment_replicas(k) == 1, timeout=30, message="bridge scaled to spec.replicas")
    k("delete", "job", "demo-restore", "-n", k.ns, "--wait=true", "--timeout=60s")

    def not_rerun() -> None:
        assert k.get("job", "demo-restore") is None
        assert restore_status(k).get("phase") == "Succeeded"
        assert deployment_replicas(k) == 1

    hold_for(3 * RESYNC, not_rerun)
    # Nor after an operator restart (status is the record, not the operator's memory or the Job).
    operator.stop()
    operator.start()
    hold_for(3 * RESYNC, not_rerun)
    # kubectl scale still works: the scale subresource sets spec.replicas, which the Deployment follows.
    k("scale", "lhb/demo", "-n", k.ns, "--replicas=3")
    wait_for(lambda: deployment_replicas(k) == 3, timeout=30, message="scaled to 3")
    assert k.get("job", "demo-restore") is None


def test_restore_added_to_a_running_bridge_is_skipped(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"backup": {"schedule": "0 3 * * *", "s3": S3}}))
    wait_for(lambda: (o := k.get("lhb", "demo")) and is_ready(o), timeout=120, message="Ready")
    k.patch("lhb", "demo", {"spec": {"restore": {"from": "latest"}}})
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and o["status"].get("restore") and o,
        timeout=60,
        message="status.restore recorded",
    )
    assert obj["status"]["restore"]["phase"] == "Skipped"
    obj = wait_for(lambda: (o := k.get("lhb", "demo")) and is_ready(o) and o, timeout=60, message="still Ready")
    degraded = condition(obj, "Degraded")
    assert degraded["status"] == "True" and "docs/restore.md" in degraded["message"]

    def untouched() -> None:
        assert k.get("job", "demo-restore") is None and deployment_replicas(k) == 1

    hold_for(2 * RESYNC, untouched)


# --------------------------------------------------------------------------------------------- the runbook's Job


def _runbook_commands() -> tuple[str, list[str]]:
    """docs/restore.md: the heredoc writing restore-job.yaml, and the commands that apply it."""
    text = (REPO / "docs" / "restore.md").read_text()
    heredoc = re.search(r"^(cat > restore-job\.yaml <<EOF\n.*?^EOF)$", text, re.S | re.M)
    assert heredoc, "docs/restore.md: restore-job.yaml heredoc not found"
    applies = re.findall(r'^(sed "s/ARGS/.*" restore-job\.yaml \| kubectl apply -n "\$NS" -f -)$', text, re.M)
    assert len(applies) == 2, applies
    return heredoc.group(1), applies


def test_runbook_job_is_accepted_and_its_args_parse(k: Kubectl, cluster: Cluster, tmp_path: Path) -> None:
    heredoc, applies = _runbook_commands()
    env = {
        **cluster.env(),
        "NS": k.ns,
        "NAME": "demo",
        "IMAGE": "localhost/lighthouse-bridge:0.1.0",
        "S3_BUCKET": "lighthouse-backups",
        "S3_PREFIX": "prod",
        "S3_ENDPOINT": "http://127.0.0.1:1",
        "S3_SECRET": "lighthouse-s3",
        "DB_SECRET": "demo-postgres-credentials",
        "DB_KEY": "url",
        "BACKUP": "20261129T030000Z",
    }
    subprocess.run(["bash", "-euc", heredoc], cwd=tmp_path, env=env, check=True)
    for command in applies:
        # The exact command from the runbook, as a server-side dry run: the API server validates the whole Job.
        dry = command.replace("kubectl apply", f"{cluster.kubectl_path} apply --dry-run=server -o json")
        out = subprocess.run(
            ["bash", "-euc", f"set -o pipefail; {dry}"],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        job = json.loads(out.stdout)
        pod = job["spec"]["template"]
        assert pod["metadata"]["labels"][naming.L_COMPONENT] == naming.RESTORE  # admitted by the NetworkPolicy
        args = pod["spec"]["containers"][0]["args"]
        # The real CLI accepts these flags: it gets as far as S3 (unreachable here, exit 3), not a usage error.
        tool = subprocess.run(
            [str(REPO / ".venv" / "bin" / "lighthouse-bridge"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                "PATH": os.environ["PATH"],
                "LIGHTHOUSE_S3_BUCKET": "lighthouse-backups",
                "LIGHTHOUSE_S3_ENDPOINT": "http://127.0.0.1:1",
                "LIGHTHOUSE_NAME": "demo",
                "LIGHTHOUSE_NAMESPACE": k.ns,
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                "LIGHTHOUSE_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db",
            },
        )
        assert tool.returncode == 3 and "cannot reach S3" in tool.stderr, (args, tool.stderr)
    assert "--replace" in args and "20261129T030000Z" in args

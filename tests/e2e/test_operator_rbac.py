"""The operator container with the chart's own ServiceAccount token (no admin credentials): the RBAC the chart grants
is enough to reconcile a LighthouseBridge to Ready and to delete it again, and for backups: the on-demand backup Job
(lighthouse.dev/backup-now) and its status, the restore Job of spec.restore, and the Snapshot final backup on deletion.
kwok plays the Jobs' pods (they succeed after about a second); the real Job controller runs the Jobs.

The container runs as the chart runs it: with leader election on the release's Lease, and in cluster mode with
--no-watch-secrets (the chart grants no list or watch on Secrets there); the first two tests run in both modes."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.containers import Container, Images, running_container, wait_for
from tests.e2e.test_operator_container import free_port, get_json, ready_condition
from tests.harness.cluster import Cluster
from tests.harness.extra_tools import helm
from tests.unit.chart.render import CHART, WITHOUT_FUSE_PLUGIN

REPO_ROOT = Path(__file__).resolve().parents[2]


def service_account_kubeconfig(cluster: Cluster, namespace: str, sa: str, directory: Path) -> Path:
    """The API server and CA of the test cluster, with a short-lived token of the operator's ServiceAccount."""
    admin = yaml.safe_load(cluster.kubectl("config", "view", "--flatten", "--minify", "--raw").stdout)
    token = cluster.kubectl("create", "token", sa, "-n", namespace, "--duration=1h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "test", "user": sa}}],
        "current-context": "operator",
    }
    directory.chmod(0o755)
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o644)
    return path


@pytest.fixture
def operator_as_its_service_account(
    request: pytest.FixtureRequest, images: Images, cluster: Cluster, namespace: str, tmp_path: Path
) -> Iterator[tuple[Container, str]]:
    mode = getattr(request, "param", "namespaced")
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=lighthouse-e2e",
                    "-f", str(REPO_ROOT / "crds"))  # fmt: skip
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    base = [helm(), "--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace]
    # Watching its own namespace; the Deployment is scaled to 0: the container below is the operator. In cluster mode
    # the RBAC is the ClusterRole's, and the container is still scoped to the test's namespace.
    subprocess.run(
        [*base, "install", release, str(CHART), "--set", "crds.create=false", "--set", f"watch.mode={mode}",
         "--set", "replicaCount=0", *WITHOUT_FUSE_PLUGIN],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    sa = f"{release}-lighthouse-operator"
    kubeconfig = service_account_kubeconfig(cluster, namespace, sa, tmp_path)
    liveness = free_port()
    flags = [
        "--network", "host", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-v", f"{kubeconfig}:/etc/lighthouse/kubeconfig:ro", "-e", "KUBECONFIG=/etc/lighthouse/kubeconfig",
    ]  # fmt: skip
    args = ["--namespace", namespace, "--metrics-port", str(free_port()), "--liveness-port", str(liveness),
            "--leader-elect", "--leader-election-namespace", namespace, "--leader-election-id", sa]  # fmt: skip
    if mode == "cluster":
        args.append("--no-watch-secrets")
    try:
        with running_container(images.operator, *args, flags=flags) as operator:
            wait_for(
                lambda: httpx.get(f"http://127.0.0.1:{liveness}/healthz", timeout=5).status_code == 200,
                timeout=60,
                what="operator liveness endpoint",
            )
            yield operator, namespace
    finally:
        subprocess.run([*base, "uninstall", release], capture_output=True, timeout=300)


TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T][\d:]+[,.]\d+\s*")


def forbidden_lines(operator: Container) -> list[str]:
    """Log lines reporting a 403 (without the timestamp, whose milliseconds can read 403)."""
    out = []
    for line in operator.logs().splitlines():
        text = TIMESTAMP.sub("", line, count=1)
        if re.search(r"\b403\b", text) or "orbidden" in text:
            out.append(line)
    return out


MODES = pytest.mark.parametrize("operator_as_its_service_account", ["namespaced", "cluster"], indirect=True)


@MODES
def test_chart_rbac_is_enough_to_reconcile_to_ready(
    operator_as_its_service_account: tuple[Container, str], cluster: Cluster
) -> None:
    operator, namespace = operator_as_its_service_account
    lhb = {"apiVersion": "lighthouse.dev/v1alpha1", "kind": "LighthouseBridge",
           "metadata": {"name": "rbac", "namespace": namespace}, "spec": {}}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(lhb))

    def ready() -> dict | None:
        assert operator.running(), f"operator exited:\n{operator.logs()}"
        current = get_json(cluster, "-n", namespace, "lighthousebridge", "rbac")
        condition = ready_condition(current)
        return current if condition and condition["status"] == "True" else None

    try:
        wait_for(ready, timeout=180, what="Ready=True with the chart's RBAC")
    except AssertionError as exc:
        status = (get_json(cluster, "-n", namespace, "lighthousebridge", "rbac") or {}).get("status")
        raise AssertionError(f"{exc}\nstatus: {json.dumps(status)}\noperator log:\n{operator.logs()[-6000:]}") from None
    assert forbidden_lines(operator) == []
    assert "Became leader" in operator.logs()  # the Lease, with the chart's Role for it


@MODES
def test_chart_rbac_is_enough_to_delete_a_bridge(
    operator_as_its_service_account: tuple[Container, str], cluster: Cluster
) -> None:
    operator, namespace = operator_as_its_service_account
    lhb = {"apiVersion": "lighthouse.dev/v1alpha1", "kind": "LighthouseBridge",
           "metadata": {"name": "rbac-del", "namespace": namespace}, "spec": {}}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(lhb))
    wait_for(
        lambda: (
            (get_json(cluster, "-n", namespace, "lighthousebridge", "rbac-del") or {})
            .get("metadata", {})
            .get("finalizers")
        ),
        timeout=120,
        what="the operator's finalizer",
    )
    cluster.kubectl("delete", "-n", namespace, "lighthousebridge", "rbac-del", "--wait=false")
    wait_for(
        lambda: get_json(cluster, "-n", namespace, "lighthousebridge", "rbac-del") is None,
        timeout=90,
        what="the LighthouseBridge to be gone (finalizer released)",
    )
    assert forbidden_lines(operator) == [], json.dumps(forbidden_lines(operator))


# ------------------------------------------------------------------------------------------------------------ backups
YEARLY = "0 0 1 1 *"  # never fires during a test: only the Jobs the operator creates run
S3 = {"bucket": "lighthouse-rbac", "prefix": "e2e", "endpoint": "http://127.0.0.1:29000", "pathStyle": True}


def condition(obj: dict | None, type_: str) -> dict | None:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}.get(type_)


def backup_jobs(cluster: Cluster, namespace: str, name: str) -> list[dict]:
    selector = f"app.kubernetes.io/instance={name},app.kubernetes.io/component=backup"
    return (get_json(cluster, "-n", namespace, "jobs", "-l", selector) or {}).get("items", [])


def wait_or_explain(operator: Container, cluster: Cluster, namespace: str, name: str, predicate, *, timeout: float,
                    what: str):
    """wait_for, failing with the bridge's status and the operator's log tail (a 403 shows up there)."""
    def check():
        assert operator.running(), f"operator exited:\n{operator.logs()}"
        return predicate()

    try:
        return wait_for(check, timeout=timeout, what=what)
    except AssertionError as exc:
        status = (get_json(cluster, "-n", namespace, "lighthousebridge", name) or {}).get("status")
        raise AssertionError(f"{exc}\nstatus: {json.dumps(status)}\noperator log:\n{operator.logs()[-6000:]}") from None


def apply_bridge(cluster: Cluster, namespace: str, name: str, spec: dict) -> None:
    lhb = {"apiVersion": "lighthouse.dev/v1alpha1", "kind": "LighthouseBridge",
           "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(lhb))


def test_chart_rbac_is_enough_for_on_demand_backups_and_the_snapshot_on_deletion(
    operator_as_its_service_account: tuple[Container, str], cluster: Cluster
) -> None:
    operator, namespace = operator_as_its_service_account
    name = "rbac-backup"
    apply_bridge(cluster, namespace, name, {"backup": {"schedule": YEARLY, "s3": S3}, "deletionPolicy": "Snapshot"})
    wait_or_explain(operator, cluster, namespace, name,
                    lambda: (ready_condition(get_json(cluster, "-n", namespace, "lighthousebridge", name)) or {})
                    .get("status") == "True",
                    timeout=180, what="Ready=True")  # fmt: skip
    assert get_json(cluster, "-n", namespace, "cronjob", f"{name}-backup") is not None

    # (a) The on-demand backup: a Job from the annotation, and status from that Job and its pod.
    cluster.kubectl("annotate", "--overwrite", "-n", namespace, "lighthousebridge", name,
                    "lighthouse.dev/backup-now=rbac-1")  # fmt: skip

    def backed_up() -> dict | None:
        obj = get_json(cluster, "-n", namespace, "lighthousebridge", name)
        c = condition(obj, "BackupSucceeded")
        return obj if c and c["status"] == "True" and obj["status"].get("lastBackup") else None

    obj = wait_or_explain(operator, cluster, namespace, name, backed_up, timeout=120, what="BackupSucceeded=True")
    (job,) = backup_jobs(cluster, namespace, name)
    assert job["metadata"]["labels"]["lighthouse.dev/backup-trigger"] == "request"
    assert job["status"].get("succeeded") == 1
    assert obj["status"]["lastBackup"]["name"] == job["metadata"]["name"]
    assert obj["status"]["backup"]["lastRequest"] == "rbac-1"
    assert obj["status"]["lastSuccessfulBackupTime"]

    # (c) deletionPolicy Snapshot: a final backup Job, waited for, then the bridge goes.
    cluster.kubectl("delete", "-n", namespace, "lighthousebridge", name, "--wait=false")
    wait_or_explain(operator, cluster, namespace, name,
                    lambda: get_json(cluster, "-n", namespace, "lighthousebridge", name) is None,
                    timeout=120, what="the LighthouseBridge to be gone after its final backup")  # fmt: skip
    finals = [j for j in backup_jobs(cluster, namespace, name)
              if j["metadata"]["labels"].get("lighthouse.dev/backup-trigger") == "final"]  # fmt: skip
    assert len(finals) == 1, [j["metadata"]["name"] for j in backup_jobs(cluster, namespace, name)]
    assert finals[0]["status"].get("succeeded") == 1, "deleted before the final backup succeeded"
    assert forbidden_lines(operator) == [], json.dumps(forbidden_lines(operator))


def test_chart_rbac_is_enough_to_restore_before_the_bridge_starts(
    operator_as_its_service_account: tuple[Container, str], cluster: Cluster
) -> None:
    operator, namespace = operator_as_its_service_account
    name = "rbac-restore"
    apply_bridge(cluster, namespace, name, {"backup": {"schedule": YEARLY, "s3": S3}, "restore": {"from": "latest"}})

    def restored_and_ready() -> dict | None:
        obj = get_json(cluster, "-n", namespace, "lighthousebridge", name)
        restore = ((obj or {}).get("status") or {}).get("restore") or {}
        ready = (ready_condition(obj) or {}).get("status") == "True"
        return obj if restore.get("phase") == "Succeeded" and ready else None

    obj = wait_or_explain(operator, cluster, namespace, name, restored_and_ready, timeout=240,
                          what="status.restore Succeeded and Ready=True")  # fmt: skip
    job = get_json(cluster, "-n", namespace, "job", f"{name}-restore")
    assert job is not None and job["status"].get("succeeded") == 1
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["restore", "--from", "latest"]
    assert obj["status"]["restore"]["job"] == f"{name}-restore"
    assert forbidden_lines(operator) == [], json.dumps(forbidden_lines(operator))

"""The local control plane is real: each test asserts on what the API server reports.

Pod fates come from the kwok stages in hack/cluster/stages/pod.yaml: image tags containing `broken` crash-loop (or
fail, for Job pods), tags containing `pullfail` never pull, tags containing `flapping` turn Ready and NotReady again
and again, anything else runs and becomes Ready.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.harness.cluster import REPO_ROOT, Cluster, wait_for

pytestmark = pytest.mark.timeout(240)


def pinned_kubernetes_version() -> str:
    go_mod = (REPO_ROOT / "hack" / "tools" / "kubernetes" / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)", go_mod, re.MULTILINE)
    assert match, "hack/tools/kubernetes/go.mod does not require k8s.io/kubernetes"
    return match.group(1)


def deployment(name: str, image: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            **spec,
        },
    }


def pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def condition(obj: Any, type_: str) -> Any:
    return next((c for c in (obj.status.conditions or []) if c.type == type_), None)


def pods_of(core: client.CoreV1Api, namespace: str, app: str) -> list[Any]:
    return core.list_namespaced_pod(namespace, label_selector=f"app={app}").items


def test_server_version_is_the_pinned_one(cluster: Cluster) -> None:
    pinned = pinned_kubernetes_version()
    assert client.VersionApi(cluster.api).get_code().git_version == pinned
    out = cluster.kubectl("version", "-o", "json").stdout
    assert f'"gitVersion": "{pinned}"' in out  # client and server both


def test_fake_nodes_are_ready(cluster: Cluster) -> None:
    nodes = client.CoreV1Api(cluster.api).list_node().items
    assert nodes
    assert all(condition(n, "Ready").status == "True" for n in nodes)


def test_services_get_addresses_from_the_configured_range(cluster: Cluster, namespace: str) -> None:
    """hack/cluster/kwokctl.yaml gives the apiserver 10.96.0.0/16 (room for a thousand bridges, apart from the fake
    pods' 10.0.0.x). A render of that file once dropped it from every kwok-only cluster, leaving the /24 default."""
    if cluster.provider != "local":
        pytest.skip(f"the Service range is the {cluster.provider} cluster's own")
    svc = client.CoreV1Api(cluster.api).create_namespaced_service(
        namespace,
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ranged"},
         "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}},
    )  # fmt: skip
    assert svc.spec.cluster_ip.startswith("10.96."), svc.spec.cluster_ip


def test_deployment_pods_become_ready(cluster: Cluster, namespace: str) -> None:
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    apps.create_namespaced_deployment(namespace, deployment("web", "registry.example/web:1.0", replicas=3))

    wait_for(
        lambda: apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas == 3,
        timeout=60,
        message="3 ready replicas",
    )
    pods = pods_of(core, namespace, "web")
    assert len(pods) == 3
    for p in pods:
        assert p.status.phase == "Running"
        assert condition(p, "Ready").status == "True"
        assert p.spec.node_name
        assert p.status.pod_ip
    assert condition(apps.read_namespaced_deployment_status("web", namespace), "Available").status == "True"


def test_broken_rollout_exceeds_its_deadline_while_the_old_replicaset_serves(cluster: Cluster, namespace: str) -> None:
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    apps.create_namespaced_deployment(
        namespace, deployment("web", "registry.example/web:1.0", replicas=2, progressDeadlineSeconds=8)
    )
    wait_for(
        lambda: apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas == 2,
        timeout=60,
        message="2 ready replicas of the first revision",
    )

    apps.patch_namespaced_deployment(
        "web",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.example/web:2.0-broken"}]}}}},
    )

    def deadline_exceeded() -> Any:
        progressing = condition(apps.read_namespaced_deployment_status("web", namespace), "Progressing")
        return progressing if progressing.reason == "ProgressDeadlineExceeded" else None

    progressing = wait_for(deadline_exceeded, timeout=90, message="Progressing reason=ProgressDeadlineExceeded")
    assert progressing.status == "False"

    replica_sets = apps.list_namespaced_replica_set(namespace, label_selector="app=web").items
    by_image = {rs.spec.template.spec.containers[0].image: rs for rs in replica_sets}
    assert set(by_image) == {"registry.example/web:1.0", "registry.example/web:2.0-broken"}
    assert by_image["registry.example/web:1.0"].status.ready_replicas == 2
    assert not by_image["registry.example/web:2.0-broken"].status.ready_replicas
    assert apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas == 2

    broken = [p for p in pods_of(core, namespace, "web") if p.spec.containers[0].image.endswith("-broken")]
    assert broken
    assert broken[0].status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"


def cronjob(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "0 3 * * *",
            "suspend": True,  # only the Job the test creates from it runs
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "task", "image": image}],
                        }
                    },
                }
            },
        },
    }


def run_job_from_cronjob(cluster: Cluster, namespace: str, image: str, wanted: str) -> Any:
    batch = client.BatchV1Api(cluster.api)
    batch.create_namespaced_cron_job(namespace, cronjob("nightly", image))
    cluster.kubectl("create", "job", "run-1", "--from=cronjob/nightly", "-n", namespace)

    def finished() -> Any:
        job = batch.read_namespaced_job_status("run-1", namespace)
        for type_ in ("Complete", "Failed"):
            c = condition(job, type_)
            if c is not None and c.status == "True":
                return job
        return None

    job = wait_for(finished, timeout=90, message=f"job run-1 {wanted}")
    assert condition(job, wanted).status == "True", job.status.conditions
    return job


def job_pod(cluster: Cluster, namespace: str) -> Any:
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(namespace, label_selector="job-name=run-1").items
    assert len(pods) == 1
    return pods[0]


def test_job_from_cronjob_succeeds(cluster: Cluster, namespace: str) -> None:
    job = run_job_from_cronjob(cluster, namespace, "registry.example/task:1.0", "Complete")
    assert job.status.succeeded == 1
    assert job.metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual"
    p = job_pod(cluster, namespace)
    assert p.status.phase == "Succeeded"
    assert p.status.container_statuses[0].state.terminated.exit_code == 0


def test_broken_job_from_cronjob_fails(cluster: Cluster, namespace: str) -> None:
    job = run_job_from_cronjob(cluster, namespace, "registry.example/task:1.0-broken", "Failed")
    assert condition(job, "Failed").reason == "BackoffLimitExceeded"
    assert not job.status.succeeded
    p = job_pod(cluster, namespace)
    assert p.status.phase == "Failed"
    assert p.status.container_statuses[0].state.terminated.exit_code == 1


def test_statefulset_claims_bind_and_pods_become_ready(cluster: Cluster, namespace: str) -> None:
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    core.create_namespaced_service(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "db"},
            "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]},
        },
    )
    apps.create_namespaced_stateful_set(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "replicas": 2,
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "db",
                                "image": "registry.example/postgres:16",
                                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}],
                            }
                        ]
                    },
                },
                # No storageClassName: the cluster's default class must provision these.
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                    }
                ],
            },
        },
    )

    wait_for(
        lambda: apps.read_namespaced_stateful_set_status("db", namespace).status.ready_replicas == 2,
        timeout=90,
        message="2 ready StatefulSet replicas",
    )
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(namespace).items}
    assert set(claims) == {"data-db-0", "data-db-1"}
    for claim in claims.values():
        assert claim.status.phase == "Bound"
        assert claim.spec.storage_class_name == "standard"
        volume = core.read_persistent_volume(claim.spec.volume_name)
        assert volume.spec.claim_ref.name == claim.metadata.name
        assert volume.status.phase == "Bound"
        assert volume.spec.capacity["storage"] == "1Gi"
        # Bound by kube-controller-manager's PV controller (after its informer had the volume), not by the stages
        # in the same breath as the volume's creation: the scheduler then saw claims bound to volumes it did not
        # know yet (hack/cluster/stages/volume.yaml).
        binders = {f.manager for f in claim.metadata.managed_fields if "f:volumeName" in json.dumps(f.fields_v1)}
        assert binders == {"kube-controller-manager"}, binders


def test_deleting_a_claim_deletes_its_volume(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "scratch"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
        },
    )
    claim = wait_for(
        lambda: (c := core.read_namespaced_persistent_volume_claim("scratch", namespace)).status.phase == "Bound" and c,
        timeout=60,
        message="claim Bound",
    )
    volume_name = claim.spec.volume_name
    assert core.read_persistent_volume(volume_name).spec.persistent_volume_reclaim_policy == "Delete"

    core.delete_namespaced_persistent_volume_claim("scratch", namespace)

    def volume_gone() -> bool:
        try:
            core.read_persistent_volume(volume_name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(volume_gone, timeout=60, message=f"PersistentVolume {volume_name} to be deleted")


def test_deleting_a_namespace_cascades(cluster: Cluster, namespace: str) -> None:
    apps, core = client.AppsV1Api(cluster.api), client.CoreV1Api(cluster.api)
    apps.create_namespaced_deployment(namespace, deployment("web", "registry.example/web:1.0", replicas=2))
    wait_for(
        lambda: apps.read_namespaced_deployment_status("web", namespace).status.ready_replicas == 2,
        timeout=60,
        message="2 ready replicas",
    )

    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    # The namespace object disappears only after the namespace controller has deleted everything in it.
    wait_for(gone, timeout=120, message=f"namespace {namespace} to be deleted")
    assert core.list_namespaced_pod(namespace).items == []
    assert apps.list_namespaced_deployment(namespace).items == []
    assert apps.list_namespaced_replica_set(namespace).items == []


def test_deleted_pod_goes_away(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("one", "registry.example/web:1.0"))
    wait_for(
        lambda: core.read_namespaced_pod("one", namespace).status.phase == "Running", timeout=60, message="Running"
    )
    cluster.kubectl("delete", "pod", "one", "-n", namespace, "--wait=true", "--timeout=60s")
    assert core.list_namespaced_pod(namespace).items == []


def test_pullfail_image_stays_pending_with_pull_errors(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("pull", "registry.example/web:1.0-pullfail"))
    seen: set[str] = set()

    def backing_off() -> bool:
        p = core.read_namespaced_pod("pull", namespace)
        statuses = p.status.container_statuses or []
        if statuses and statuses[0].state.waiting:
            seen.add(statuses[0].state.waiting.reason)
        return "ImagePullBackOff" in seen

    wait_for(backing_off, timeout=60, interval=0.2, message="ImagePullBackOff")
    p = core.read_namespaced_pod("pull", namespace)
    assert p.status.phase == "Pending"
    assert condition(p, "Ready").status == "False"
    assert seen <= {"ErrImagePull", "ImagePullBackOff"}, seen


def test_crashloop_restart_count_grows(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("crash", "registry.example/web:1.0-broken"))

    def restarts() -> int:
        status = core.read_namespaced_pod("crash", namespace).status
        container = (status.container_statuses or [None])[0]
        if container is None or container.state.waiting is None:
            return 0
        assert container.state.waiting.reason == "CrashLoopBackOff"
        return container.restart_count

    first = wait_for(restarts, timeout=60, message="a first restart")
    later = wait_for(lambda: restarts() > first and restarts(), timeout=60, message=f"restartCount > {first}")
    assert later > first
    p = core.read_namespaced_pod("crash", namespace)
    assert p.status.phase == "Running"
    assert condition(p, "Ready").status == "False"
    last = p.status.container_statuses[0].last_state.terminated
    assert last.exit_code == 1


def test_flapping_pod_turns_ready_and_not_ready_again_and_again(cluster: Cluster, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, pod("flap", "registry.example/web:1.0-flapping"))
    seen: list[bool] = []  # Ready, each time it changed

    def flapped() -> bool:
        p = core.read_namespaced_pod("flap", namespace)
        ready = condition(p, "Ready")
        if ready is not None and (not seen or seen[-1] != (ready.status == "True")):
            seen.append(ready.status == "True")
            # The container keeps running: a flapping readiness check, not a crash.
            status = p.status.container_statuses[0]
            assert p.status.phase == "Running" and status.restart_count == 0 and status.state.running, p.status
            assert status.ready == seen[-1]
        return seen.count(True) >= 2 and seen.count(False) >= 2

    wait_for(flapped, timeout=60, interval=0.2, message="Ready twice and NotReady twice")
    assert seen[0] is True


def run_pytest_with_existing_provider(tmp_path: Path, kubeconfig: Path) -> str:
    test_file = tmp_path / "test_existing.py"
    test_file.write_text(
        "from kubernetes import client\n\n"
        "def test_uses_the_kubeconfig(cluster):\n"
        "    assert cluster.provider == 'existing'\n"
        "    assert client.VersionApi(cluster.api).get_code().git_version.startswith('v1.')\n"
        "    assert 'node' in cluster.kubectl('get', 'nodes', '-o', 'name').stdout\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), KUBECONFIG=str(kubeconfig))
    for name in ("LIGHTHOUSE_CLUSTER_PROVIDER", "LIGHTHOUSE_ALLOW_ANY_CONTEXT"):
        env.pop(name, None)
    args = ["-p", "tests.harness.cluster", "--cluster-provider=existing", "-q", "-p", "no:cacheprovider"]
    args += ["-c", os.devnull, "--rootdir", str(tmp_path), str(test_file)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.stdout + proc.stderr


def test_existing_provider_uses_a_test_context(cluster: Cluster, tmp_path: Path) -> None:
    if cluster.context:
        pytest.skip("runs against the local cluster's own kubeconfig")
    out = run_pytest_with_existing_provider(tmp_path, cluster.kubeconfig)
    assert "1 passed" in out, out


def test_existing_provider_refuses_a_production_looking_context(cluster: Cluster, tmp_path: Path) -> None:
    if cluster.context:
        pytest.skip("runs against the local cluster's own kubeconfig")
    # The same reachable cluster, but its context renamed as if it were production: the guard must refuse it.
    renamed = tmp_path / "kubeconfig"
    text = cluster.kubeconfig.read_text()
    current = re.search(r"^current-context:\s*(\S+)", text, re.MULTILINE)
    assert current
    renamed.write_text(text.replace(current.group(1), "gke_acme_europe-west1_shop"))
    out = run_pytest_with_existing_provider(tmp_path, renamed)
    assert "1 error" in out, out
    assert "refusing context 'gke_acme_europe-west1_shop'" in out, out

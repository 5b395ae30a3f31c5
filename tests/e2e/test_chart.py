"""The Helm chart against the local control plane: install, upgrade, uninstall, RBAC and Pod Security."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lighthouse_operator.builders import PRUNABLE
from lighthouse_operator.k8s import kind_of

from tests.harness.cluster import Cluster, wait_for
from tests.harness.extra_tools import helm
from tests.unit.chart.render import CHART, WITHOUT_FUSE_PLUGIN, by_kind, documents

CRD = "lighthousebridges.lighthouse.dev"
REPO_ROOT = Path(__file__).resolve().parents[2]


class Helm:
    def __init__(self, cluster: Cluster, release: str, namespace: str) -> None:
        self.cluster, self.release, self.namespace = cluster, release, namespace

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args and args[0] in ("install", "upgrade"):
            args = (*args, *WITHOUT_FUSE_PLUGIN)
        cmd = [helm(), "--kubeconfig", str(self.cluster.kubeconfig), "--namespace", self.namespace, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def install(self, *values: str) -> subprocess.CompletedProcess[str]:
        adopt_crd(self.cluster, self.release, self.namespace)
        return self("install", self.release, str(CHART), *values)

    def uninstall(self) -> None:
        self("uninstall", self.release, "--wait", "--timeout", "2m", check=False)


def adopt_crd(cluster: Cluster, release: str, namespace: str) -> None:
    """The CRD is cluster-wide and other suites install it too; mark an existing one as this release's so helm adopts
    it instead of refusing (helm checks these ownership labels and annotations). Applied first: another worker's test
    may create it between a check and helm's install."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=lighthouse-e2e",
                    "-f", str(REPO_ROOT / "crds"))  # fmt: skip
    cluster.kubectl("label", "crd", CRD, "--overwrite", "app.kubernetes.io/managed-by=Helm")
    cluster.kubectl(
        "annotate", "crd", CRD, "--overwrite",
        f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}",
    )  # fmt: skip


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Iterator[Helm]:
    h = Helm(cluster, f"lh-{uuid.uuid4().hex[:6]}", namespace)
    try:
        yield h
    finally:
        h.uninstall()
        # Cluster-wide RBAC belongs to the release; the namespace fixture removes the rest.
        for kind in ("clusterrole", "clusterrolebinding"):
            cluster.kubectl("delete", kind, "-l", f"app.kubernetes.io/instance={h.release}", "--ignore-not-found",
                            check=False)  # fmt: skip


def fullname(h: Helm) -> str:
    return f"{h.release}-lighthouse-operator"


def get_json(cluster: Cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def sample_bridge(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "lighthouse.dev/v1alpha1",
            "kind": "LighthouseBridge",
            "metadata": {"name": name},
            "spec": {"image": "localhost/lighthouse-bridge:0.1.0"},
        }
    )


def test_install_upgrade_uninstall_keeps_crd_and_bridges(cluster: Cluster, namespace: str, release: Helm) -> None:
    installed = release.install()
    # NOTES.txt is rendered by install and tells the user how to follow up.
    assert "kept on uninstall" in installed.stdout
    assert f"kubectl -n {namespace} rollout status deployment/{fullname(release)}" in installed.stdout
    deployment = get_json(cluster, "-n", namespace, "deployment", fullname(release))
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == fullname(release)
    crd = get_json(cluster, "crd", CRD)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.release

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=sample_bridge("keep-me"))

    release("upgrade", release.release, str(CHART), "--set", "operator.logLevel=debug", "--set", "replicaCount=0")
    deployment = get_json(cluster, "-n", namespace, "deployment", fullname(release))
    assert "--verbose" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert deployment["spec"]["replicas"] == 0
    history = json.loads(release("history", release.release, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    release("uninstall", release.release, "--wait", "--timeout", "2m")
    assert cluster.kubectl("get", "-n", namespace, "deployment", fullname(release), check=False).returncode != 0
    assert cluster.kubectl("get", "clusterrole", fullname(release), check=False).returncode != 0
    # Kept: the CRD, and through it every LighthouseBridge.
    assert get_json(cluster, "crd", CRD)["metadata"]["name"] == CRD
    assert get_json(cluster, "-n", namespace, "lighthousebridge", "keep-me")["metadata"]["name"] == "keep-me"


def can_i(cluster: Cluster, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
    # "pods/log" on the command line would mean the pod named "log": subresources go in --subresource.
    resource, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={sa}"]
    args += [f"--subresource={subresource}"] if subresource else []
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    proc = cluster.kubectl(*args, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stderr
    return answer == "yes"


def operator_needs(namespaced: bool = False) -> list[tuple[str, str]]:
    """(verb, resource) pairs the operator's code needs in a namespace it watches: the kinds it applies and prunes,
    and the watch cache's list+watch of everything it reads by label (cache.WATCHED)."""
    needs = []
    for api_version, kind in PRUNABLE:
        k = kind_of(api_version, kind)
        group = api_version.split("/")[0] if "/" in api_version else ""
        resource = f"{k.plural}.{group}" if group else k.plural
        needs += [(verb, resource) for verb in ("get", "list", "watch", "create", "patch", "delete")]
    needs += [
        ("get", "secrets"), ("create", "secrets"), ("patch", "secrets"), ("delete", "secrets"),
        ("get", "lighthousebridges.lighthouse.dev"), ("list", "lighthousebridges.lighthouse.dev"),
        ("watch", "lighthousebridges.lighthouse.dev"), ("patch", "lighthousebridges.lighthouse.dev"),
        ("patch", "lighthousebridges.lighthouse.dev/status"), ("update", "lighthousebridges.lighthouse.dev/finalizers"),
        ("create", "events"), ("list", "pods"), ("watch", "pods"), ("delete", "pods"),
        ("list", "controllerrevisions.apps"), ("watch", "controllerrevisions.apps"),
        ("create", "controllerrevisions.apps"), ("patch", "controllerrevisions.apps"),
        ("delete", "controllerrevisions.apps"), ("list", "replicasets.apps"), ("watch", "replicasets.apps"),
        ("list", "jobs.batch"), ("watch", "jobs.batch"), ("create", "jobs.batch"), ("delete", "jobs.batch"),
        ("get", "persistentvolumeclaims"), ("list", "persistentvolumeclaims"), ("watch", "persistentvolumeclaims"),
        ("patch", "persistentvolumeclaims"),
    ]  # fmt: skip
    if namespaced:  # the Role of a watched namespace lets the cache watch the Secrets the operator generated
        needs += [("list", "secrets"), ("watch", "secrets")]
    return needs


def lease_access(cluster: Cluster, sa: str, namespace: str, lease: str) -> dict[str, bool]:
    """What the ServiceAccount may do to its leader Lease, and to another Lease in the same namespace."""
    out = {}
    for verb in ("get", "update", "watch"):
        for name in (lease, "someone-elses"):
            proc = cluster.kubectl("auth", "can-i", verb, f"leases.coordination.k8s.io/{name}", f"--as={sa}",
                                   "-n", namespace, check=False)  # fmt: skip
            out[f"{verb} {name}"] = proc.stdout.strip() == "yes"
    out["create"] = can_i(cluster, sa, "create", "leases.coordination.k8s.io", namespace)
    return out


# What the operator must never be able to do.
DENIED = [
    ("deletecollection", "secrets"),
    ("create", "lighthousebridges.lighthouse.dev"), ("delete", "lighthousebridges.lighthouse.dev"),
    ("create", "pods"), ("update", "pods"), ("create", "pods/exec"), ("get", "pods/log"), ("create", "pods/eviction"),
    ("delete", "replicasets.apps"), ("delete", "statefulsets.apps/scale"),
    ("create", "roles.rbac.authorization.k8s.io"), ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"), ("impersonate", "serviceaccounts"),
    ("create", "serviceaccounts/token"), ("delete", "persistentvolumeclaims/status"),
    ("update", "lighthousebridges.lighthouse.dev/scale"), ("create", "customresourcedefinitions.apiextensions.k8s.io"),
]  # fmt: skip
CLUSTER_DENIED = [
    ("list", "nodes"), ("create", "namespaces"), ("delete", "namespaces"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("list", "persistentvolumes"), ("delete", "customresourcedefinitions.apiextensions.k8s.io"),
]  # fmt: skip


def test_can_i_matrix_cluster_mode(cluster: Cluster, namespace: str, release: Helm) -> None:
    release.install()
    sa = f"system:serviceaccount:{namespace}:{fullname(release)}"
    elsewhere = "default"  # cluster mode: any namespace
    missing = [(v, r) for v, r in operator_needs() if not can_i(cluster, sa, v, r, elsewhere)]
    assert missing == []
    granted = [(v, r) for v, r in DENIED if can_i(cluster, sa, v, r, elsewhere)]
    granted += [(v, r) for v, r in CLUSTER_DENIED if can_i(cluster, sa, v, r, None)]
    assert granted == []
    # Secrets: by name only; no list or watch, neither cluster-wide nor in any namespace.
    for ns in (None, elsewhere, namespace):
        assert not can_i(cluster, sa, "list", "secrets", ns) and not can_i(cluster, sa, "watch", "secrets", ns)
    assert lease_access(cluster, sa, namespace, fullname(release)) == {
        "get " + fullname(release): True, "get someone-elses": False,
        "update " + fullname(release): True, "update someone-elses": False,
        "watch " + fullname(release): True, "watch someone-elses": False,
        "create": True,
    }  # fmt: skip
    # With rbac.secretsListWatch (an opt-in for large installations) the cache may watch them.
    release("upgrade", release.release, str(CHART), "--set", "rbac.secretsListWatch=true")
    assert can_i(cluster, sa, "watch", "secrets", None)


def test_can_i_matrix_namespaced_mode(cluster: Cluster, namespace: str, release: Helm) -> None:
    watched = f"{namespace}-w"
    cluster.kubectl("create", "namespace", watched)
    try:
        release.install("--set", "watch.mode=namespaced", "--set", f"watch.namespaces={{{watched}}}",
                        "--set", "crds.create=false")  # fmt: skip
        sa = f"system:serviceaccount:{namespace}:{fullname(release)}"
        missing = [(v, r) for v, r in operator_needs(namespaced=True) if not can_i(cluster, sa, v, r, watched)]
        assert missing == []
        # Nothing in a namespace it does not watch, its own included (but for its Lease there).
        for other in ("default", namespace):
            leaked = [(v, r) for v, r in operator_needs(namespaced=True) if can_i(cluster, sa, v, r, other)]
            assert leaked == []
        assert not can_i(cluster, sa, "list", "lighthousebridges.lighthouse.dev", None)
        assert not can_i(cluster, sa, "list", "secrets", None) and not can_i(cluster, sa, "watch", "secrets", None)
        # Cluster-wide it only reads what kopf observes (CRDs and Namespaces) and StorageClasses by name.
        assert can_i(cluster, sa, "watch", "namespaces", None) and can_i(
            cluster, sa, "list", "customresourcedefinitions", None
        )
        assert can_i(cluster, sa, "get", "storageclasses.storage.k8s.io", None)
        assert not can_i(cluster, sa, "list", "storageclasses.storage.k8s.io", None)
        roles = get_json(cluster, "clusterrole", "-l", f"app.kubernetes.io/instance={release.release}")["items"]
        assert [r["metadata"]["name"] for r in roles] == [f"{fullname(release)}-observer"]
        assert lease_access(cluster, sa, namespace, fullname(release))["update " + fullname(release)]
    finally:
        cluster.kubectl("delete", "namespace", watched, "--wait=false", check=False)


def test_operator_pod_is_admitted_under_restricted_pod_security(cluster: Cluster, namespace: str) -> None:
    enforce = ["pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest"]
    cluster.kubectl("label", "namespace", namespace, "--overwrite", *enforce)
    rendered = subprocess.run(
        [helm(), "template", "lh", str(CHART), "--namespace", namespace], capture_output=True, text=True, check=True
    ).stdout
    template = by_kind(documents(rendered), "Deployment")[0]["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator-pss", **template["metadata"]},
           "spec": {**template["spec"], "serviceAccountName": "default"}}  # fmt: skip
    ok = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    assert ok.returncode == 0, ok.stderr
    # The enforcement is live: the same pod with privilege escalation allowed is refused.
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    bad = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(pod), check=False
    )
    assert bad.returncode != 0 and "violates PodSecurity" in bad.stderr


def test_deployment_rolls_out_on_the_cluster(cluster: Cluster, namespace: str, release: Helm) -> None:
    release.install("--set", "crds.create=false")

    def available() -> bool:  # both replicas: the leader and the standby (kwok plays the pods)
        d = get_json(cluster, "-n", namespace, "deployment", fullname(release))
        return d.get("status", {}).get("availableReplicas") == 2

    wait_for(available, timeout=120, message="the operator Deployment to become available")
    def budget() -> dict:
        return get_json(cluster, "-n", namespace, "poddisruptionbudget", fullname(release))

    wait_for(lambda: budget().get("status", {}).get("disruptionsAllowed") == 1, timeout=60, message="one disruption")
    assert budget()["spec"]["minAvailable"] == 1

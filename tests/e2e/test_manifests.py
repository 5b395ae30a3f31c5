"""manifests/ against the real API server: every file passes a server-side dry run, and each overlay, moved into a
test namespace, is applied server-side for real."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness.cluster import Cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = REPO_ROOT / "manifests"
OVERLAYS = ["base", "overlays/dev", "overlays/production", "monitoring"]
CRD = "lighthousebridges.lighthouse.dev"
FIELD_MANAGER = "lighthouse-e2e"

# The Prometheus Operator's CRDs are not part of this project and cannot be fetched here; when the cluster lacks
# them, a schemaless stand-in with the same group, kind and scope lets the API server admit our objects.
MONITORING_KINDS = {"PrometheusRule": "prometheusrules", "ServiceMonitor": "servicemonitors"}


def standin_crd(kind: str, plural: str) -> dict:
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com", "labels": {"lighthouse.dev/test-standin": "true"}},
        "spec": {
            "group": "monitoring.coreos.com",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Iterator[Cluster]:
    created = []
    for kind, plural in MONITORING_KINDS.items():
        name = f"{plural}.monitoring.coreos.com"
        if cluster.kubectl("get", "crd", name, check=False).returncode != 0:
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(standin_crd(kind, plural)))
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
            created.append(name)
    # Our own CRD, applied the way the manifests apply it, so LighthouseBridge examples can be checked.
    cluster.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts",
                    "-f", str(REPO_ROOT / "crds"))  # fmt: skip
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")
    try:
        yield cluster
    finally:
        # Other suites decide whether monitoring CRDs exist (the operator behaves differently): leave none behind.
        for name in created:
            cluster.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=false", check=False)


def manifest_files() -> list[Path]:
    files = [p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml" and "gitops" not in p.parts]
    files = [p for p in files if p.parent.name != "tests"]  # promtool unit tests, not Kubernetes objects
    files += sorted((REPO_ROOT / "examples").glob("*.yaml"))
    return sorted(files)


def test_there_are_manifests_to_check() -> None:
    names = {p.relative_to(MANIFESTS).as_posix() for p in manifest_files() if MANIFESTS in p.parents}
    assert {"base/deployment.yaml", "base/rbac.yaml", "monitoring/prometheusrule.yaml"} <= names


def into_namespace(docs: list[dict], namespace: str) -> list[dict]:
    """A server-side dry run creates nothing, so objects in a Namespace that the same file creates would fail with
    NotFound: namespaced objects go to the test's namespace; cluster-scoped ones (Namespaces too) stay as they are."""
    out = []
    for d in docs:
        d = json.loads(json.dumps(d))
        if d["kind"] not in CLUSTER_SCOPED:
            d["metadata"]["namespace"] = namespace
        out.append(d)
    return out


CLUSTER_SCOPED = {
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "CSIDriver"
}  # fmt: skip
# The FUSE node plugin is one per cluster (its CSIDriver is cluster-wide, its DaemonSet registers the driver on every
# node): applied for real here it would replace the real node's plugin. The dry run above checks its files.
PER_CLUSTER = {("CSIDriver", "fuse.lighthouse.dev"), ("DaemonSet", "lighthouse-operator-fuse-node")}


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_file_passes_server_side_dry_run(prepared: Cluster, namespace: str, path: Path) -> None:
    docs = into_namespace([d for d in yaml.safe_load_all(path.read_text()) if d], namespace)
    assert docs, f"{path} holds no object"
    proc = prepared.kubectl(
        "apply", "--server-side", "--dry-run=server", f"--field-manager={FIELD_MANAGER}", "--force-conflicts",
        "-f", "-", input=yaml.safe_dump_all(docs), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def relocate(docs: list[dict], namespace: str, suffix: str) -> list[dict]:
    """Moves an overlay into the test's namespace and gives its cluster-wide objects unique names, so a test never
    touches a real install. The CRD is left as it is (its name is fixed by its group)."""
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    renamed = {}
    out = []
    for d in docs:
        d = json.loads(json.dumps(d))
        kind, meta = d["kind"], d["metadata"]
        if kind == "Namespace":
            continue  # the test namespace stands in for it
        if kind in ("ClusterRole", "ClusterRoleBinding", "PriorityClass"):
            renamed[(kind, meta["name"])] = meta["name"] = f"{meta['name']}-{suffix}"
        elif kind != "CustomResourceDefinition" and meta.get("namespace") in namespaces | {None}:
            meta["namespace"] = namespace
        out.append(d)
    for d in out:
        if d["kind"] == "ClusterRoleBinding":
            d["roleRef"]["name"] = renamed.get(("ClusterRole", d["roleRef"]["name"]), d["roleRef"]["name"])
        for subject in d.get("subjects", []):
            if subject.get("namespace") in namespaces:
                subject["namespace"] = namespace
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        if spec.get("priorityClassName"):
            spec["priorityClassName"] = renamed.get(("PriorityClass", spec["priorityClassName"]))
    return out


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/production"])
def test_overlay_applies_server_side(prepared: Cluster, namespace: str, overlay: str) -> None:
    rendered = prepared.kubectl("kustomize", str(MANIFESTS / overlay)).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "Deployment"} <= kinds
    assert PER_CLUSTER <= {(d["kind"], d["metadata"]["name"]) for d in docs}
    docs = [d for d in docs if (d["kind"], d["metadata"]["name"]) not in PER_CLUSTER]
    suffix = uuid.uuid4().hex[:6]
    objects = relocate(docs, namespace, suffix)
    body = yaml.safe_dump_all(objects)
    try:
        prepared.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts", "-f", "-",
                         input=body)  # fmt: skip
        deployment = json.loads(prepared.kubectl("get", "-n", namespace, "deployment", "lighthouse-operator",
                                                 "--show-managed-fields", "-o", "json").stdout)  # fmt: skip
        managers = {m["manager"] for m in deployment["metadata"]["managedFields"]}
        assert FIELD_MANAGER in managers
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        # A second apply of the same objects changes nothing: the overlay is stable under server-side apply.
        generation = deployment["metadata"]["generation"]
        prepared.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-", input=body)
        again = json.loads(prepared.kubectl("get", "-n", namespace, "deployment", "lighthouse-operator",
                                            "-o", "json").stdout)  # fmt: skip
        assert again["metadata"]["generation"] == generation
    finally:
        for d in objects:
            if d["metadata"].get("namespace") is None and d["kind"] != "CustomResourceDefinition":
                prepared.kubectl("delete", d["kind"].lower(), d["metadata"]["name"], "--ignore-not-found", check=False)


def test_dev_and_production_differ_where_intended(cluster: Cluster) -> None:
    dev = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(MANIFESTS / "overlays/dev")).stdout) if d]
    prod = [d for d in yaml.safe_load_all(cluster.kubectl("kustomize", str(MANIFESTS / "overlays/production")).stdout)
            if d]  # fmt: skip

    def deployment(docs: list[dict]) -> dict:
        return next(d for d in docs if d["kind"] == "Deployment")

    dev_c = deployment(dev)["spec"]["template"]["spec"]["containers"][0]
    prod_spec = deployment(prod)["spec"]["template"]["spec"]
    assert dev_c["imagePullPolicy"] == "Never" and "--verbose" in dev_c["args"]
    assert prod_spec["priorityClassName"] == "lighthouse-operator-critical"
    assert prod_spec["containers"][0]["resources"]["limits"]["memory"] == "512Mi"
    assert {d["metadata"].get("namespace") for d in dev if d["kind"] == "Deployment"} == {"lighthouse-dev"}
    assert any(d["kind"] == "NetworkPolicy" for d in prod) and not any(d["kind"] == "NetworkPolicy" for d in dev)

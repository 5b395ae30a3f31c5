"""The Helm chart rendered with the pinned helm: lint, golden output, RBAC, Pod Security, CRDs and the schema."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.extra_tools import helm
from tests.unit.chart.render import (
    CHART,
    REPO_ROOT,
    RenderError,
    by_kind,
    documents,
    helm_template,
    restricted_violations,
)

GOLDEN = Path(__file__).parent / "golden"
# Named value sets rendered into golden files; UPDATE_GOLDEN=1 rewrites them after an intended change.
CASES: dict[str, list[str]] = {
    "default": [],
    "namespaced": ["--set", "watch.mode=namespaced", "--set", "watch.namespaces={team-a,team-b}"],
    "no-crds-servicemonitor": ["--set", "crds.create=false", "--set", "metrics.serviceMonitor.enabled=true"],
    "fuse-device-plugin": [
        "--set",
        "fusePlugin.csi.enabled=false",
        "--set",
        "fusePlugin.devicePlugin.enabled=true",
        "--set",
        "fusePlugin.devicePlugin.deviceMode=0666",
    ],
}


@pytest.mark.parametrize("strict", [False, True], ids=["lint", "lint-strict"])
def test_helm_lint(strict: bool) -> None:
    args = [helm(), "lint", str(CHART), *(["--strict"] if strict else [])]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def without_crd_bodies(rendered: str) -> str:
    """The CRD's spec is generated from the operator's models and compared with crds/ on its own (below); the
    golden files keep only the CRD's metadata, so a regenerated CRD does not churn them."""
    docs = rendered.split("\n---\n")
    for i, doc in enumerate(docs):
        if "\nkind: CustomResourceDefinition\n" in f"\n{doc}":
            docs[i] = doc[: doc.index("\nspec:\n")] + "\nspec: {}  # crds/ (see test_crds_are_templated_from_crds)\n"
    return "\n---\n".join(docs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_template_matches_golden(case: str) -> None:
    rendered = without_crd_bodies(helm_template(*CASES[case]))
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(rendered)
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1"
    assert rendered == golden.read_text(), f"helm template differs from {golden.name}: rerun with UPDATE_GOLDEN=1"


def all_rules(docs: list[dict]) -> list[dict]:
    return [rule for d in docs if d["kind"] in ("Role", "ClusterRole") for rule in d["rules"]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_rbac_has_no_wildcards(case: str) -> None:
    rules = all_rules(documents(helm_template(*CASES[case])))
    assert rules
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in (rule.get(field) or []), rule
        assert not rule.get("nonResourceURLs"), rule


def secret_verbs(*args: str) -> list[set[str]]:
    """The verbs of every rule on Secrets, which never share a rule with anything else."""
    out = []
    for rule in all_rules(documents(helm_template(*args))):
        if "secrets" in rule["resources"]:
            assert rule["resources"] == ["secrets"], rule
            out.append(set(rule["verbs"]))
    return out


def test_secret_access_is_exactly_what_the_operator_uses() -> None:
    # Cluster mode: by name only (no list or watch anywhere); namespaced mode: the watched namespaces' Roles also
    # let the cache watch the Secrets the operator generated (it selects them by label). Never update, never
    # deletecollection, no wildcard.
    assert secret_verbs() == [{"get", "create", "patch", "delete"}]
    assert secret_verbs(*CASES["namespaced"]) == [{"get", "list", "watch", "create", "patch", "delete"}] * 2
    assert secret_verbs("--set", "rbac.secretsListWatch=true") == [
        {"get", "list", "watch", "create", "patch", "delete"}
    ]
    # ... and the operator is told not to try what it may not do.
    for args, watch in (((), False), (CASES["namespaced"], True), (("--set", "rbac.secretsListWatch=true"), True)):
        deployment = by_kind(documents(helm_template(*args)), "Deployment")[0]
        assert ("--no-watch-secrets" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]) == watch


def test_two_replicas_behind_a_lease_with_a_disruption_budget() -> None:
    docs = documents(helm_template())
    deployment = by_kind(docs, "Deployment")[0]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert "--leader-elect" in args and "--leader-election-id=lh-lighthouse-operator" in args
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    # Both count the operator's pods only, not the FUSE node plugin's (same name and instance labels).
    (plugin,) = by_kind(docs, "DaemonSet")
    for selector in (pdb["spec"]["selector"]["matchLabels"], term["podAffinityTerm"]["labelSelector"]["matchLabels"]):
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert not selector.items() <= plugin["spec"]["template"]["metadata"]["labels"].items()
    # The Lease: create (which cannot be narrowed to a name) and everything else on the one Lease only.
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    assert role["metadata"]["namespace"] == "lighthouse-system"
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["lh-lighthouse-operator"],
            "verbs": ["get", "list", "watch", "update", "patch"],
        },
    ]
    single = documents(helm_template("--set", "replicaCount=1", "--set", "leaderElection.enabled=false"))
    assert by_kind(single, "PodDisruptionBudget") == [] and not any(
        r["metadata"]["name"].endswith("-leader-election") for r in by_kind(single, "Role")
    )
    deployment = by_kind(single, "Deployment")[0]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "--leader-elect" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_cluster_mode_uses_one_cluster_role() -> None:
    docs = documents(helm_template())
    roles = {r["metadata"]["name"] for r in by_kind(docs, "ClusterRole")}
    assert roles == {"lh-lighthouse-operator", "lh-lighthouse-operator-observer"}
    binding = by_kind(docs, "ClusterRoleBinding")[0]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "lh-lighthouse-operator",
                                    "namespace": "lighthouse-system"}]  # fmt: skip
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args
    # Probes and scrapes come from outside the pod; the operator binds loopback unless told otherwise.
    assert {"--bind=0.0.0.0", "--metrics-port=9469", "--liveness-port=9470"} <= set(args)


def test_namespaced_mode_has_roles_only_in_watched_namespaces() -> None:
    docs = documents(helm_template(*CASES["namespaced"]))
    # Cluster-wide, only kopf's read-only observation of CRDs and Namespaces, and reading Nodes (FuseAvailable).
    observer = by_kind(docs, "ClusterRole")
    assert [r["metadata"]["name"] for r in observer] == ["lh-lighthouse-operator-observer"]
    assert {v for rule in observer[0]["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
    assert {r for rule in observer[0]["rules"] for r in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
        "nodes",
        "storageclasses",
    }
    assert [rule["verbs"] for rule in observer[0]["rules"] if rule["resources"] == ["storageclasses"]] == [["get"]]
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in by_kind(docs, "Role")}
    assert roles == {
        ("team-a", "lh-lighthouse-operator"),
        ("team-b", "lh-lighthouse-operator"),
        ("lighthouse-system", "lh-lighthouse-operator-leader-election"),  # the Lease, in the release namespace
    }
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args


def test_namespaced_mode_defaults_to_the_release_namespace() -> None:
    docs = documents(helm_template("--set", "watch.mode=namespaced", namespace="ops"))
    assert {r["metadata"]["namespace"] for r in by_kind(docs, "Role")} == {"ops"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_pod_meets_restricted_pod_security(case: str) -> None:
    deployment = by_kind(documents(helm_template(*CASES[case])), "Deployment")[0]
    assert restricted_violations(deployment["spec"]["template"]["spec"]) == []


def test_restricted_check_catches_a_weakened_pod() -> None:
    deployment = by_kind(documents(helm_template()), "Deployment")[0]
    spec = deployment["spec"]["template"]["spec"]
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    spec["containers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}
    spec["securityContext"]["runAsNonRoot"] = False
    spec["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    assert len(restricted_violations(spec)) == 5


def test_crds_are_templated_from_crds_and_kept_on_uninstall() -> None:
    crds = by_kind(documents(helm_template()), "CustomResourceDefinition")
    source = [yaml.safe_load(p.read_text()) for p in sorted((REPO_ROOT / "crds").glob("*.yaml"))]
    assert [c["metadata"]["name"] for c in crds] == [s["metadata"]["name"] for s in source]
    for crd, src in zip(crds, source, strict=True):
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert crd["spec"] == src["spec"]
    assert by_kind(documents(helm_template("--set", "crds.create=false")), "CustomResourceDefinition") == []


def test_chart_crd_copy_has_not_drifted() -> None:
    proc = subprocess.run([str(REPO_ROOT / "hack" / "update-chart-crds.sh"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_metrics_service_and_optional_service_monitor() -> None:
    docs = documents(helm_template())
    service = by_kind(docs, "Service")[0]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert by_kind(docs, "ServiceMonitor") == []
    monitor = by_kind(documents(helm_template(*CASES["no-crds-servicemonitor"])), "ServiceMonitor")[0]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    # The operator's pods only: the FUSE node plugin's pods share name and instance.
    selector = service["spec"]["selector"].items()
    (operator,) = by_kind(docs, "Deployment")
    assert selector <= operator["spec"]["template"]["metadata"]["labels"].items()
    (plugin,) = by_kind(docs, "DaemonSet")
    assert not selector <= plugin["spec"]["template"]["metadata"]["labels"].items()
    assert by_kind(documents(helm_template("--set", "metrics.enabled=false")), "Service") == []


@pytest.mark.parametrize(
    "bad",
    [
        ["--set", "watch.mode=everything"],
        ["--set", "securityContext.allowPrivilegeEscalation=true"],
        ["--set", "podSecurityContext.runAsNonRoot=false"],
        ["--set", "image.pullPolicy=Sometimes"],
        ["--set", "metrics.port=70000"],
        ["--set", "unknownKey=1"],
        ["--set", "watch.namespaces={Not_A_Namespace}"],
        ["--set", "leaderElection.enabled=false"],  # two replicas without a Lease would both reconcile
        ["--set", "defaults.fuse.mode=devicePlugin"],
        ["--set", "defaults.fuse.mode=root"],
    ],
    ids=lambda a: a[1],
)
def test_values_schema_rejects_bad_values(bad: list[str]) -> None:
    with pytest.raises(RenderError, match="values don't meet the specifications of the schema"):
        helm_template(*bad)


def test_defaults_become_operator_flags() -> None:
    docs = documents(
        helm_template(
            "--set", "defaults.images.postgres=localhost/lighthouse-postgres:15",
            "--set", "defaults.images.redis=localhost/lighthouse-redis:7.0",
            "--set", "defaults.fuse.mode=devicePlugin",
            "--set", "defaults.fuse.devicePluginResource=lighthouse.dev/fuse",
        )
    )  # fmt: skip
    args = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert {
        "--default-postgres-image=localhost/lighthouse-postgres:15",
        "--default-redis-image=localhost/lighthouse-redis:7.0",
        "--default-fuse-mode=devicePlugin",
        "--default-fuse-device-plugin-resource=lighthouse.dev/fuse",
    } <= set(args)

    # Unset defaults add no flag (the operator's built-in ones apply), except the FUSE mode: csi, with the chart's CSI
    # node plugin installed; without it, none.
    def default_flags(*args: str) -> list[str]:
        pod = by_kind(documents(helm_template(*args)), "Deployment")[0]["spec"]["template"]["spec"]
        return [a for a in pod["containers"][0]["args"] if a.startswith("--default-")]

    assert default_flags() == ["--default-fuse-mode=csi"]
    assert default_flags("--set", "fusePlugin.csi.enabled=false") == []
    assert default_flags("--set", "fusePlugin.enabled=false") == []


def test_plain_manifests_match_the_chart() -> None:
    # manifests/base is the chart's default install written out for kustomize; the parts that matter must agree.
    docs = documents(helm_template())
    base = REPO_ROOT / "manifests" / "base"
    base_rbac = [d for d in yaml.safe_load_all((base / "rbac.yaml").read_text()) if d]
    chart_rules = {r["metadata"]["name"].removeprefix("lh-"): r["rules"] for r in by_kind(docs, "ClusterRole")}
    assert {r["metadata"]["name"]: r["rules"] for r in by_kind(base_rbac, "ClusterRole")} == chart_rules
    chart_pod = by_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    base_pod = yaml.safe_load((base / "deployment.yaml").read_text())["spec"]["template"]["spec"]
    assert base_pod["securityContext"] == chart_pod["securityContext"]
    # The release is "lh" here; the plain manifests name everything lighthouse-operator (the Lease too).
    chart_args = [
        a.replace("=lh-lighthouse-operator", "=lighthouse-operator") for a in chart_pod["containers"][0]["args"]
    ]
    assert base_pod["containers"][0]["args"] == chart_args
    for field in ("env", "ports", "livenessProbe", "readinessProbe", "resources", "securityContext"):
        assert base_pod["containers"][0][field] == chart_pod["containers"][0][field], field
    assert base_pod["volumes"] == chart_pod["volumes"]
    assert base_pod["affinity"]["podAntiAffinity"] and chart_pod["affinity"]["podAntiAffinity"]
    chart_deployment = by_kind(docs, "Deployment")[0]["spec"]
    base_deployment = yaml.safe_load((base / "deployment.yaml").read_text())["spec"]
    for field in ("replicas", "strategy"):
        assert base_deployment[field] == chart_deployment[field], field
    base_lease = [d for d in base_rbac if d["kind"] == "Role"]
    chart_lease = [r for r in by_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")]
    assert [r["rules"] for r in base_lease] == [
        [
            {**rule, **({"resourceNames": ["lighthouse-operator"]} if "resourceNames" in rule else {})}
            for rule in r["rules"]
        ]
        for r in chart_lease
    ]
    base_pdb = yaml.safe_load((base / "pdb.yaml").read_text())["spec"]
    assert base_pdb["minAvailable"] == by_kind(docs, "PodDisruptionBudget")[0]["spec"]["minAvailable"]
    base_fuse = [d for d in yaml.safe_load_all((base / "fuse-plugin.yaml").read_text()) if d]
    assert by_kind(base_fuse, "CSIDriver")[0]["spec"] == by_kind(docs, "CSIDriver")[0]["spec"]
    base_ds, chart_ds = by_kind(base_fuse, "DaemonSet")[0], by_kind(docs, "DaemonSet")[0]
    assert base_ds["spec"]["template"]["spec"] == chart_ds["spec"]["template"]["spec"]


def test_fuse_node_plugin_is_installed_by_default() -> None:
    """The CSI node plugin and its CSIDriver (docs/fuse-modes.md): what fuse.mode csi needs on every node."""
    docs = documents(helm_template())
    (driver,) = by_kind(docs, "CSIDriver")
    assert driver["metadata"]["name"] == "fuse.lighthouse.dev"
    assert driver["spec"] == {
        "attachRequired": False,
        "volumeLifecycleModes": ["Ephemeral"],
        "podInfoOnMount": True,
        "fsGroupPolicy": "None",
        "requiresRepublish": False,
        "storageCapacity": False,
    }
    (ds,) = by_kind(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["csi"]
    csi = pod["containers"][0]
    assert csi["image"] == "localhost/lighthouse-fuse-plugin:0.1.0"
    assert csi["securityContext"]["privileged"] is True
    (mount,) = csi["volumeMounts"]
    assert mount == {"name": "kubelet-dir", "mountPath": "/var/lib/kubelet", "mountPropagation": "Bidirectional"}
    assert pod["volumes"][0]["hostPath"] == {"path": "/var/lib/kubelet", "type": "Directory"}
    assert pod["automountServiceAccountToken"] is False


def test_fuse_node_plugin_with_the_device_plugin_only() -> None:
    docs = documents(helm_template(*CASES["fuse-device-plugin"]))
    assert by_kind(docs, "CSIDriver") == []
    (ds,) = by_kind(docs, "DaemonSet")
    (dp,) = ds["spec"]["template"]["spec"]["containers"]
    assert dp["name"] == "device-plugin" and dp["command"] == ["/usr/local/bin/fuse-device-plugin"]
    assert "-resource=lighthouse.dev/fuse" in dp["args"] and "-mode=0666" in dp["args"]
    assert "-socket-dir=/var/lib/kubelet/device-plugins" in dp["args"]
    assert by_kind(documents(helm_template("--set", "fusePlugin.enabled=false")), "DaemonSet") == []


def test_fuse_node_plugin_values_are_checked() -> None:
    with pytest.raises(RenderError, match="deviceMode"):
        helm_template("--set", "fusePlugin.devicePlugin.deviceMode=rw")
    with pytest.raises(RenderError, match="kubeletDir"):
        helm_template("--set", "fusePlugin.kubeletDir=var/lib/kubelet")

"""The operator as `make up` runs it: installed from the Helm chart, a pod on the real node with the chart's RBAC,
reaching the apiserver through the in-cluster `kubernetes` Service. Here in namespaced mode, so that it watches only
its own namespace and leaves the other tests' bridges alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness.extra_tools import helm
from tests.integration.operator.conftest import release_namespace

from .conftest import FUSE_RESOURCE, NODE, REPO, Bridge, Kubectl, RealNode, node_namespace, pod_ready


def test_the_chart_installed_operator_pod_reconciles_a_bridge_on_the_real_node(real_node: RealNode, crd: Path) -> None:
    cluster = real_node.cluster
    operator_ref = real_node.refs["operator"]
    with node_namespace(cluster, "chart") as ns:
        release = "lh"
        repo, tag = operator_ref.rsplit(":", 1)
        values = {
            "watch.mode": "namespaced",
            "crds.create": "false",
            "image.repository": repo,
            "image.tag": tag,
            "defaults.images.bridge": real_node.refs["bridge"],
            "defaults.images.postgres": real_node.refs["postgres"],
            "defaults.images.redis": real_node.refs["redis"],
            "defaults.fuse.devicePluginResource": FUSE_RESOURCE,
            # The FUSE node plugin runs already (session fixture; its CSIDriver is cluster-wide): this release leaves
            # it out, and its operator uses it as make up's does.
            "fusePlugin.enabled": "false",
            "defaults.fuse.mode": "csi",
        }
        args = [helm(), "upgrade", "--install", release, str(REPO / "charts" / "lighthouse-operator"),
                "--kubeconfig", str(cluster.kubeconfig), "--namespace", ns, "--wait", "--timeout", "180s"]  # fmt: skip
        for key, value in values.items():
            args += ["--set", f"{key}={value}"]
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=300)
        try:
            k = Kubectl(cluster, ns)
            # The chart's two replicas (one real node: its preferred anti-affinity puts both there), both Ready.
            pods = k.items("pods", f"app.kubernetes.io/instance={release}")
            assert len(pods) == 2 and all(p["spec"]["nodeName"] == NODE and pod_ready(p) for p in pods), pods
            # The chart's probes are the kubelet's: /healthz answered on the pod's address.
            assert all(p["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz" for p in pods)
            b = Bridge(k, "demo")
            b.apply({})
            b.wait_ready()
            assert b.pod()["spec"]["nodeName"] == NODE
            # The leader (its pod named in the Lease) did the work.
            holder = k.get("lease", f"{release}-lighthouse-operator")["spec"]["holderIdentity"]
            (op,) = [p for p in pods if holder.startswith(p["metadata"]["name"])]
            logs = k("logs", "-n", ns, op["metadata"]["name"]).stdout
            assert f"scope={ns}" in logs and "reason=Ready" in logs, logs[-2000:]
            # In-cluster credentials: the pod's service account, not a kubeconfig.
            assert op["spec"]["serviceAccountName"] == f"{release}-lighthouse-operator"
        finally:
            release_namespace(cluster, ns)
            subprocess.run(
                [helm(), "uninstall", release, "--kubeconfig", str(cluster.kubeconfig), "--namespace", ns, "--wait"],
                capture_output=True,
                timeout=120,
                check=False,
            )

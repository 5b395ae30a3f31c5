"""The operator when its API server goes away: a restart in the middle of a reconcile, and watches that resume from
a resourceVersion the restarted server no longer has (410 Gone), lose no change. The operator talks to a second API
server of its own on the cluster's etcd (tests/harness/apiserver.py), so restarting it disturbs no other test; the
changes are made through the first one while the operator's is down."""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness.apiserver import SecondApiserver
from tests.harness.cluster import Cluster, wait_for

from .conftest import Kubectl, Operator, lhb, release_namespace
from .test_operator import EXPECTED, children, wait_ready

# A fixed port below the ephemeral range, next to the cluster's own (hack/cluster.sh: LIGHTHOUSE_CLUSTER_PORT).
PORT = int(os.environ.get("LIGHTHOUSE_CLUSTER_PORT", "26443")) + 2


def expired_watches(op: Operator) -> float:
    return sum(
        v
        for k, v in op.metrics().items()
        if k.startswith("lighthouse_operator_watch_restarts_total") and "expired" in k
    )


def test_an_api_server_restart_mid_reconcile_and_expired_watches_lose_no_change(
    cluster: Cluster, namespace: str, k: Kubectl, crd: Path, tmp_path: Path
) -> None:
    api = SecondApiserver(cluster.kubeconfig, PORT, tmp_path / "apiserver")
    own = Cluster("local", api.kubeconfig, cluster.kubectl_path)

    def ready() -> bool:
        return own.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0

    api.start(ready)
    # Standalone: with leader election it would (rightly) give up the Lease while its API server is away.
    op = Operator(own, [namespace], tmp_path / "operator.log", leader_elect=False)
    try:
        op.start()
        k.apply(lhb("demo", {"deletionPolicy": "Delete"}))
        wait_ready(k)

        def meanwhile() -> None:
            # Only a relist can tell the operator about these: its watches were down when they happened.
            k("delete", "service", "demo-bridge-metrics", "-n", namespace)
            k("delete", "configmap", "demo-bridge-config", "-n", namespace)
            k.patch("lhb", "demo", {"spec": {"restartNonce": "after-the-restart"}})

        # A spec change, and the API server goes away while the operator applies it.
        k.patch("lhb", "demo", {"spec": {"replicas": 2}})
        api.restart(ready, while_down=meanwhile)

        obj = wait_ready(k, timeout=180)
        assert obj["spec"]["restartNonce"] == "after-the-restart" and obj["status"]["readyReplicas"] == 2
        wait_for(lambda: children(k) == EXPECTED, timeout=60, message="the deleted children restored")
        assert expired_watches(op) > 0, "no watch resumed into a 410: the relist path was not exercised"
        assert op.proc is not None and op.proc.poll() is None
    finally:
        if op.proc is not None and op.proc.poll() is None:
            release_namespace(cluster, namespace)
        op.stop()
        api.stop()

"""Two operator replicas behind a coordination.k8s.io/v1 Lease, as the chart runs them: only the leader reconciles and
writes; after a kill -9 of the leader the standby takes over and converges what changed while nobody led; a clean
shutdown hands the Lease over at once. (How fast: benchmarks/chaos_bench.py.)"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from lighthouse_operator import naming

from tests.harness.cluster import Cluster, wait_for

from .conftest import Kubectl, Operator, lhb, release_namespace
from .test_operator import EXPECTED, children, wait_ready

LEASE = "lighthouse-operator"


def lease(k: Kubectl) -> dict[str, Any]:
    obj: dict[str, Any] = k.get("lease", LEASE)
    return obj["spec"]


def reconciles(op: Operator) -> float:
    return sum(v for k, v in op.metrics().items() if k.startswith("lighthouse_operator_reconciles_total"))


def pair(cluster: Cluster, namespace: str, tmp_path: Path) -> tuple[Operator, Operator]:
    a = Operator(cluster, [namespace], tmp_path / "a.log", identity="replica-a").start()
    b = Operator(cluster, [namespace], tmp_path / "b.log", identity="replica-b").start(wait_leading=False)
    return a, b


def test_the_standby_makes_no_writes_and_takes_over_after_a_kill(
    cluster: Cluster, namespace: str, k: Kubectl, tmp_path: Path
) -> None:
    a, b = pair(cluster, namespace, tmp_path)
    try:
        assert a.leading() and b.health()["role"] == "standby"
        k.apply(lhb("demo", {"deletionPolicy": "Delete"}))
        wait_ready(k)
        assert lease(k)["holderIdentity"] == "replica-a"
        assert (b.writes(), b.lease_writes(), reconciles(b)) == (0, 0, 0), "the standby wrote or reconciled"

        a.stop(signal.SIGKILL)
        # Changed while nobody leads: the new leader must see it (its cache lists everything afresh).
        k.patch("lhb", "demo", {"spec": {"replicas": 2}})
        wait_for(b.leading, timeout=60, message="the standby to take over")
        obj = wait_ready(k)
        assert obj["status"]["readyReplicas"] == 2
        spec = lease(k)
        assert spec["holderIdentity"] == "replica-b" and spec["leaseTransitions"] >= 1
        assert children(k) == EXPECTED
        assert len(k.items("replicasets", naming.selector_string("demo", "bridge"))) == 1
    finally:
        if b.proc is not None and b.proc.poll() is None:
            release_namespace(cluster, namespace)
        for op in (a, b):
            op.stop()


def test_a_clean_shutdown_hands_the_lease_over_at_once(
    cluster: Cluster, namespace: str, k: Kubectl, tmp_path: Path
) -> None:
    a, b = pair(cluster, namespace, tmp_path)
    try:
        a.stop(signal.SIGTERM)
        assert a.proc is not None and a.proc.returncode == 0
        assert "Released leadership" in a.log_path.read_text()
        # The Lease was given up on the way out, not left to expire: whoever holds it now, it is not the old leader.
        assert lease(k).get("holderIdentity") in (None, "replica-b")
        wait_for(b.leading, timeout=30, message="the standby to take over")
        k.apply(lhb("after"))
        wait_ready(k, "after")
    finally:
        if b.proc is not None and b.proc.poll() is None:
            release_namespace(cluster, namespace)
        for op in (a, b):
            op.stop()

"""Two operator replicas behind a coordination.k8s.io/v1 Lease, as the chart runs them: only the leader reconciles and
writes; after a kill -9 of the leader the standby takes over and converges what changed while nobody led; a clean
shutdown hands the Lease over at once. (How fast: benchmarks/chaos_bench.py.)"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from lighthouse_operator import naming

from tests.harness.cluster import Cluster, wait_for

from .conftest import Kubectl, Operator, lhb, release_namespace
from .test_operator import EXPECTED, children, wait_ready

LEASE = "lighthouse-operator"
PYTHON = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "python"
STALLER = Path(__file__).with_name("stalling_operator.py")


def lease(k: Kubectl) -> dict[str, Any]:
    obj: dict[str, Any] = k.get("lease", LEASE)
    return obj["spec"]


def reconciles(op: Operator) -> float:
    return sum(v for k, v in op.metrics().items() if k.startswith("lighthouse_operator_reconciles_total"))


def pair(cluster: Cluster, namespace: str, tmp_path: Path) -> tuple[Operator, Operator]:
    a = Operator(cluster, [namespace], tmp_path / "a.log", identity="replica-a").start()
    b = Operator(cluster, [namespace], tmp_path / "b.log", identity="replica-b").start(wait_leading=False)
    return a, b


def stop_all(cluster: Cluster, namespace: str, leader: Operator, other: Operator) -> None:
    """Delete the bridges while the replica expected to lead still runs (so the namespace can go), then stop both."""
    if leader.proc is not None and leader.proc.poll() is None:
        release_namespace(cluster, namespace)
    for op in (leader, other):
        op.stop()


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
        stop_all(cluster, namespace, b, a)


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
        stop_all(cluster, namespace, b, a)


def test_a_leader_whose_event_loop_is_blocked_keeps_renewing_its_lease(
    cluster: Cluster, namespace: str, k: Kubectl, tmp_path: Path
) -> None:
    """The 1,000-bridge takeover held the new leader's loop for ~9 s and it lost the Lease: the renewals now run on
    a thread of their own. The leader's main thread is blocked (stalling_operator.py, test-only) for three Lease
    durations: it must stay leader, renewTime must advance all along, and the standby must not take over."""
    timings = ["--lease-duration", "4", "--renew-period", "1", "--renew-deadline", "3"]
    stall = 12.0
    a = Operator(
        cluster,
        [namespace],
        tmp_path / "a.log",
        identity="replica-a",
        command=[str(PYTHON), str(STALLER)],
        env={"LIGHTHOUSE_TEST_STALL_SECONDS": str(stall)},
        extra_args=timings,
    ).start()
    b = Operator(cluster, [namespace], tmp_path / "b.log", identity="replica-b", extra_args=timings)
    b.start(wait_leading=False)
    try:
        before = lease(k)["renewTime"]
        assert a.proc is not None
        a.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: "Stalling the main thread" in a.log_path.read_text(), timeout=10, message="the stall")
        seen, holders = set(), set()
        while "Stall over" not in a.log_path.read_text():
            spec = lease(k)
            seen.add(spec["renewTime"])
            holders.add(spec["holderIdentity"])
            time.sleep(0.5)
        assert a.proc.poll() is None, f"the leader exited:\n{a.log_tail()}"
        assert "Lost leadership" not in a.log_path.read_text()
        assert holders == {"replica-a"}, holders
        seen.discard(before)
        assert len(seen) >= 4, f"renewTime advanced only to {sorted(seen)} during a {stall} s stall"
        assert b.health()["role"] == "standby" and b.lease_writes() == 0
        # And it still leads for real: it reconciles.
        k.apply(lhb("after"))
        wait_ready(k, "after")
    finally:
        stop_all(cluster, namespace, a, b)

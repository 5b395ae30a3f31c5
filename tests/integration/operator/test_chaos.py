"""kill -9 of the leader during create, update and delete storms, with a standby (the suite's short version of
benchmarks/chaos_bench.py, which does it a hundred times and times it): after each kill the standby takes over and
everything converges, with no orphaned, missing or duplicated child (tests/harness/chaos.py)."""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lighthouse_operator import naming

from tests.harness.chaos import KINDS, problems
from tests.harness.cluster import Cluster, wait_for

from .conftest import Kubectl, Operator, is_ready, lhb, release_namespace

MANAGED = f"{naming.L_MANAGED_BY}={naming.MANAGED_BY}"


def state(k: Kubectl) -> tuple[list[dict[str, Any]], list[str]]:
    bridges = k.get("lhb")["items"]
    return bridges, problems(k.items(KINDS, MANAGED), bridges)


def test_kill_9_of_the_leader_in_storms_leaves_no_orphan_or_duplicate(
    cluster: Cluster, namespace: str, k: Kubectl, crd: Path, tmp_path: Path
) -> None:
    rng = random.Random(17)
    ops = [Operator(cluster, [namespace], tmp_path / f"{n}.log", identity=f"{n}-0") for n in ("a", "b")]
    ops[0].start()
    ops[1].start(wait_leading=False)
    wanted: set[str] = set()

    def apply(names: list[str], **spec: Any) -> None:
        docs = [lhb(n, {"deletionPolicy": "Delete", **spec}) for n in names]
        k.apply("\n---\n".join(json.dumps(d) for d in docs))
        wanted.update(names)

    def delete(names: list[str]) -> None:
        k("delete", "lhb", *names, "-n", namespace, "--wait=false")
        wanted.difference_update(names)

    seen: list[str] = []  # what the last look found, for the failure message

    def converged() -> bool:
        bridges, wrong = state(k)
        names = {b["metadata"]["name"] for b in bridges}
        late = sorted(b["metadata"]["name"] for b in bridges if not is_ready(b))
        seen[:] = [f"bridges {sorted(names)} (want {sorted(wanted)}), not ready {late}", *wrong]
        return names == wanted and not late and not wrong

    storms: list[tuple[str, Callable[[], None]]] = [
        ("create", lambda: apply(["c0", "c1", "c2"])),
        ("update", lambda: apply(["c0", "c1", "c2"], replicas=2, restartNonce="n1")),
        ("delete", lambda: (delete(["c0", "c1"]), apply(["c3"]))),
    ]
    try:
        for round_, (what, storm) in enumerate(storms, start=1):
            storm()
            time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the middle of the reconciles it started
            leader = next(op for op in ops if op.leading())
            leader.stop(signal.SIGKILL)
            leader.identity = f"{leader.identity.split('-')[0]}-{round_}"  # a new pod's name
            leader.start(wait_leading=False)

            try:
                wait_for(converged, timeout=180, interval=1, message=f"convergence after the {what} storm and a kill")
            except AssertionError:
                raise AssertionError(f"no convergence after the {what} storm and a kill: {seen}") from None
            assert sum(op.leading() for op in ops) == 1, "not exactly one leader"
        bridges, wrong = state(k)
        assert wrong == [] and {b["metadata"]["name"] for b in bridges} == {"c2", "c3"}
    finally:
        if any(op.proc is not None and op.proc.poll() is None for op in ops):
            release_namespace(cluster, namespace)
        for op in ops:
            op.stop()

"""kill -9 of the leader, again and again, during create, update, rollout and delete storms (issue 17), on a kwok-only
cluster of its own with two replicas behind the chart's Lease, as the chart's ServiceAccount with the chart's RBAC.

    .venv/bin/python benchmarks/chaos_bench.py [--kills 100] [--bridges 20] [--no-record]

Each round starts a storm (cycling: create new bridges, change the spec of some, roll some out to another image,
delete some), kills the leader with SIGKILL at a random moment within --kill-within seconds, and starts the killed
replica again as a standby (a new pod: a new identity). Figures per round: the time from the kill until the standby
leads, and until everything has converged: every bridge Ready at its generation, the deleted ones gone, and
tests/harness/chaos.py finding nothing wrong (no orphaned, missing or duplicated child, no revision recorded twice).
The summary says how many rounds converged within 30 s of their kill, and what was wrong at the end, if anything.
The suite runs a short version of this (tests/integration/operator/test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale_harness import REPO, STATE, BenchCluster, Replica, bridge, leader, operator_venv, pct, ready, run_id

from tests.harness.chaos import KINDS, problems

RESULTS = REPO / "benchmarks" / "RESULTS.md"
MANAGED = "app.kubernetes.io/managed-by=lighthouse-operator"


class Fleet:
    """The bridges the storms change, and what each should look like."""

    def __init__(self, cluster: BenchCluster, namespace: str, rng: random.Random):
        self.cluster, self.ns, self.rng = cluster, namespace, rng
        self.specs: dict[str, dict[str, Any]] = {}
        self.counter = 0

    def apply(self, names: list[str]) -> None:
        docs = [bridge(n, self.ns, **self.specs[n]) for n in names]
        self.cluster.kubectl("apply", "--server-side", "--field-manager=chaos", "-f", "-",
                             input="\n---\n".join(json.dumps(d) for d in docs))  # fmt: skip

    def create(self, k: int) -> str:
        names = []
        for _ in range(k):
            self.counter += 1
            names.append(f"c{self.counter:04d}")
            self.specs[names[-1]] = {}
        self.apply(names)
        return f"create {len(names)}"

    def pick(self, k: int) -> list[str]:
        return self.rng.sample(sorted(self.specs), min(k, len(self.specs)))

    def update(self, k: int) -> str:
        names = self.pick(k)
        for n in names:
            self.specs[n]["replicas"] = 3 - self.specs[n].get("replicas", 1)  # 1 <-> 2
        self.apply(names)
        return f"update {len(names)}"

    def rollout(self, k: int) -> str:
        names = self.pick(k)
        for n in names:
            self.specs[n]["image"] = f"localhost/lighthouse-bridge:chaos-{self.rng.randrange(1000)}"
        self.apply(names)
        return f"rollout {len(names)}"

    def delete(self, k: int) -> str:
        names = self.pick(k)
        if names:
            self.cluster.kubectl("delete", "lhb", "-n", self.ns, "--wait=false", *names)
        for n in names:
            del self.specs[n]
        return f"delete {len(names)}"

    def state(self) -> tuple[bool, list[str]]:
        bridges = json.loads(self.cluster.kubectl("get", "lhb", "-n", self.ns, "-o", "json"))["items"]
        objects = json.loads(self.cluster.kubectl("get", KINDS, "-n", self.ns, "-l", MANAGED, "-o", "json"))["items"]
        names = {b["metadata"]["name"] for b in bridges}
        late = sorted(b["metadata"]["name"] for b in bridges if not ready(b))
        wrong = problems(objects, bridges)
        if names != set(self.specs):
            wrong.insert(0, f"bridges {len(names)}, want {len(self.specs)}")
        return names == set(self.specs) and not late and not wrong, [*(f"not Ready: {n}" for n in late), *wrong]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=100)
    p.add_argument("--bridges", type=int, default=20, help="bridges created before the first kill")
    p.add_argument("--storm", type=int, default=3, help="bridges each storm touches")
    p.add_argument("--kill-within", type=float, default=3.0, help="seconds after a storm's start to kill within")
    p.add_argument("--converge-timeout", type=float, default=180)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--port", type=int, default=int(os.environ.get("LIGHTHOUSE_CLUSTER_PORT", "26443")) + 1)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--keep-cluster", action="store_true")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args()
    rng = random.Random(args.seed)
    cluster = BenchCluster("bench-chaos", args.port, args.nodes)
    cluster.up()
    ns = f"chaos-{run_id()}"
    logs = STATE / "bench" / "chaos"
    logs.mkdir(parents=True, exist_ok=True)
    exe = operator_venv()
    kubeconfig = cluster.install(ns)
    replicas = [Replica(exe, kubeconfig, ns, logs / f"{ns}-{name}.log", name) for name in ("a", "b")]
    fleet = Fleet(cluster, ns, rng)
    rounds: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    try:
        for r in replicas:
            r.start()
        fleet.create(args.bridges)
        t0 = time.monotonic()
        while not fleet.state()[0]:
            if time.monotonic() - t0 > 600:
                sys.exit(f"the first {args.bridges} bridges did not converge: {fleet.state()[1][:10]}")
            time.sleep(2)
        storms = [fleet.create, fleet.update, fleet.rollout, fleet.delete]
        for i in range(args.kills):
            what = storms[i % len(storms)](args.storm)
            time.sleep(rng.uniform(0, args.kill_within))
            victim = leader(replicas)
            if victim is None:  # between leaders: wait for one, then kill it
                t = time.monotonic()
                while (victim := leader(replicas)) is None and time.monotonic() - t < 60:
                    time.sleep(0.2)
                assert victim is not None, "no leader for 60 s"
            survivor = next(r for r in replicas if r is not victim)
            killed = time.monotonic()
            victim.kill(signal.SIGKILL)
            victim.start()  # the pod comes back: a standby with a new identity
            while survivor.role() != "leader" and victim.role() != "leader":
                if time.monotonic() - killed > 120:
                    break
                time.sleep(0.1)
            takeover = time.monotonic() - killed
            wrong: list[str] = []
            while True:
                ok, wrong = fleet.state()
                if ok or time.monotonic() - killed > args.converge_timeout:
                    break
                time.sleep(0.5)
            converged = time.monotonic() - killed
            rounds.append({"storm": what, "takeover": takeover, "converged": converged, "ok": ok, "wrong": wrong})
            print(
                f"round {i + 1}/{args.kills}: {what}; standby leads after {takeover:.1f} s; "
                + (
                    f"converged after {converged:.1f} s"
                    if ok
                    else f"NOT converged after {converged:.0f} s: {wrong[:5]}"
                ),
                flush=True,
            )
        final_ok, final_wrong = fleet.state()
    finally:
        for r in replicas:
            r.kill(signal.SIGTERM)
        if not args.keep_cluster:
            cluster.down()

    takeovers = [r["takeover"] for r in rounds]
    converged = [r["converged"] for r in rounds if r["ok"]]
    lines = [
        f"{len(rounds)} kill -9s of the leader ({args.bridges} bridges to start with, storms of {args.storm}: "
        f"create, update, rollout, delete in turn; each kill within {args.kill_within:g} s of its storm's start)",
        f"standby leading after the kill: p50 {statistics.median(takeovers):.1f} s, p95 {pct(takeovers, 95):.1f} s, "
        f"max {max(takeovers):.1f} s; {sum(t <= 15 for t in takeovers)}/{len(rounds)} within 15 s",
        f"converged after the kill (all Ready at their generation, deleted ones gone, no orphaned, missing or "
        f"duplicated child): p50 {statistics.median(converged):.1f} s, p95 {pct(converged, 95):.1f} s, "
        f"max {max(converged):.1f} s; {sum(c <= 30 for c in converged)}/{len(rounds)} within 30 s; "
        f"{sum(not r['ok'] for r in rounds)} rounds did not converge within {args.converge_timeout:.0f} s",
        f"at the end: {len(fleet.specs)} bridges, "
        + ("every status true, nothing wrong" if final_ok else f"NOT converged: {final_wrong[:10]}"),
        f"load average before {' '.join(f'{x:.1f}' for x in load_before)}, after "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
    ]
    print("\n".join(lines))
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write(
                f"\n## Operator chaos: kill -9 of the leader ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                f"{platform.node()}, {os.cpu_count()} CPUs)\n\n"
                f"Command: `.venv/bin/python benchmarks/chaos_bench.py {' '.join(sys.argv[1:])}`\n\n"
                f"A kwok-only cluster of its own ({args.nodes} fake nodes); two replicas behind the chart's Lease, as "
                "the chart's ServiceAccount with its RBAC (namespaced mode).\n\n"
            )
            f.writelines(f"- {line}\n" for line in lines)
    return 0 if final_ok else 1


if __name__ == "__main__":
    sys.exit(main())

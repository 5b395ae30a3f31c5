"""Rollout figures on the local control plane (issue 5): how fast the health gate detects a bad bridge release and
restores the last-good revision, side by side with what Kubernetes alone does with the same image.

    hack/cluster.sh up
    .venv/bin/python benchmarks/rollout_bench.py [--runs 3] [--plain-window 60] [--no-record]

For each bad image (`broken`: crash loop; `pullfail`: ErrImagePull/ImagePullBackOff, see hack/cluster/stages/pod.yaml):
- operator: a 2-replica LighthouseBridge (defaults: crashLoopRestarts 3, progressDeadlineSeconds 600) is switched to
  the bad image. first signal = the first moment a pod of the new revision meets the failure criterion (read with the
  operator's own rollout.pod_signals, so the bench and the gate agree on what a signal is); detected = RolledBack=True
  on the LighthouseBridge; restored = no pod with the bad image left, the Deployment back on the old template with
  all replicas Ready. The lowest readyReplicas seen during the whole run is reported too.
- plain: a Deployment with the same rollout strategy (maxSurge 1, maxUnavailable 0) and progressDeadlineSeconds
  --plain-deadline. Kubernetes marks ProgressDeadlineExceeded and never rolls back: the figure is how long it stays
  degraded (bad pods present) within the observation window.

Observation is by polling every --interval seconds (the resolution of every figure). Everything runs in a fresh
namespace that is deleted at the end; the operator is a real subprocess scoped to it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _operator_harness import GROUP, OPERATOR, PLURAL, REPO, VERSION, OperatorBench, record, stop_on_sigterm

sys.path.insert(0, str(REPO / "operator"))
from lighthouse_operator import naming, rollout

GOOD = "localhost/lighthouse-bridge:0.1.0"
BAD = {"broken": "localhost/lighthouse-bridge:0.2.0-broken", "pullfail": "localhost/lighthouse-bridge:0.2.0-pullfail"}
REPLICAS = 2


@dataclass
class Run:
    kind: str
    signal_at: float | None = None
    detected_at: float | None = None
    restored_at: float | None = None
    min_ready: int | None = None
    k8s_flag_at: float | None = None  # plain: ProgressDeadlineExceeded
    degraded_until_end: bool = False

    def detect(self) -> float | None:
        return None if self.signal_at is None or self.detected_at is None else self.detected_at - self.signal_at

    def restore(self) -> float | None:
        return None if self.signal_at is None or self.restored_at is None else self.restored_at - self.signal_at


class Bench(OperatorBench):
    def __init__(self, args: argparse.Namespace):
        super().__init__("lh-rollout-bench", args.operator)
        self.args = args
        self.policy = rollout.Policy()

    # ---- observation

    def pods(self, selector: str) -> list[dict[str, Any]]:
        return self.core.api_client.sanitize_for_serialization(
            self.core.list_namespaced_pod(self.ns, label_selector=selector)
        )["items"]

    def deployment(self, name: str) -> dict[str, Any]:
        return self.apps.api_client.sanitize_for_serialization(self.apps.read_namespaced_deployment(name, self.ns))

    def lhb(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def bad_pods(self, pods: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
        return [p for p in pods if any(c.get("image") == image for c in p["spec"]["containers"])]

    def signalled(self, pods: list[dict[str, Any]], image: str) -> bool:
        return any(rollout.pod_signals(p, self.policy) for p in self.bad_pods(pods, image))

    def wait(self, what: str, fn: Any, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if v := fn():
                return v
            time.sleep(self.args.interval)
        raise TimeoutError(f"timed out waiting for {what}")

    # ---- cases

    def operator_case(self, kind: str, i: int) -> Run:
        name, image = f"{kind}-{i}", BAD[kind]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LighthouseBridge",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"image": GOOD, "replicas": REPLICAS, "deletionPolicy": "Delete"},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
        self.wait(f"{name} Ready", lambda: _ready(self.lhb(name)))
        dep_name, selector = naming.Names(name).bridge, naming.selector_string(name, naming.BRIDGE)
        run = Run("operator")
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name, {"spec": {"image": image}})
        deadline = time.monotonic() + self.args.timeout
        while time.monotonic() < deadline:
            now = time.monotonic()
            pods, dep, obj = self.pods(selector), self.deployment(dep_name), self.lhb(name)
            ready = (dep.get("status") or {}).get("readyReplicas") or 0
            run.min_ready = ready if run.min_ready is None else min(run.min_ready, ready)
            if run.signal_at is None and self.signalled(pods, image):
                run.signal_at = now
            if run.detected_at is None and _cond(obj, "RolledBack") == "True":
                run.detected_at = now
                # Signal and detection within one polling interval: the bad pod may be gone before a poll saw it.
                run.signal_at = now if run.signal_at is None else run.signal_at
            if (
                run.detected_at is not None
                and not self.bad_pods(pods, image)
                and ready >= REPLICAS
                and dep["spec"]["template"]["spec"]["containers"][0]["image"] == GOOD
            ):
                run.restored_at = now
                break
            time.sleep(self.args.interval)
        return run

    def plain_case(self, kind: str) -> Run:
        name, image = f"plain-{kind}", BAD[kind]
        labels = {"app": name}
        dep = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": labels},
                "progressDeadlineSeconds": self.args.plain_deadline,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "bridge", "image": GOOD}]},
                },
            },
        }
        self.apps.create_namespaced_deployment(self.ns, dep)
        self.wait(
            f"{name} available", lambda: (self.deployment(name).get("status") or {}).get("readyReplicas") == REPLICAS
        )
        run = Run("plain")
        self.apps.patch_namespaced_deployment(
            name, self.ns, {"spec": {"template": {"spec": {"containers": [{"name": "bridge", "image": image}]}}}}
        )
        end = time.monotonic() + self.args.plain_window
        pods: list[dict[str, Any]] = []
        while time.monotonic() < end:
            now = time.monotonic()
            pods, d = self.pods(f"app={name}"), self.deployment(name)
            ready = (d.get("status") or {}).get("readyReplicas") or 0
            run.min_ready = ready if run.min_ready is None else min(run.min_ready, ready)
            if run.signal_at is None and self.signalled(pods, image):
                run.signal_at = now
            if run.k8s_flag_at is None and any(
                c.get("reason") == "ProgressDeadlineExceeded" for c in (d.get("status") or {}).get("conditions") or []
            ):
                run.k8s_flag_at = now
            time.sleep(self.args.interval)
        run.degraded_until_end = bool(self.bad_pods(pods, image))
        return run


def _cond(obj: dict[str, Any], type_: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def _ready(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return st.get("observedGeneration") == obj["metadata"]["generation"] and _cond(obj, "Ready") == "True"


def fmt(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    missing = len(values) - len(got)
    out = f"median {statistics.median(got):.1f} s, max {max(got):.1f} s (n={len(got)})"
    return out + (f", {missing} run(s) never" if missing else "")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="operator runs per bad image (default 3)")
    p.add_argument("--interval", type=float, default=0.2, help="polling interval, seconds (default 0.2)")
    p.add_argument("--timeout", type=float, default=120, help="give up on one operator run after this (default 120)")
    p.add_argument(
        "--plain-deadline", type=int, default=30, help="progressDeadlineSeconds of the plain Deployment (default 30)"
    )
    p.add_argument("--plain-window", type=float, default=60, help="how long to watch the plain Deployment")
    p.add_argument("--operator", type=Path, default=OPERATOR)
    p.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = p.parse_args()

    stop_on_sigterm()
    b = Bench(args)
    b.setup()
    results: dict[str, list[Run]] = {}
    plain: dict[str, Run] = {}
    try:
        for kind in BAD:
            results[kind] = [b.operator_case(kind, i) for i in range(args.runs)]
            plain[kind] = b.plain_case(kind)
    finally:
        b.cleanup()

    lines = []
    for kind, runs in results.items():
        pl = plain[kind]
        lines += [
            f"{kind}, operator: first failing pod signal -> detected (RolledBack=True): "
            f"{fmt([r.detect() for r in runs])}",
            f"{kind}, operator: first failing pod signal -> restored (0 bad pods, old revision {REPLICAS}/{REPLICAS} "
            f"Ready): {fmt([r.restore() for r in runs])}; lowest readyReplicas seen: "
            f"{min(r.min_ready for r in runs if r.min_ready is not None)}",
            f"{kind}, plain Deployment (progressDeadlineSeconds {args.plain_deadline}): "
            + (
                f"ProgressDeadlineExceeded {pl.k8s_flag_at - pl.signal_at:.1f} s after the first signal"
                if pl.k8s_flag_at and pl.signal_at
                else "no ProgressDeadlineExceeded"
            )
            + f"; never rolled back: bad pods still present after the {args.plain_window:.0f} s window: "
            f"{'yes' if pl.degraded_until_end else 'no'}; lowest readyReplicas seen: {pl.min_ready}",
        ]
    print("\n".join(lines))
    if not args.no_record:
        record(
            "Rollout gate",
            "rollout_bench.py",
            f"Local control plane (kwok), operator as a subprocess, {REPLICAS} replicas, polled every "
            f"{args.interval} s (the resolution of these figures). Targets: detection <= 5 s, restore <= 15 s.",
            lines,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

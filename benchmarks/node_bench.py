"""The real node (issue 14): pod start, apply -> Ready of the sample LighthouseBridge, and a rollback on a real crash,
each beside the same thing on kwok's fake nodes in the same run (the baseline the other benchmarks use), plus the
memory of the node side.

    LIGHTHOUSE_CLUSTER_REAL_NODE=1 hack/cluster.sh up
    hack/images.sh all && hack/images.sh stores && hack/images.sh testing
    hack/node.sh import .state/images/{bridge,postgres,redis,exits}.tar
    .venv/bin/python benchmarks/node_bench.py [--pods 10] [--interval 0.2] [--no-record]

- pod start: --pods pods (the bridge image running `sleep`) created at once; created -> Running (a container started)
  and -> Ready, per pod (p50, max).
- sample: `spec: {}` with the operator's defaults as `make up` sets them; apply -> every pod Ready and the
  LighthouseBridge Ready.
- rollback: the Ready sample is switched to an image whose process exits at start (real node) or to kwok's `broken`
  tag (fake nodes), crashLoopRestarts 2. first failing signal = the first time a pod of the new revision is seen
  terminated or in CrashLoopBackOff; rollback decided = RolledBack=True on the LighthouseBridge; old template
  restored = the Deployment's template back on the last-good revision; all Ready = no pod of the new revision left
  and every replica Ready. Times are from the apply of the bad spec.
- node side RSS: kubelet, kube-proxy, containerd and its shims, CoreDNS, the device plugin, the forwarders and the
  supervisors, summed from /proc (with the bench's pods gone).

Observation is by polling every --interval seconds (the resolution of every figure).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _operator_harness import OperatorBench, record, sh, stop_on_sigterm

NODE = "lighthouse-node"
FUSE_RESOURCE = "lighthouse.dev/fuse"


def ref(name: str) -> str:
    return sh("hack/images.sh", "ref", name).stdout.strip()


def operator_args() -> list[str]:
    """What `make up` gives the chart-installed operator (hack/up.sh)."""
    return [
        f"--default-bridge-image={ref('bridge')}",
        f"--default-postgres-image={ref('postgres')}",
        f"--default-redis-image={ref('redis')}",
        "--default-fuse-mode=devicePlugin",
        f"--default-fuse-device-plugin-resource={FUSE_RESOURCE}",
        "--resync-seconds=3",
    ]


def ready(obj: dict[str, Any]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def cond(obj: dict[str, Any], type_: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def pct(values: list[float]) -> str:
    values = sorted(values)
    return f"p50 {statistics.median(values):.2f} s, max {values[-1]:.2f} s"


def pod_start(b: OperatorBench, n: int, interval: float) -> dict[str, list[float]]:
    image = ref("bridge")
    t0 = time.monotonic()
    for i in range(n):
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"start-{i}", "labels": {"bench": "start"}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "c",
                        "image": image,
                        "command": ["sleep", "3600"],
                        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
                    }
                ],
            },
        }
        b.k("apply", "-n", b.ns, "-f", "-", input=json.dumps(pod))
    running: dict[str, float] = {}
    readies: dict[str, float] = {}
    deadline = t0 + 300
    while len(readies) < n and time.monotonic() < deadline:
        now = time.monotonic() - t0
        for p in json.loads(b.k("get", "pods", "-n", b.ns, "-l", "bench=start", "-o", "json"))["items"]:
            name = p["metadata"]["name"]
            st = (p["status"].get("containerStatuses") or [{}])[0]
            if "running" in st.get("state", {}) and name not in running:
                running[name] = now
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []):
                readies.setdefault(name, now)
        time.sleep(interval)
    b.k("delete", "pods", "-n", b.ns, "-l", "bench=start", "--wait=true", "--timeout=120s")
    if len(readies) < n:
        sys.exit(f"only {len(readies)} of {n} pods became Ready in {b.ns}")
    return {"running": list(running.values()), "ready": list(readies.values())}


def lhb(b: OperatorBench) -> dict[str, Any]:
    return json.loads(b.k("get", "lhb", "demo", "-n", b.ns, "-o", "json"))


def apply_lhb(b: OperatorBench, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "lighthouse.dev/v1alpha1", "kind": "LighthouseBridge", "metadata": {"name": "demo"}}
    b.k(
        "apply",
        "--server-side",
        "--field-manager=bench",
        "-n",
        b.ns,
        "-f",
        "-",
        input=json.dumps({**body, "spec": spec}),
    )


def sample(b: OperatorBench, spec: dict[str, Any], interval: float) -> dict[str, float]:
    t0 = time.monotonic()
    apply_lhb(b, spec)
    seen: dict[str, float] = {}
    while "lighthousebridge" not in seen:
        if time.monotonic() - t0 > 600:
            sys.exit(f"the sample did not become Ready in {b.ns}")
        now = time.monotonic() - t0
        for p in json.loads(b.k("get", "pods", "-n", b.ns, "-l", "app.kubernetes.io/instance=demo", "-o", "json"))[
            "items"
        ]:
            component = p["metadata"]["labels"].get("app.kubernetes.io/component", "?")
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []):
                seen.setdefault(component, now)
        if ready(lhb(b)):
            seen["lighthousebridge"] = now
        time.sleep(interval)
    return seen


def rollback(b: OperatorBench, spec: dict[str, Any], bad_image: str, interval: float) -> dict[str, float]:
    good = lhb(b)["status"]["revisions"]["lastGood"]
    t0 = time.monotonic()
    apply_lhb(b, {**spec, "image": bad_image})
    marks: dict[str, float] = {}
    while "all ready" not in marks:
        now = time.monotonic() - t0
        if now > 600:
            sys.exit(f"no rollback within 600 s in {b.ns}: {marks}")
        pods = json.loads(b.k("get", "pods", "-n", b.ns, "-l", "app.kubernetes.io/component=bridge", "-o", "json"))
        bad = [p for p in pods["items"] if p["spec"]["containers"][0]["image"] == bad_image]
        for p in bad:
            st = (p["status"].get("containerStatuses") or [{}])[0]
            waiting = st.get("state", {}).get("waiting", {}).get("reason")
            if (
                "terminated" in st.get("lastState", {})
                or "terminated" in st.get("state", {})
                or waiting == "CrashLoopBackOff"
            ):
                marks.setdefault("first failing signal", now)
        if cond(lhb(b), "RolledBack") == "True":
            marks.setdefault("rollback decided", now)
        dep = json.loads(b.k("get", "deployment", "demo-bridge", "-n", b.ns, "-o", "json"))
        if (
            "rollback decided" in marks
            and dep["spec"]["template"]["metadata"]["annotations"].get("lighthouse.dev/revision") == good
        ):
            marks.setdefault("old template restored", now)
            st = dep.get("status") or {}
            if not bad and st.get("readyReplicas") == dep["spec"]["replicas"] == st.get("updatedReplicas"):
                marks["all ready"] = now
        time.sleep(interval)
    return marks


def node_rss_mib() -> tuple[float, dict[str, float]]:
    """RSS of every process of the node side (the supervisors' marker, containerd's shims, pods' processes)."""
    by_name: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
            cgroup = (proc / "cgroup").read_text()
        except OSError:
            continue
        if b"LIGHTHOUSE_NODE_DAEMON=1" not in environ and "/kubepods" not in cgroup:
            continue
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0) / 1024
        name = Path(cmd[0].decode(errors="replace")).name or "?"
        by_name[name] = by_name.get(name, 0) + rss
    return sum(by_name.values()), by_name


def run_on(fake: bool, args: argparse.Namespace) -> dict[str, Any]:
    b = OperatorBench("bench-node" if not fake else "bench-kwok", fake_nodes=fake, extra_args=operator_args())
    out: dict[str, Any] = {}
    try:
        b.setup()
        out["start"] = pod_start(b, args.pods, args.interval)
        spec = {"rollout": {"crashLoopRestarts": 2}}
        out["sample"] = sample(b, spec, args.interval)
        bad = ref("exits") if not fake else "localhost/lighthouse-bridge:0.2.0-broken"
        out["rollback"] = rollback(b, spec, bad, args.interval)
    finally:
        b.cleanup("120s")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pods", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args()
    stop_on_sigterm()
    nodes = subprocess.run([*OperatorBench("x").kubectl, "get", "node", NODE], capture_output=True, check=False)
    if nodes.returncode != 0:
        sys.exit("no real node: start the cluster with LIGHTHOUSE_CLUSTER_REAL_NODE=1 hack/cluster.sh up")
    real = run_on(False, args)
    kwok = run_on(True, args)
    total, parts = node_rss_mib()
    lines = []
    for what in ("running", "ready"):
        r, k = real["start"][what], kwok["start"][what]
        lines.append(
            f"pod start, {args.pods} pods at once, created -> {what}: real node {pct(r)}; kwok {pct(k)} "
            f"(real/kwok p50 {statistics.median(r) / max(statistics.median(k), 1e-3):.1f}x)"
        )
    for component in ("postgres", "redis", "bridge", "lighthousebridge"):
        r, k = real["sample"].get(component), kwok["sample"].get(component)
        lines.append(
            f"sample apply -> {component} Ready: real node {r:.1f} s; kwok {k:.1f} s "
            f"(real/kwok {r / max(k, 1e-3):.1f}x)"
        )
    for mark in ("first failing signal", "rollback decided", "old template restored", "all ready"):
        r, k = real["rollback"][mark], kwok["rollback"][mark]
        lines.append(f"rollback on a crash, apply -> {mark}: real node {r:.1f} s; kwok `broken` {k:.1f} s")
    top = ", ".join(f"{n} {v:.0f}" for n, v in sorted(parts.items(), key=lambda kv: -kv[1])[:8])
    lines.append(f"node side RSS (no bench pods): {total:.0f} MiB ({top})")
    for line in lines:
        print(line)
    if not args.no_record:
        record(
            "Real node",
            "node_bench.py",
            f"Polling resolution {args.interval} s. Real node: containerd 1.6 + kubelet 1.35 on 2 shared cores; "
            "images already imported. Rollback: crashLoopRestarts 2; the kubelet's back-off (10 s, 20 s) sets the "
            "pace.",
            lines,
        )


if __name__ == "__main__":
    main()

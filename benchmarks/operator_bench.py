"""Operator figures on the local control plane (issue 3): apply -> all children exist, apply -> Ready, operator RSS
idle and with many LighthouseBridges, and the operator's write requests while nothing changes, counted from the
API server's audit log (and cross-checked with the operator's own request counter).

    hack/cluster.sh up
    .venv/bin/python benchmarks/operator_bench.py [--crs 20] [--scale-crs 100] [--idle-seconds 600] [--no-record]

Everything runs in a fresh namespace that is deleted at the end; the operator is a real subprocess scoped to it.
The figures are printed and appended to benchmarks/RESULTS.md with the command line that produced them.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _operator_harness import GROUP, OPERATOR, PLURAL, VERSION, OperatorBench, record, stop_on_sigterm

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


class Bench(OperatorBench):
    def __init__(self, args: argparse.Namespace):
        super().__init__("lh-bench", args.operator)
        self.args = args

    # ---- plumbing

    def rss_mib(self) -> float:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def operator_writes(self) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("lighthouse_operator_api_requests_total")
            and re.search(r'verb="(POST|PUT|PATCH|DELETE)"', line)
        )

    def create(self, name: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "LighthouseBridge",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"deletionPolicy": "Delete"},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    @staticmethod
    def ready(obj: dict[str, Any]) -> bool:
        st = obj.get("status") or {}
        return st.get("observedGeneration") == obj["metadata"]["generation"] and any(
            c["type"] == "Ready" and c["status"] == "True" for c in st.get("conditions") or []
        )

    def deployment_exists(self, name: str) -> bool:
        from kubernetes.client import ApiException

        try:
            self.apps.read_namespaced_deployment(f"{name}-bridge", self.ns)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise

    # ---- measurements

    def latency(self, n: int, ready_timeout: float) -> tuple[list[float], list[float], int]:
        children, ready, not_ready = [], [], 0
        for i in range(n):
            name = f"lat-{i:03d}"
            t0 = time.monotonic()
            self.create(name)
            # The Deployment is applied last of the children every spec has (Secrets, ConfigMap, Services,
            # StatefulSets come first), so its appearance marks "all children exist".
            while not self.deployment_exists(name):
                if time.monotonic() - t0 > 60:
                    sys.exit(f"{name}: children did not appear within 60 s; see {self.log}")
                time.sleep(0.01)
            children.append(time.monotonic() - t0)
            while not self.ready(self.get(name)):
                if time.monotonic() - t0 > ready_timeout:
                    not_ready += 1
                    break
                time.sleep(0.05)
            else:
                ready.append(time.monotonic() - t0)
        return children, ready, not_ready

    def fill(self, total: int, timeout: float = 600) -> None:
        existing = len(self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)["items"])
        for i in range(existing, total):
            self.create(f"fill-{i:03d}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL)["items"]
            seen = [
                o for o in items if (o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"]
            ]
            if len(seen) >= total:
                return
            time.sleep(1)
        sys.exit(f"only {len(seen)}/{total} LighthouseBridges were reconciled within {timeout} s")

    def audit_writes_since(self, offset: int) -> tuple[int, int, dict[str, int]]:
        """(new offset, count, by verb) of the operator's write requests in our namespace after `offset`.
        kopf's own requests (finalizer, deletion) count too: both user agents are the operator."""
        count, by_verb = 0, {}
        if not self.audit_log.exists():
            return offset, 0, {}
        with self.audit_log.open() as f:
            f.seek(offset)
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                ref = ev.get("objectRef") or {}
                if (
                    ev.get("verb") in WRITE_VERBS
                    and ref.get("namespace") == self.ns
                    and ev.get("userAgent", "").startswith(("lighthouse-operator", "kopf"))
                ):
                    count += 1
                    key = f"{ev['verb']} {ref.get('resource')}"
                    by_verb[key] = by_verb.get(key, 0) + 1
            return f.tell(), count, by_verb

    def settle(self, quiet_seconds: float = 30, timeout: float = 900) -> None:
        """Wait until the operator (its counter and the audit log) has made no write for `quiet_seconds`."""
        deadline = time.monotonic() + timeout
        offset = self.audit_log.stat().st_size if self.audit_log.exists() else 0
        last, since = self.operator_writes(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(2)
            now = self.operator_writes()
            offset, n, _ = self.audit_writes_since(offset)
            if now != last or n:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_seconds:
                return
        print(f"warning: the operator still wrote after {timeout} s", file=sys.stderr)

    def idle_writes(self, seconds: float) -> tuple[int, float, dict[str, int]]:
        """Writes by the operator during `seconds` of nobody changing anything: (audit count, metric count)."""
        start = self.audit_log.stat().st_size if self.audit_log.exists() else 0
        before = self.operator_writes()
        time.sleep(seconds)
        after = self.operator_writes()
        _, count, by_verb = self.audit_writes_since(start)
        return count, after - before, by_verb

    def cleanup(self) -> None:
        super().cleanup(timeout="300s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crs", type=int, default=20, help="LighthouseBridges for the latency figures (default 20)")
    p.add_argument("--scale-crs", type=int, default=100, help="LighthouseBridges for RSS and idle writes")
    p.add_argument("--idle-seconds", type=float, default=600, help="idle window for the write count (default 600)")
    p.add_argument("--ready-timeout", type=float, default=120)
    p.add_argument(
        "--operator",
        type=Path,
        default=OPERATOR,
        help="the lighthouse-operator to run, e.g. from a virtualenv with only the operator extra "
        "(as in the image): python -m venv V && V/bin/pip install -e '.[operator]'",
    )
    p.add_argument("--rss-only", action="store_true", help="only the idle RSS (no bridges)")
    p.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = p.parse_args()

    stop_on_sigterm()
    b = Bench(args)
    b.setup()
    try:
        time.sleep(5)
        rss_idle = b.rss_mib()
        if args.rss_only:
            line = f"operator RSS idle (0 bridges, {args.operator}): {rss_idle:.1f} MiB"
            print(line)
            if not args.no_record:
                record_core([line])
            return 0
        children, ready, not_ready = b.latency(args.crs, args.ready_timeout)
        b.fill(args.scale_crs)
        b.settle()
        rss_full = b.rss_mib()
        audit_writes, metric_writes, by_verb = b.idle_writes(args.idle_seconds)
    finally:
        b.cleanup()

    lines = [
        f"apply -> all children exist (n={len(children)}): p50 {statistics.median(children) * 1000:.0f} ms, "
        f"p95 {pct(children, 95) * 1000:.0f} ms, max {max(children) * 1000:.0f} ms",
        (
            f"apply -> Ready (n={len(ready)}): p50 {statistics.median(ready):.2f} s, p95 {pct(ready, 95):.2f} s"
            if ready
            else "apply -> Ready: none became Ready"
        )
        + (f"; {not_ready} not Ready within {args.ready_timeout:.0f} s" if not_ready else ""),
        f"operator RSS: idle (0 bridges) {rss_idle:.1f} MiB; with {args.scale_crs} bridges {rss_full:.1f} MiB",
        f"operator write requests in {args.idle_seconds:.0f} idle s with {args.scale_crs} bridges: "
        f"{audit_writes} in the audit log, {metric_writes:.0f} by the operator's counter"
        + (f" ({by_verb})" if by_verb else ""),
    ]
    print("\n".join(lines))
    if not args.no_record:
        record_core(lines)
    return 0


def record_core(lines: list[str]) -> None:
    record(
        "Operator core",
        "operator_bench.py",
        "Local control plane (kwok nodes, all on this machine), the operator as a subprocess.",
        lines,
    )


if __name__ == "__main__":
    sys.exit(main())

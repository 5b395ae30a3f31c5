"""The operator at scale (issue 17): N LighthouseBridges on a kwok-only cluster of its own, two operator replicas
behind the chart's Lease, running as the chart's ServiceAccount with exactly the chart's RBAC (namespaced mode).

    .venv/bin/python benchmarks/scale_bench.py --crs 100 --crs 1000 [--idle-seconds 120] [--memory-report] [--no-record]

The cluster lives in .state/bench-scale on port $LIGHTHOUSE_CLUSTER_PORT + 1 (default 26444) with --nodes fake nodes
(1,000 pods each) and is deleted at the end (--keep-cluster keeps it). For each size, in a fresh namespace with
fresh replicas:
- apply -> all children: from a bridge's create to its Deployment (the last child applied) existing, p50/p95;
- apply -> Ready p50/p95, and the time from the first create until every bridge is Ready at its generation, with the
  CPU seconds each process of the cluster (and the operator) spent meanwhile: what bounds it;
- the leader's RSS: its peak while applying, and idle; the standby's;
- while idle (--idle-seconds): every request of the operator's ServiceAccount in the API server's audit log, per
  minute, by verb and resource (the cluster audits every request of a ServiceAccount), and the replicas' own counters;
- kill -9 of the leader: the time until the standby leads, and until it has reconciled every bridge again, with the
  writes it made meanwhile (from the audit log: requests received after the kill);
- with --memory-report, after the idle window: each replica's own account of its memory (SIGUSR2 to
  lighthouse_operator/memory.py): CPython's and glibc's heaps, the watch cache's bytes, the objects by type.
Figures go to benchmarks/RESULTS.md with this command line and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _scale_harness import (
    REPO,
    STATE,
    BenchCluster,
    Replica,
    bridge,
    cpu_of,
    operator_venv,
    pct,
    ready,
    run_id,
    writes_besides_lease,
)

RESULTS = REPO / "benchmarks" / "RESULTS.md"
SETTLE_QUIET = 30.0


class Observer:
    """Watches (official client, admin credentials) what the figures need: when each bridge's Deployment first
    exists and when each bridge first is Ready at its generation."""

    def __init__(self, cluster: BenchCluster, namespace: str):
        from kubernetes import client, config, watch

        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        self.apps, self.custom, self.core = client.AppsV1Api(api), client.CustomObjectsApi(api), client.CoreV1Api(api)
        self.ns, self.watch = namespace, watch
        self.deployed: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}
        self.stop = threading.Event()
        for target in (self._deployments, self._bridges):
            threading.Thread(target=target, daemon=True).start()

    def _loop(self, lister: Any, handle: Any, **kw: Any) -> None:
        while not self.stop.is_set():
            try:
                for ev in self.watch.Watch().stream(lister, self.ns, timeout_seconds=60, **kw):
                    handle(ev["object"])
                    if self.stop.is_set():
                        return
            except Exception:  # reconnect
                time.sleep(1)

    def _deployments(self) -> None:
        def handle(obj: Any) -> None:
            name = obj.metadata.name
            if name.endswith("-bridge"):
                self.deployed.setdefault(name[: -len("-bridge")], time.monotonic())

        self._loop(self.apps.list_namespaced_deployment, handle)

    def _bridges(self) -> None:
        def lister(namespace: str, **kw: Any) -> Any:
            return self.custom.list_namespaced_custom_object("lighthouse.dev", "v1alpha1", namespace,
                                                             "lighthousebridges", **kw)  # fmt: skip

        def handle(obj: dict[str, Any]) -> None:
            if ready(obj):
                self.ready_at.setdefault(obj["metadata"]["name"], time.monotonic())

        self._loop(lister, handle)


def wait(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(interval)
    return time.monotonic() - t0


def memory_report(n: int, replicas: dict[str, Replica]) -> list[str]:
    """SIGUSR2 to each replica (lighthouse_operator/memory.py), after the idle window: what holds its RSS."""
    lines = []
    for role, r in replicas.items():
        path = Path(r.env["LIGHTHOUSE_OPERATOR_MEMORY_DUMP"])
        path.unlink(missing_ok=True)
        assert r.proc is not None
        r.proc.send_signal(signal.SIGUSR2)
        try:
            wait(path.exists, 60, f"the {role}'s memory report")
        except TimeoutError as e:
            lines.append(f"n={n}: {e}")
            continue
        m = json.loads(path.read_text())
        mib = 2**20
        cache, heap, small = m["cache"], m["malloc"], m["pymalloc"]
        top = ", ".join(f"{g['type'].removeprefix('builtins.')} {g['count']} ({g['bytes'] / mib:.1f} MiB)"
                        for g in m["gc"][:6])  # fmt: skip
        lines.append(
            f"n={n}: {role} memory report ({path.name}): RSS {m['rss'].get('VmRSS', 0) / mib:.1f} MiB (peak "
            f"{m['rss'].get('VmHWM', 0) / mib:.1f}); CPython's small-object arenas: {small.get('arenas', 0)} "
            f"(1 MiB each), live objects in them {small.get('allocated', 0) / mib:.1f} MiB; glibc heap "
            f"{heap.get('heap', 0) / mib:.1f} MiB ({heap.get('free', 0) / mib:.1f} free), mmapped "
            f"{heap.get('mmapped', 0) / mib:.1f} MiB; watch cache "
            f"{sum(c['objects'] for c in cache.values())} objects, "
            f"{sum(c['blob_bytes'] for c in cache.values()) / mib:.1f} MiB of compressed JSON; "
            f"largest gc-tracked types: {top}"
        )
    return lines


def phase(cluster: BenchCluster, exe: Path, n: int, args: argparse.Namespace) -> list[str]:
    ns = f"scale-{n}-{run_id()}"
    kubeconfig = cluster.install(ns)
    logs = STATE / "bench" / "scale"
    logs.mkdir(parents=True, exist_ok=True)
    replicas = [Replica(exe, kubeconfig, ns, logs / f"{ns}-{name}.log", name) for name in ("a", "b")]
    if args.memory_report:
        for r in replicas:
            r.env["LIGHTHOUSE_OPERATOR_MEMORY_DUMP"] = str(logs / f"{ns}-{r.name}-memory.json")
    user = f"system:serviceaccount:{ns}:bench-lighthouse-operator"
    lines: list[str] = []
    try:
        replicas[0].start()
        wait(lambda: replicas[0].role() == "leader", 60, "the first replica leading")
        replicas[1].start()
        obs = Observer(cluster, ns)
        time.sleep(2)

        # ---- apply
        lead = replicas[0]
        peak = [lead.rss_mib()]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                try:
                    peak[0] = max(peak[0], lead.rss_mib())
                except Exception:
                    pass
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        load_before = os.getloadavg()
        cpu0, op_cpu0 = cpu_of(cluster.pids()), lead.cpu_seconds()
        created: dict[str, float] = {}
        names = [f"b{i:04d}" for i in range(n)]

        def create(name: str) -> None:
            created[name] = time.monotonic()
            obs.custom.create_namespaced_custom_object("lighthouse.dev", "v1alpha1", ns, "lighthousebridges",
                                                       bridge(name, ns))  # fmt: skip

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, names))
        creates = time.monotonic() - t0
        try:
            wait(lambda: len(obs.ready_at) >= n, args.ready_timeout, f"all {n} Ready", interval=1)
        except TimeoutError as e:
            lines.append(f"n={n}: {e}: {len(obs.ready_at)} Ready, {len(obs.deployed)} with children")
        all_ready = max(obs.ready_at.values(), default=t0) - t0
        if not lead.alive():  # it lost its Lease and exited; the other replica leads, the dead one comes back
            first, lead = lead, next(r for r in replicas if r is not lead)
            op_cpu0 = 0.0  # the new leader's CPU since it started (the first one's is gone with it)
            code = first.proc.returncode if first.proc else "?"
            lines.append(
                f"n={n}: the first leader EXITED while applying (exit code {code}, see {first.log}); the standby led "
                "from then on, and the leader figures below are its own"
            )
            first.start()
        cpu1, op_cpu1 = cpu_of(cluster.pids()), lead.cpu_seconds()
        sampling.set()
        children = [obs.deployed[b] - created[b] for b in names if b in obs.deployed]
        to_ready = [obs.ready_at[b] - created[b] for b in names if b in obs.ready_at]
        wall = max(all_ready, 1e-9)
        cpu = {k: cpu1.get(k, 0) - v for k, v in cpu0.items()}
        cpu["lighthouse-operator (leader)"] = op_cpu1 - op_cpu0
        lines += [
            f"n={n}: apply -> all children (its Deployment exists): p50 {statistics.median(children):.1f} s, "
            f"p95 {pct(children, 95):.1f} s (creating the {n} LighthouseBridges took {creates:.1f} s, 8 clients)",
            f"n={n}: apply -> Ready: p50 {statistics.median(to_ready):.1f} s, p95 {pct(to_ready, 95):.1f} s; "
            f"all {len(to_ready)} Ready {all_ready:.0f} s after the first create",
            f"n={n}: CPU while applying ({wall:.0f} s wall, 2 cores = {2 * wall:.0f} CPU-s): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])),
        ]

        # ---- idle
        def quiet_since(offset: int) -> tuple[int, bool]:
            offset, events = cluster.audit(offset, user)
            return offset, not writes_besides_lease(events)

        offset, calm = cluster.audit_offset(), time.monotonic()
        deadline = time.monotonic() + 900
        while time.monotonic() - calm < SETTLE_QUIET and time.monotonic() < deadline:
            time.sleep(2)
            offset, quiet = quiet_since(offset)
            if not quiet:
                calm = time.monotonic()
        other = next(r for r in replicas if r is not lead)
        rss_idle, standby_rss = lead.rss_mib(), other.rss_mib()
        start = cluster.audit_offset()
        counters0 = [r.metrics() for r in (lead, other)]
        time.sleep(args.idle_seconds)
        _, events = cluster.audit(start, user)
        counters1 = [r.metrics() for r in (lead, other)]
        per_minute = 60 / args.idle_seconds
        by: dict[str, int] = {}
        for e in events:
            key = f"{e['verb']} {(e.get('objectRef') or {}).get('resource')}"
            by[key] = by.get(key, 0) + 1
        lease = sum(v for k, v in by.items() if k.endswith(" leases"))
        other_writes = sum(writes_besides_lease(events).values())

        def delta(i: int, verb: str) -> float:
            key = "lighthouse_operator_api_requests_total"
            return sum(v - counters0[i].get(k, 0) for k, v in counters1[i].items() if k.startswith(key) and
                       f'verb="{verb}"' in k)  # fmt: skip

        client = {
            role: {verb: delta(i, verb) for verb in ("GET", "LIST", "WATCH", "PATCH", "POST", "PUT", "DELETE")}
            for i, role in enumerate(("leader", "standby"))
        }
        lines += [
            f"n={n}: leader RSS: peak {peak[0]:.1f} MiB while applying, {rss_idle:.1f} MiB idle; standby "
            f"{standby_rss:.1f} MiB",
            f"n={n}: idle {args.idle_seconds:.0f} s, every request of the operator's ServiceAccount (audit log): "
            f"{len(events) * per_minute:.1f} per minute, of which Lease {lease * per_minute:.1f}; writes besides the "
            f"Lease: {other_writes}; by verb: {dict(sorted(by.items()))}",
            f"n={n}: idle, the replicas' own request counters: "
            + "; ".join(f"{role} {', '.join(f'{k} {v:.0f}' for k, v in c.items() if v)}" for role, c in client.items()),
        ]

        if args.memory_report:
            lines += memory_report(n, {"leader": lead, "standby": other})

        # ---- kill -9 of the leader
        standby = other
        kill_offset, kill_wall = cluster.audit_offset(), time.time()
        t_kill = time.monotonic()
        lead.kill(signal.SIGKILL)
        takeover = wait(lambda: standby.role() == "leader", 120, "the standby leading")

        def caught_up() -> bool:
            m = standby.metrics()
            passes = sum(v for k, v in m.items() if k.startswith("lighthouse_operator_reconciles_total"))
            return (
                m.get("lighthouse_operator_managed_bridges", 0) >= n
                and m.get("lighthouse_operator_queue_depth", 1) == 0
                and passes >= n
            )

        try:
            wait(lambda: caught_up() or not standby.alive(), 600, "every bridge reconciled again", interval=0.5)
        except TimeoutError as e:
            lines.append(f"n={n}: kill -9 of the leader: the standby leads after {takeover:.1f} s; {e}")
        if not standby.alive():  # it gave up the Lease (its log says why): the figures below would be its corpse's
            lines.append(
                f"n={n}: kill -9 of the leader: the standby leads after {takeover:.1f} s, then EXITED after "
                f"{time.monotonic() - t_kill:.1f} s (exit code {standby.proc.returncode if standby.proc else '?'}; "
                f"see {standby.log})"
            )
        elif caught_up():
            again = time.monotonic() - t_kill
            # Received after the kill: none of the old leader's requests then in flight counts.
            writes = writes_besides_lease(cluster.audit(kill_offset, user)[1], since=kill_wall)
            lines.append(
                f"n={n}: kill -9 of the leader: the standby leads after {takeover:.1f} s; every bridge reconciled "
                f"again {again:.1f} s after the kill; writes meanwhile besides the Lease (audit log): "
                f"{sum(writes.values())} {dict(sorted(writes.items()))}"
            )
        lines.append(
            f"n={n}: load average before applying {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}, "
            f"at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        obs.stop.set()
    finally:
        for r in replicas:
            r.kill(signal.SIGTERM)
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--crs", type=int, action="append", help="LighthouseBridges per size (repeatable; 100 and 1000)")
    p.add_argument("--idle-seconds", type=float, default=120)
    p.add_argument("--ready-timeout", type=float, default=1200)
    p.add_argument("--nodes", type=int, default=8, help="fake nodes, 1,000 pods each (default 8)")
    p.add_argument("--port", type=int, default=int(os.environ.get("LIGHTHOUSE_CLUSTER_PORT", "26443")) + 1)
    p.add_argument("--keep-cluster", action="store_true")
    p.add_argument("--no-record", action="store_true")
    p.add_argument(
        "--memory-report", action="store_true", help="each replica's memory report after the idle window (memory.py)"
    )
    args = p.parse_args()
    sizes = args.crs or [100, 1000]
    exe = operator_venv()
    cluster = BenchCluster("bench-scale", args.port, args.nodes)
    cluster.up()
    lines: list[str] = []
    try:
        for n in sizes:
            lines += phase(cluster, exe, n, args)
            print("\n".join(lines), flush=True)
    finally:
        if not args.keep_cluster:
            cluster.down()
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write(
                f"\n## Operator at scale, with a standby ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                f"{platform.node()}, {os.cpu_count()} CPUs)\n\n"
                f"Command: `.venv/bin/python benchmarks/scale_bench.py {' '.join(sys.argv[1:])}`\n\n"
                f"A kwok-only cluster of its own ({args.nodes} fake nodes), two operator replicas behind the chart's "
                "Lease, as the chart's ServiceAccount with the chart's RBAC (namespaced mode), --resync-seconds 30.\n\n"
            )
            f.writelines(f"- {line}\n" for line in lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

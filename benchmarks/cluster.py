"""Local control plane figures: build times, `make cluster-up` to Ready nodes, and the cluster's memory.

    .venv/bin/python benchmarks/cluster.py [--shared] [--settle SECONDS]

By default the cluster under test is a separate one (its own workdir under .state/bench-kwok and apiserver port
26543), so the benchmark never stops the cluster other sessions use; --shared measures the default cluster
(.state/kwok, port 26443) instead, stopping it first. Figures are printed and appended to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
STATE = Path(os.environ.get("LIGHTHOUSE_STATE", REPO / ".state"))


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    """Runs a command to completion and returns its wall time in seconds."""
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def cold_build_seconds() -> tuple[float | None, str]:
    """The `time` line at the end of the cold build log, and where it came from."""
    log = STATE / "logs" / "cold-build.log"
    if not log.is_file():
        return None, "no .state/logs/cold-build.log"
    m = re.search(r"^real\s+(\d+)m([\d.]+)s", log.read_text(), re.MULTILINE)
    if not m:
        return None, f"no `real` line in {log}"
    return int(m.group(1)) * 60 + float(m.group(2)), str(log.relative_to(REPO))


def cluster_processes(cluster_dir: Path) -> dict[str, psutil.Process]:
    procs = {}
    for pid_file in sorted((cluster_dir / "pids").glob("*.pid")):
        try:
            procs[pid_file.stem] = psutil.Process(int(pid_file.read_text().strip()))
        except (ValueError, psutil.NoSuchProcess):
            continue
    return procs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", action="store_true", help="measure the default cluster (stops it first)")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds to wait before reading memory")
    args = parser.parse_args()

    env = dict(os.environ)
    if not args.shared:
        env["LIGHTHOUSE_CLUSTER_WORKDIR"] = str(STATE / "bench-kwok")
        env["LIGHTHOUSE_CLUSTER_PORT"] = "26543"
    workdir = Path(env.get("LIGHTHOUSE_CLUSTER_WORKDIR", STATE / "kwok"))
    cluster_dir = workdir / "clusters" / "lighthouse"
    overrides = " ".join(
        f"{k}={shlex.quote(env[k])}"
        for k in ("LIGHTHOUSE_CLUSTER_WORKDIR", "LIGHTHOUSE_CLUSTER_PORT")
        if k in env and env[k] != os.environ.get(k)
    )

    cold, cold_src = cold_build_seconds()
    warm = run(["hack/build-tools.sh"])

    run(["hack/cluster.sh", "down"], env=env)
    try:
        # `make cluster-up` returns once the fake nodes are Ready (and the default StorageClass is installed).
        up = run(["make", "--no-print-directory", "cluster-up"], env=env)
        kubeconfig = str(cluster_dir / "kubeconfig.yaml")
        kubectl = subprocess.run(
            ["bash", "-c", 'source hack/lib/common.sh && echo "$(tools_dir)/bin/kubectl"'],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        nodes = subprocess.run(
            [kubectl, "--kubeconfig", kubeconfig, "get", "nodes", "--no-headers"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ready_nodes = sum(1 for line in nodes.splitlines() if " Ready " in f" {line} ")
        time.sleep(args.settle)
        procs = cluster_processes(cluster_dir)
        rss = {name: p.memory_info().rss for name, p in procs.items()}
    finally:
        if not args.shared:
            run(["hack/cluster.sh", "down"], env=env)

    mib = {name: v / 2**20 for name, v in rss.items()}
    total = sum(mib.values())
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count()
    lines = [
        f"## Local control plane ({when}, {cores} CPU cores shared)",
        "",
        f"Command: `.venv/bin/python benchmarks/cluster.py{' --shared' if args.shared else ''}`",
        "",
        "| figure | value | how |",
        "| --- | --- | --- |",
        (
            f"| cold build of the control plane | {cold:.0f} s | `time hack/build-tools.sh` from an empty tools "
            f"cache, read from {cold_src} |"
            if cold is not None
            else f"| cold build of the control plane | n/a | {cold_src} |"
        ),
        f"| warm `hack/build-tools.sh` | {warm:.2f} s | cache hit, binaries already built |",
        f"| `make cluster-up` to Ready nodes | {up:.1f} s | `hack/cluster.sh down`, then "
        f"`{(overrides + ' ') if overrides else ''}make cluster-up` (returns when {ready_nodes} nodes are Ready) |",
        f"| cluster memory (RSS sum) | {total:.0f} MiB | {len(mib)} processes, {args.settle:g} s after up, idle |",
        "",
        "RSS per process: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sorted(mib.items(), key=lambda kv: -kv[1])),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nFigures appended by the scripts in benchmarks/.\n\n")
    with RESULTS.open("a") as fh:
        fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

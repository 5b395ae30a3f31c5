"""Image figures (issue 9): the size of each image and of its OCI archive, and the idle resident memory of the
operator container (and of the bridge container, API only) running against the local servers.

    .venv/bin/python benchmarks/images.py [--settle-seconds 20] [--samples 10] [--no-record]

Images come from hack/images.sh (cached). Containers run with podman + runc on the host network (everything binds
127.0.0.1). RSS is the sum over the container's processes, read from the host's /proc through psutil, sampled once
a second after the container has settled; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bridge import append_results, free_port, fresh_database, services_env

REPO = Path(__file__).resolve().parents[1]
RUN_FLAGS = ["--runtime", "/usr/sbin/runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]
BASE = "localhost/lighthouse-base:bookworm"
MIB = 1024 * 1024


def sh(*args: str, check: bool = True, timeout: float = 1800) -> str:
    return subprocess.run(list(args), cwd=REPO, text=True, capture_output=True, check=check, timeout=timeout).stdout


def image_size(ref: str) -> int:
    return int(json.loads(sh("podman", "image", "inspect", ref))[0]["Size"])


def container_rss(name: str) -> int:
    pid = int(sh("podman", "inspect", "--format", "{{.State.Pid}}", name).strip())
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def idle_rss(name: str, settle: float, samples: int) -> tuple[float, float]:
    time.sleep(settle)
    values = []
    for _ in range(samples):
        values.append(container_rss(name))
        time.sleep(1)
    return statistics.median(values) / MIB, max(values) / MIB


def run_detached(name: str, image: str, *args: str, flags: list[str]) -> None:
    sh("podman", "run", "--detach", "--name", name, *RUN_FLAGS, "--network", "host", *flags, image, *args)


def operator_idle(image: str, settle: float, samples: int) -> tuple[float, float]:
    kubeconfig = Path(sh("hack/cluster.sh", "kubeconfig").strip().splitlines()[-1])
    kubectl = sh("bash", "-c", 'source hack/lib/common.sh && echo "$(tools_dir)/bin/kubectl"').strip()
    namespace = f"bench-images-{uuid.uuid4().hex[:6]}"
    name = f"bench-operator-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / "kubeconfig"
        flat.write_text(
            sh(kubectl, "--kubeconfig", str(kubeconfig), "config", "view", "--flatten", "--minify", "--raw")
        )
        flat.chmod(0o644)
        Path(tmp).chmod(0o755)
        sh(kubectl, "--kubeconfig", str(kubeconfig), "apply", "--server-side", "--force-conflicts", "-f", "crds")
        sh(kubectl, "--kubeconfig", str(kubeconfig), "create", "namespace", namespace)
        liveness = free_port()
        try:
            run_detached(name, image, "--namespace", namespace, "--metrics-port", str(free_port()),
                         "--liveness-port", str(liveness),
                         flags=["-v", f"{flat}:/etc/lighthouse/kubeconfig:ro", "-e",
                                "KUBECONFIG=/etc/lighthouse/kubeconfig"])  # fmt: skip
            wait_http(f"http://127.0.0.1:{liveness}/healthz", 120)
            return idle_rss(name, settle, samples)
        finally:
            sh("podman", "rm", "--force", name, check=False)
            sh(kubectl, "--kubeconfig", str(kubeconfig), "delete", "namespace", namespace, "--wait=false", check=False)


def bridge_idle(image: str, settle: float, samples: int) -> tuple[float, float]:
    env = services_env()
    name = f"bench-bridge-{uuid.uuid4().hex[:6]}"
    port = free_port()
    with fresh_database(env) as db:
        try:
            run_detached(name, image, flags=[
                "-e", "LIGHTHOUSE_HOST=127.0.0.1", "-e", f"LIGHTHOUSE_PORT={port}",
                "-e", f"LIGHTHOUSE_DATABASE_URL={db}", "-e", f"LIGHTHOUSE_REDIS_URL={env['LIGHTHOUSE_REDIS_URL']}",
                "-e", f"LIGHTHOUSE_REDIS_PREFIX=bench-images-{uuid.uuid4().hex[:6]}:",
                "-e", "LIGHTHOUSE_FUSE_MODE=disabled",
            ])  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}/readyz", 180)
            return idle_rss(name, settle, samples)
        finally:
            sh("podman", "rm", "--force", name, check=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settle-seconds", type=float, default=20, help="wait after start before sampling")
    ap.add_argument("--samples", type=int, default=10, help="RSS samples, one per second")
    ap.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = ap.parse_args()

    sh("hack/images.sh")
    operator, bridge, fuse_plugin = sh("hack/images.sh", "refs").split()
    lines = []
    base = image_size(BASE)
    for ref, archive in [(operator, "operator.tar"), (bridge, "bridge.tar"), (fuse_plugin, "fuse-plugin.tar")]:
        size = image_size(ref)
        tar = (REPO / ".state" / "images" / archive).stat().st_size
        lines.append(f"- {ref}: {size / MIB:.1f} MiB unpacked ({(size - base) / MIB:.1f} MiB over the base), "
                     f"OCI archive {tar / MIB:.1f} MiB")  # fmt: skip
    lines.append(f"- {BASE} (debootstrap minbase + python3.11): {base / MIB:.1f} MiB")
    median, peak = operator_idle(operator, args.settle_seconds, args.samples)
    lines.append(f"- operator container idle RSS (watching one empty namespace): median {median:.1f} MiB, "
                 f"max {peak:.1f} MiB over {args.samples} samples")  # fmt: skip
    median, peak = bridge_idle(bridge, args.settle_seconds, args.samples)
    lines.append(f"- bridge container idle RSS (API only, PostgreSQL + Redis, FUSE disabled; tini + supervisor + API): "
                 f"median {median:.1f} MiB, max {peak:.1f} MiB")  # fmt: skip
    command = "python benchmarks/images.py " + " ".join(sys.argv[1:])
    if args.no_record:
        print("\n".join(lines))
    else:
        append_results("images", command.strip(), lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

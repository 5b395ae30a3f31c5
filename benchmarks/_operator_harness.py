"""Shared plumbing of the operator benchmarks (operator_bench.py, rollout_bench.py): the local control plane's
kubeconfig, kubectl and API clients, a real lighthouse-operator subprocess scoped to one fresh namespace, and their
RESULTS.md sections. Kept apart from _bridge.py so that these scripts need only the operator's dependencies.
(Not named _operator.py: that is a built-in module of CPython, and a built-in always wins the import.)"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.harness.cluster import fake_node_namespace

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
OPERATOR = REPO / ".venv" / "bin" / "lighthouse-operator"
CRD = "crds/lighthouse.dev_lighthousebridges.yaml"
GROUP, VERSION, PLURAL = "lighthouse.dev", "v1alpha1", "lighthousebridges"


def sh(*args: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=REPO, text=True, capture_output=True, check=check, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_on_sigterm() -> None:
    """A background run ignores SIGINT; SIGTERM must still get to the `finally` that cleans the namespace up."""

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)


class OperatorBench:
    """A fresh namespace `<prefix>-xxxxxx` on the cluster of `hack/cluster.sh` and an operator watching only it."""

    def __init__(
        self, prefix: str, operator: Path = OPERATOR, fake_nodes: bool = True, extra_args: list[str] | None = None
    ):
        from kubernetes import client, config

        self.operator, self.fake_nodes, self.extra_args = operator, fake_nodes, extra_args or []
        self.kubeconfig = Path(sh("hack/cluster.sh", "kubeconfig").stdout.strip().splitlines()[-1])
        self.audit_log = self.kubeconfig.parent / "logs" / "audit.log"
        tools = Path(sh("bash", "-c", 'source hack/lib/common.sh && echo "$(tools_dir)/bin"').stdout.strip())
        self.kubectl = [str(tools / "kubectl"), "--kubeconfig", str(self.kubeconfig)]
        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.core, self.apps, self.custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
        self.ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.log = REPO / ".state" / "bench" / f"operator-{self.ns}.log"

    def k(self, *args: str, input: str | None = None) -> str:
        return subprocess.run(self.kubectl + list(args), text=True, capture_output=True, check=True, input=input).stdout

    def setup(self) -> None:
        """Install the CRD, create the namespace, start the operator."""
        sh(
            *self.kubectl,
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=lighthouse-install",
            "-f",
            CRD,
        )
        # Fake nodes (unless asked otherwise): on a cluster with a real node the benchmark's pods must not really run.
        namespace = fake_node_namespace(self.ns)
        if not self.fake_nodes:
            del namespace["metadata"]["annotations"]
        self.k("create", "-f", "-", input=json.dumps(namespace))
        self.start_operator()

    def start_operator(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                str(self.operator),
                "--namespace",
                self.ns,
                "--metrics-port",
                str(self.metrics_port),
                "--liveness-port",
                str(self.liveness_port),
                *self.extra_args,
            ],
            env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"operator exited; see {self.log}")
                time.sleep(0.5)
        sys.exit("operator did not become live")

    def stop_operator(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def cleanup(self, timeout: str = "60s") -> None:
        """Delete the LighthouseBridges while the operator still runs (their finalizer), then the namespace."""
        proc = subprocess.run(
            [
                *self.kubectl,
                "delete",
                "lighthousebridges",
                "--all",
                "-n",
                self.ns,
                "--wait=true",
                f"--timeout={timeout}",
            ],
            text=True,
            capture_output=True,
        )
        if proc.returncode != 0:
            print(f"warning: cleanup: {proc.stderr.strip()}", file=sys.stderr)
        self.stop_operator()
        subprocess.run([*self.kubectl, "delete", "namespace", self.ns, "--wait=false"], capture_output=True)


def record(title: str, script: str, note: str, lines: list[str]) -> None:
    """Append a section to RESULTS.md: the figures with the command line that produced them."""
    with RESULTS.open("a") as f:
        f.write(
            f"\n## {title} ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.node()}, {os.cpu_count()} CPUs)\n\n"
        )
        f.write(f"Command: `.venv/bin/python benchmarks/{script} {' '.join(sys.argv[1:])}`\n\n")
        f.write(f"{note}\n\n")
        f.writelines(f"- {line}\n" for line in lines)

"""The operator under test runs as a real subprocess (`lighthouse-operator`) against the real control plane."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cluster import Cluster, wait_for

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "crds" / "lighthouse.dev_lighthousebridges.yaml"
OPERATOR = REPO / ".venv" / "bin" / "lighthouse-operator"
RESYNC = 3.0  # seconds: the level-based timer, short so that restores are quick to observe
FIXTURES = REPO / "tests" / "unit" / "operator" / "fixtures" / "argocd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Operator:
    """A lighthouse-operator process, run as the chart runs it: with leader election, on the Lease
    `lighthouse-operator` in its first namespace. A restart keeps its identity (as a container restarted in the
    same pod would with a fixed one), so it takes its own Lease back at once; `identity` tells replicas apart."""

    cluster: Cluster
    namespaces: list[str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    liveness_port: int = 0
    starts: list[float] = field(default_factory=list)
    identity: str = "test-operator"
    extra_args: list[str] = field(default_factory=list)
    leader_elect: bool = True
    command: list[str] = field(default_factory=lambda: [str(OPERATOR)])
    env: dict[str, str] = field(default_factory=dict)

    def start(self, wait_leading: bool = True) -> Operator:
        self.metrics_port, self.liveness_port = free_port(), free_port()
        args = [
            *self.command,
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--resync-seconds",
            str(RESYNC),
            "--verbose",
            *self.extra_args,
        ]
        if self.leader_elect:
            args += ["--leader-elect", "--leader-election-namespace", self.namespaces[0]]
            args += ["--leader-election-identity", self.identity]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            args, env={**self.cluster.env(), **self.env}, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        self.starts.append(time.monotonic())
        wait_for(self.live, timeout=60, message=f"operator liveness (log {self.log_path})")
        if wait_leading:
            wait_for(self.leading, timeout=60, message=f"operator leading (log {self.log_path})")
        return self

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body

    def leading(self) -> bool:
        return self.health().get("role") in ("leader", "standalone")

    def lease_writes(self) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith("lighthouse_operator_lease_writes_total"))

    def live(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("lighthouse_operator_"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def writes(self) -> float:
        """Write requests this process sent to the API server (POST/PUT/PATCH/DELETE), its Lease's aside."""
        m = self.metrics()
        total = sum(
            v
            for k, v in m.items()
            if k.startswith("lighthouse_operator_api_requests_total")
            and re.search(r'verb="(POST|PUT|PATCH|DELETE)"', k)
        )
        return total - sum(v for k, v in m.items() if k.startswith("lighthouse_operator_lease_writes_total"))

    def reads(self) -> float:
        """Read requests this process sent to the API server (GET of one object, LIST; watches not counted)."""
        return sum(
            v
            for k, v in self.metrics().items()
            if k.startswith("lighthouse_operator_api_requests_total") and re.search(r'verb="(GET|LIST)"', k)
        )

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


class Kubectl:
    """kubectl helpers returning parsed JSON."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.cluster, self.ns = cluster, namespace

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.cluster.kubectl(*args, check=check, input=input)

    def apply(self, manifest: dict[str, Any] | str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self(
            "apply", "--server-side", "--field-manager=test-gitops", "-n", self.ns, "-f", "-", input=text, check=check
        )

    def get(self, kind: str, name: str | None = None, *, ns: str | None = None, selector: str | None = None) -> Any:
        args = ["get", kind, "-n", ns or self.ns, "-o", "json"]
        if name:
            args.insert(2, name)
        if selector:
            args += ["-l", selector]
        proc = self(*args, check=False)
        if proc.returncode != 0:
            if "NotFound" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        return json.loads(proc.stdout)

    def items(self, kind: str, selector: str, ns: str | None = None) -> list[dict[str, Any]]:
        return self.get(kind, ns=ns, selector=selector)["items"]

    def patch(self, kind: str, name: str, patch: dict[str, Any], ptype: str = "merge") -> None:
        self("patch", kind, name, "-n", self.ns, "--type", ptype, "-p", json.dumps(patch))


def lhb(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": name},
        "spec": spec or {},
    }


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not obj:
        return None
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def is_ready(obj: dict[str, Any] | None) -> bool:
    c = condition(obj, "Ready")
    return bool(
        obj
        and c
        and c["status"] == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        and c.get("observedGeneration") == obj["metadata"]["generation"]
    )


def capture_fixture(name: str, obj: dict[str, Any], expect: str) -> None:
    """Save a real status object for the Argo CD health test (CAPTURE_ARGOCD_FIXTURES=1)."""
    if os.environ.get("CAPTURE_ARGOCD_FIXTURES") != "1":
        return
    FIXTURES.mkdir(parents=True, exist_ok=True)
    keep = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {k: obj["metadata"][k] for k in ("name", "generation") if k in obj["metadata"]},
        "spec": obj.get("spec", {}),
        "status": obj.get("status", {}),
    }
    (FIXTURES / f"{name}.json").write_text(json.dumps({"expect": expect, "object": keep}, indent=2) + "\n")


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> Path:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=lighthouse-install", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/lighthousebridges.lighthouse.dev")
    return CRD


@pytest.fixture
def k(cluster: Cluster, namespace: str, crd: Path) -> Kubectl:
    return Kubectl(cluster, namespace)


def release_namespace(cluster: Cluster, ns: str) -> None:
    """Delete every LighthouseBridge while an operator still runs, so the namespace can terminate; strip the
    finalizer of any that still hang on (a test that stopped its operator, say)."""
    proc = cluster.kubectl("get", "lhb", "-n", ns, "-o", "name", check=False)
    names = proc.stdout.split() if proc.returncode == 0 else []
    for n in names:
        cluster.kubectl(
            "patch", n, "-n", ns, "--type", "merge", "-p", '{"spec":{"deletionPolicy":"Delete"}}', check=False
        )
    if names:
        cluster.kubectl("delete", "lhb", "--all", "-n", ns, "--wait=true", "--timeout=60s", check=False)
    for n in names:
        cluster.kubectl("patch", n, "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}', check=False)


@pytest.fixture
def operator(cluster: Cluster, namespace: str, crd: Path, tmp_path: Path) -> Iterator[Operator]:
    op = Operator(cluster, [namespace], tmp_path / "operator.log").start()
    try:
        yield op
    finally:
        if op.proc is not None and op.proc.poll() is None:
            release_namespace(cluster, namespace)
        op.stop()
        print(f"--- operator log tail ({op.log_path})\n{op.log_tail(40)}")
        release_namespace(cluster, namespace)

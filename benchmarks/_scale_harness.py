"""Plumbing of the scale and chaos benchmarks (scale_bench.py, chaos_bench.py): a kwok-only cluster of their own
(its own work directory and API server port, enough fake nodes), the operator installed as the chart installs it
(its ServiceAccount, exactly the chart's RBAC in namespaced mode, a token), and operator replicas as real processes
behind the chart's Lease.

Nothing here touches the cluster of `hack/cluster.sh up` (other work on the machine uses that one).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.harness.extra_tools import helm  # noqa: E402

STATE = Path(os.environ.get("LIGHTHOUSE_STATE", REPO / ".state"))
CHART = REPO / "charts" / "lighthouse-operator"
CRD = REPO / "crds" / "lighthouse.dev_lighthousebridges.yaml"
RELEASE = "bench"
LEASE = f"{RELEASE}-lighthouse-operator"  # the chart's --leader-election-id
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def sh(*args: str, env: dict[str, str] | None = None, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(list(args), cwd=REPO, env=env, input=input, text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def operator_venv() -> Path:
    """A virtualenv with only the operator's extra, as in the image (the dev one also holds the official
    `kubernetes` client, which kopf imports when present: +10 MiB of RSS that the image does not have)."""
    venv = STATE / "bench" / "operator-venv"
    exe = venv / "bin" / "lighthouse-operator"
    if not exe.exists():
        sh(sys.executable, "-m", "venv", str(venv))
        sh(str(venv / "bin" / "pip"), "install", "-q", "-e", f"{REPO}[operator]")
    return exe


class BenchCluster:
    """hack/cluster.sh with its own work directory, port and node count."""

    def __init__(self, name: str, port: int, nodes: int):
        self.env = dict(
            os.environ,
            LIGHTHOUSE_CLUSTER_WORKDIR=str(STATE / name),
            LIGHTHOUSE_CLUSTER_PORT=str(port),
            LIGHTHOUSE_CLUSTER_NODES=str(nodes),
        )
        self.dir = STATE / name / "clusters" / "lighthouse"
        self.kubeconfig = self.dir / "kubeconfig.yaml"
        self.audit_log = self.dir / "logs" / "audit.log"
        tools = sh("bash", "-c", 'source hack/lib/common.sh && echo "$(tools_dir)/bin"').strip()
        self.kubectl_bin = str(Path(tools) / "kubectl")

    def up(self) -> None:
        sh("hack/cluster.sh", "up", env=self.env)

    def down(self) -> None:
        sh("hack/cluster.sh", "down", env=self.env, check=False)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return sh(self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), *args, input=input, check=check)

    def pids(self) -> dict[str, int]:
        out = {}
        for f in sorted((self.dir / "pids").glob("*.pid")):
            try:
                out[f.stem] = int(f.read_text().strip())
            except ValueError:
                continue
        return out

    def install(self, namespace: str) -> Path:
        """The CRD, the namespace, and the chart's RBAC for watching it (namespaced mode, the Lease in it too).
        Returns a kubeconfig with a token of the chart's ServiceAccount: the operator gets exactly that RBAC."""
        self.kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=lighthouse-install", "-f", str(CRD)
        )
        # Not `kubectl wait`: on a CRD just created it fails at once (".status.conditions accessor error") until the
        # API server has written any condition.
        deadline = time.monotonic() + 60
        while "True" not in self.kubectl("get", "crd/lighthousebridges.lighthouse.dev", "-o",
                                         'jsonpath={.status.conditions[?(@.type=="Established")].status}'):  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError("the LighthouseBridge CRD is not Established 60 s after it was applied")
            time.sleep(0.5)
        self.kubectl("create", "namespace", namespace, check=False)
        deadline = time.monotonic() + 60  # a new CRD's storage answers 429 for a moment: not in the figures
        while subprocess.run([self.kubectl_bin, "--kubeconfig", str(self.kubeconfig), "get", "lighthousebridges", "-n",
                              namespace], capture_output=True).returncode != 0:  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError("LighthouseBridges cannot be listed 60 s after the CRD was established")
            time.sleep(0.5)
        rendered = sh(helm(), "template", RELEASE, str(CHART), "--namespace", namespace, "--set", "crds.create=false",
                      "--set", "watch.mode=namespaced")  # fmt: skip
        docs = [d for d in yaml.safe_load_all(rendered) if d and d.get("kind") in RBAC_KINDS]
        for d in docs:  # cluster-wide objects are shared by every namespace of the run
            if d["kind"].startswith("Cluster"):
                d["metadata"]["name"] = f"{d['metadata']['name']}-{namespace}"
                if d["kind"] == "ClusterRoleBinding":
                    d["roleRef"]["name"] = f"{d['roleRef']['name']}-{namespace}"
        self.kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs))
        sa = f"{RELEASE}-lighthouse-operator"
        token = self.kubectl("create", "token", sa, "-n", namespace, "--duration=12h").strip()
        admin = yaml.safe_load(self.kubectl("config", "view", "--flatten", "--minify", "--raw"))
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "bench", "cluster": admin["clusters"][0]["cluster"]}],
            "users": [{"name": sa, "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "bench", "user": sa}}],
            "current-context": "operator",
        }
        path = self.dir.parent.parent / f"operator-{namespace}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        return path

    def audit(self, since: int, user: str) -> tuple[int, list[dict[str, Any]]]:
        """(new offset, audit events of `user` after byte `since`)."""
        out = []
        if not self.audit_log.exists():
            return since, out
        with self.audit_log.open() as f:
            f.seek(since)
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if (ev.get("user") or {}).get("username") == user:
                    out.append(ev)
            return f.tell(), out

    def audit_offset(self) -> int:
        return self.audit_log.stat().st_size if self.audit_log.exists() else 0


@dataclass
class Replica:
    """One lighthouse-operator process, run as the chart runs it (leader election on the chart's Lease)."""

    exe: Path
    kubeconfig: Path
    namespace: str
    log: Path
    name: str
    resync: float = 30.0
    proc: subprocess.Popen[bytes] | None = None
    metrics_port: int = 0
    liveness_port: int = 0
    generation: int = 0
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        return f"{self.name}-{self.generation}"

    def start(self) -> Replica:
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.generation += 1
        args = [str(self.exe), "--namespace", self.namespace, "--metrics-port", str(self.metrics_port),
                "--liveness-port", str(self.liveness_port), "--resync-seconds", str(self.resync),
                "--leader-elect", "--leader-election-namespace", self.namespace, "--leader-election-id", LEASE,
                "--leader-election-identity", self.identity, *self.extra]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            env=dict(os.environ, KUBECONFIG=str(self.kubeconfig), **self.env),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        while self.role() is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"operator {self.identity} did not start; see {self.log}")
            time.sleep(0.2)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def role(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2) as r:
                return str(json.loads(r.read()).get("role"))
        except (OSError, ValueError):
            return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith("lighthouse_operator_"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def total(self, prefix: str, *contains: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix) and all(c in k for c in contains))

    def rss_mib(self) -> float:
        assert self.proc is not None
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system)


def leader(replicas: list[Replica]) -> Replica | None:
    return next((r for r in replicas if r.alive() and r.role() == "leader"), None)


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each process."""
    out = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            out[name] = t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return out


def bridge(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"deletionPolicy": "Delete", **spec},
    }


def ready(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    return st.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c.get("type") == "Ready"
        and c.get("status") == "True"
        and c.get("observedGeneration") == st.get("observedGeneration")
        for c in st.get("conditions") or []
    )


WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


def writes_besides_lease(events: list[dict[str, Any]], since: float | None = None) -> dict[str, int]:
    """The write requests among audit `events` other than to Leases, by "verb resource"; with `since` (a Unix time),
    only those the API server received from then on. From the audit log, not from a process's counters: those
    restart with the process, and its Lease counter counts attempts (one that timed out sent no counted request)."""
    out: dict[str, int] = {}
    for ev in events:
        resource = (ev.get("objectRef") or {}).get("resource")
        if ev.get("verb") not in WRITE_VERBS or resource == "leases":
            continue
        if since is not None:
            received = ev.get("requestReceivedTimestamp") or ev.get("stageTimestamp")
            if received and datetime.datetime.fromisoformat(received.replace("Z", "+00:00")).timestamp() < since:
                continue
        key = f"{ev['verb']} {resource}"
        out[key] = out.get(key, 0) + 1
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))]


def run_id() -> str:
    return uuid.uuid4().hex[:6]


__all__ = [
    "LEASE",
    "BenchCluster",
    "Replica",
    "bridge",
    "cpu_of",
    "free_port",
    "leader",
    "operator_venv",
    "pct",
    "ready",
    "run_id",
    "sh",
    "writes_besides_lease",
]

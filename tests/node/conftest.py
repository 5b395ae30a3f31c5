"""Node tier: pods really run, on the machine's one real node (hack/node.sh: containerd, kubelet, kube-proxy, CoreDNS
and the FUSE device plugin). Every test asserts something only a kubelet proves.

The operator under test runs as a process scoped to each test's namespaces, as in the integration tier, told through
its --default-* flags to use the images built here (hack/images.sh, imported into the node's containerd) and the
node's FUSE device plugin: the same settings the chart gives it in `make up` (test_operator_pod.py runs the chart's
pod itself). Namespaces here carry no fake-node annotations, so their pods go to the real node.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cluster import Cluster, wait_for
from tests.harness.services import ServiceEnv
from tests.integration.operator.conftest import CRD, Kubectl, Operator, condition, is_ready, lhb, release_namespace

REPO = Path(__file__).resolve().parents[2]
NODE = "lighthouse-node"
NODE_IP = "10.255.0.1"
FUSE_RESOURCE = "lighthouse.dev/fuse"
IMAGES = ("operator", "bridge", "fuse-plugin", "postgres", "redis", "exits")
# The chart's FUSE node plugin, installed as `make up` installs it (release lighthouse in lighthouse-system).
PLUGIN_RELEASE, PLUGIN_NS = "lighthouse", "lighthouse-system"
CSI_DRIVER = "fuse.lighthouse.dev"
CTR_SOCK = "/run/lighthouse-node/containerd/containerd.sock"


def sh(*cmd: str, timeout: float = 3600, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


@dataclass(frozen=True)
class RealNode:
    cluster: Cluster
    refs: dict[str, str]
    s3_endpoint: str  # the S3 server of this checkout, as pods reach it (hack/node.sh forwards the port)

    def operator_args(self) -> list[str]:
        """The settings `make up` gives the chart-installed operator (hack/up.sh)."""
        return [
            f"--default-bridge-image={self.refs['bridge']}",
            f"--default-postgres-image={self.refs['postgres']}",
            f"--default-redis-image={self.refs['redis']}",
            # The chart's default with its CSI node plugin installed (the fuse_plugin fixture).
            "--default-fuse-mode=csi",
            f"--default-fuse-device-plugin-resource={FUSE_RESOURCE}",
        ]


@pytest.fixture(scope="session")
def real_node(cluster: Cluster, services: ServiceEnv) -> RealNode:
    if cluster.provider != "local":
        pytest.skip(f"the node tier runs on the local cluster's real node (hack/node.sh), not on {cluster.provider!r}")
    proc = cluster.kubectl("get", "node", NODE, "-o", "json", check=False)
    if proc.returncode != 0:
        reason = subprocess.run([REPO / "hack" / "node.sh", "check"], capture_output=True, text=True, check=False)
        pytest.fail(
            f"the local cluster has no real node ({proc.stderr.strip()}); it is started with "
            f"LIGHTHOUSE_CLUSTER_REAL_NODE=1 (hack/test.sh node does). {reason.stderr.strip()}",
            pytrace=False,
        )
    wait_for(lambda: node_ready(cluster), timeout=120, message=f"node {NODE} Ready")
    # Built once (cached by their inputs), imported once per content into the node's containerd.
    sh("hack/images.sh", "all")
    sh("hack/images.sh", "stores")
    sh("hack/images.sh", "testing")
    sh("hack/node.sh", "import", *(f".state/images/{i}.tar" for i in IMAGES))
    refs = {i: sh("hack/images.sh", "ref", i).strip() for i in IMAGES}
    return RealNode(cluster, refs, services.s3_endpoint.replace("127.0.0.1", NODE_IP))


def node_ready(cluster: Cluster) -> bool:
    node = json.loads(cluster.kubectl("get", "node", NODE, "-o", "json").stdout)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


@dataclass(frozen=True)
class FusePlugin:
    """The chart's FUSE node plugin DaemonSet on the real node."""

    k: Kubectl

    @property
    def ns(self) -> str:
        return self.k.ns

    def pod(self, ready_only: bool = False) -> dict[str, Any] | None:
        pods = [
            p
            for p in self.k.items("pods", "app.kubernetes.io/component=fuse-node")
            if p["spec"].get("nodeName") == NODE and not p["metadata"].get("deletionTimestamp")
        ]
        pods = [p for p in pods if pod_ready(p)] if ready_only else pods
        return pods[0] if pods else None


def csi_driver_registered(cluster: Cluster) -> bool:
    proc = cluster.kubectl("get", "csinode", NODE, "-o", "json", check=False)
    return proc.returncode == 0 and any(
        d["name"] == CSI_DRIVER for d in json.loads(proc.stdout)["spec"].get("drivers") or []
    )


@pytest.fixture(scope="session", autouse=True)
def fuse_plugin(real_node: RealNode) -> FusePlugin:
    """The chart's FUSE node plugin (templates/fuse-plugin.yaml: the CSIDriver and the DaemonSet), applied as the
    release `make up` installs would own it, so that a later `make up` adopts it. Left running, like the CRD."""
    from tests.harness.extra_tools import helm

    cluster = real_node.cluster
    repo, tag = real_node.refs["fuse-plugin"].rsplit(":", 1)
    chart = str(REPO / "charts" / "lighthouse-operator")
    rendered = sh(helm(), "template", PLUGIN_RELEASE, chart, "--namespace", PLUGIN_NS, "--show-only",
                  "templates/fuse-plugin.yaml", "--set", f"fusePlugin.image.repository={repo}",
                  "--set", f"fusePlugin.image.tag={tag}")  # fmt: skip
    if cluster.kubectl("get", "namespace", PLUGIN_NS, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", PLUGIN_NS)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=helm", "-n", PLUGIN_NS, "-f", "-",
                    input=rendered)  # fmt: skip
    for obj in ("csidriver/" + CSI_DRIVER, f"daemonset/{PLUGIN_RELEASE}-lighthouse-operator-fuse-node"):
        cluster.kubectl("annotate", "--overwrite", "-n", PLUGIN_NS, obj, f"meta.helm.sh/release-name={PLUGIN_RELEASE}",
                        f"meta.helm.sh/release-namespace={PLUGIN_NS}")  # fmt: skip
    plugin = FusePlugin(Kubectl(cluster, PLUGIN_NS))
    # A rebuilt image under the same tag needs a new pod (IfNotPresent never looks again).
    digest = sh("podman", "image", "inspect", "--format", "{{.Id}}", real_node.refs["fuse-plugin"]).strip()
    running = plugin.pod()
    if running and digest not in json.dumps(running["status"].get("containerStatuses") or []):
        plugin.k("delete", "pod", "-n", PLUGIN_NS, running["metadata"]["name"], "--wait=true")
    wait_for(lambda: plugin.pod(ready_only=True), timeout=180, message="the FUSE node plugin pod Ready")
    wait_for(lambda: csi_driver_registered(cluster), timeout=60, message=f"{CSI_DRIVER} registered on {NODE}")
    return plugin


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> Path:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=lighthouse-install", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/lighthousebridges.lighthouse.dev")
    return CRD


@contextlib.contextmanager
def node_namespace(cluster: Cluster, prefix: str) -> Iterator[str]:
    """A namespace whose pods run on the real node, deleted afterwards (its bridges released first)."""
    name = f"lh-node-{re.sub(r'[^a-z0-9-]+', '-', prefix.lower())[:30].strip('-')}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "lighthouse.dev/test=true")
    wait_for(lambda: cluster.kubectl("get", "sa", "default", "-n", name), timeout=30, message="default SA")
    try:
        yield name
    finally:
        release_namespace(cluster, name)
        cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@contextlib.contextmanager
def node_operator(node: RealNode, namespaces: list[str], log: Path) -> Iterator[Operator]:
    op = Operator(node.cluster, namespaces, log, extra_args=node.operator_args()).start()
    try:
        yield op
    finally:
        for ns in namespaces:
            release_namespace(node.cluster, ns)
        op.stop()
        print(f"--- operator log tail ({log})\n{op.log_tail(30)}")


@dataclass
class Bridge:
    """A LighthouseBridge under test and its pods on the real node."""

    k: Kubectl
    name: str

    @property
    def ns(self) -> str:
        return self.k.ns

    def apply(self, spec: dict[str, Any]) -> None:
        self.k.apply(lhb(self.name, spec))

    def obj(self) -> dict[str, Any]:
        return self.k.get("lhb", self.name)

    def wait_ready(self, timeout: float = 300) -> dict[str, Any]:
        try:
            return wait_for(
                lambda: (o := self.obj()) is not None and is_ready(o) and o,
                timeout=timeout,
                message=f"lhb/{self.name} Ready",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None

    def wait_fuse(self, reason: str = "Mounted", timeout: float = 120) -> dict[str, Any]:
        """The operator's FuseAvailable condition with this reason (Mounted: the mount follows Ready, since a bridge
        without it serves, degraded; the operator reads it from the pods' /health within a resync)."""
        return wait_for(
            lambda: (c := condition(self.obj(), "FuseAvailable")) and c["reason"] == reason and c,
            timeout=timeout,
            message=f"FuseAvailable {reason} ({self.describe()})",
        )

    def local_get(self, pod: str, path: str) -> dict[str, Any]:
        """GET of the bridge's API from inside its own pod (raises on a status other than 200)."""
        script = (
            f"import urllib.request as u\nprint(u.urlopen('http://127.0.0.1:8765{path}', timeout=5).read().decode())"
        )
        return json.loads(self.exec(pod, "python3", "-c", script).stdout)

    def health(self) -> dict[str, Any]:
        """/health as the bridge pod itself answers it (status and each component)."""
        return self.local_get(self.pod()["metadata"]["name"], "/health")

    def fuse_status(self, pod: str) -> dict[str, Any]:
        """The FUSE process's status file in the pod (mounted, mountpoint, error)."""
        return json.loads(self.exec(pod, "cat", "/run/lighthouse/fuse-status.json").stdout)

    def proc_status(self, pod: str, pid: int | str = 1) -> dict[str, str]:
        """/proc/PID/status in the pod's bridge container, as fields."""
        text = self.exec(pod, "cat", f"/proc/{pid}/status").stdout
        return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)

    def wait_healthy(self, timeout: float = 300) -> dict[str, Any]:
        """/health says healthy. Ready and Mounted do not imply it: a new pod's first connections to Redis can be
        refused while the node's network policy admits it, and the bridge is degraded until its next probe."""
        last: dict[str, Any] = {}

        def healthy() -> dict[str, Any] | None:
            last.update(self.health())
            return dict(last) if last["status"] == "healthy" else None

        try:
            return wait_for(healthy, timeout=timeout, interval=1, message=f"lhb/{self.name} healthy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast /health: {json.dumps(last)}\n{self.describe()}") from None

    def describe(self) -> str:
        """The LighthouseBridge's conditions and the namespace's pods, for failure messages."""
        obj = self.obj() or {}
        conds = [
            f"{c['type']}={c['status']} {c.get('reason', '')}: {c.get('message', '')}"
            for c in (obj.get("status") or {}).get("conditions") or []
        ]
        pods = self.k("get", "pods", "-n", self.ns, "-o", "wide", check=False).stdout
        return "conditions:\n  " + "\n  ".join(conds) + f"\npods:\n{pods}"

    def pods(self, component: str = "bridge", ready_only: bool = False) -> list[dict[str, Any]]:
        sel = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"
        pods = [p for p in self.k.items("pods", sel) if not p["metadata"].get("deletionTimestamp")]
        return [p for p in pods if pod_ready(p)] if ready_only else pods

    def pod(self, component: str = "bridge") -> dict[str, Any]:
        (p,) = wait_for(
            lambda: (ps := self.pods(component, ready_only=True)) and len(ps) == 1 and ps,
            timeout=120,
            message=f"one ready {component} pod of {self.name}",
        )
        return p

    def exec(self, pod: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.k("exec", "-n", self.ns, pod, "--", *cmd, check=check)

    def secret(self, name: str, key: str) -> str:
        data = self.k.get("secret", name)["data"][key]
        return base64.b64decode(data).decode()

    def token(self) -> str:
        return self.secret(f"{self.name}-admin-token", "token")

    def create_file(self, path: str, content: str) -> None:
        """POST /shadow/update (create) through the bridge's Service, as an agent would."""
        with port_forward(self.k.cluster, self.ns, f"svc/{self.name}-bridge", 8765) as port:
            code, out = http(
                f"http://127.0.0.1:{port}/shadow/update",
                self.token(),
                {"operation": "create", "path": path, "content": content, "agent_id": "node-tier"},
            )
        assert code == 200, out

    def service_url(self) -> str:
        return f"http://{self.name}-bridge.{self.ns}.svc.cluster.local:8765"


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


@contextlib.contextmanager
def port_forward(cluster: Cluster, ns: str, target: str, port: int) -> Iterator[int]:
    """`kubectl port-forward TARGET :PORT`: yields the local port on 127.0.0.1."""
    cmd = [cluster.kubectl_path, "--kubeconfig", str(cluster.kubeconfig), "port-forward", "-n", ns, target, f":{port}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            proc.kill()
            raise AssertionError(
                f"kubectl port-forward printed {line!r}; stderr: {proc.stderr.read() if proc.stderr else ''}"
            )
        yield int(m.group(1))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def http(url: str, token: str | None = None, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def run_pod(
    k: Kubectl, image: str, script: str, name: str | None = None, timeout: float = 120, wait: bool = True
) -> tuple[str, str]:
    """Runs a Python script in a pod of its own (the bridge image has Python); returns (phase, logs)."""
    name = name or f"py-{uuid.uuid4().hex[:6]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "node-test"}},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "containers": [
                {
                    "name": "py",
                    "image": image,
                    "command": ["/opt/lighthouse/bin/python", "-u", "-c", script],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }
    k("apply", "-n", k.ns, "-f", "-", input=json.dumps(pod))
    if not wait:
        return "", ""
    phase = wait_for(
        lambda: (
            (k.get("pod", name) or {}).get("status", {}).get("phase") in ("Succeeded", "Failed")
            and k.get("pod", name)["status"]["phase"]
        ),
        timeout=timeout,
        message=f"pod {name} to finish",
    )
    return phase, k("logs", "-n", k.ns, name).stdout


def host_pid(pod: dict[str, Any], container: str) -> int:
    """The host pid of a container's main process (through the node's containerd)."""
    status = next(c for c in pod["status"]["containerStatuses"] if c["name"] == container)
    cid = status["containerID"].removeprefix("containerd://")
    out = sh("ctr", "--address", CTR_SOCK, "-n", "k8s.io", "tasks", "ls")
    for line in out.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return int(fields[1])
    raise AssertionError(f"no task {cid} in the node's containerd:\n{out}")


@contextlib.contextmanager
def frozen(pod: dict[str, Any], container: str) -> Iterator[None]:
    """Freezes every process of a container (the cgroup freezer, from the host) and thaws it afterwards."""
    pid = host_pid(pod, container)
    path = next(
        line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if ":freezer:" in line
    )
    state = Path("/sys/fs/cgroup/freezer") / path.lstrip("/") / "freezer.state"
    state.write_text("FROZEN")
    try:
        yield
    finally:
        state.write_text("THAWED")


class Sampler:
    """Samples a bridge's Service while something happens: an HTTP GET of /health through the Service's DNS name from a
    pod (every 0.5 s), and the number of ready endpoints of the Service from the API (every 0.5 s)."""

    def __init__(self, bridge: Bridge, image: str):
        self.bridge, self.image = bridge, image
        self.name = f"sampler-{uuid.uuid4().hex[:5]}"
        self.ready_counts: list[int] = []
        self._stop = False
        import threading

        self._thread = threading.Thread(target=self._sample_endpoints, daemon=True)

    def _sample_endpoints(self) -> None:
        sel = f"kubernetes.io/service-name={self.bridge.name}-bridge"
        while not self._stop:
            slices = self.bridge.k.items("endpointslices", sel)
            self.ready_counts.append(
                sum(1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
            )
            time.sleep(0.5)

    def __enter__(self) -> Sampler:
        script = (
            "import time, urllib.request\n"
            "while True:\n"
            "    try:\n"
            f"        with urllib.request.urlopen({self.bridge.service_url() + '/health'!r}, timeout=2) as r:\n"
            "            print('ok', r.status, flush=True)\n"
            "    except Exception as e:\n"
            "        print('fail', type(e).__name__, e, flush=True)\n"
            "    time.sleep(0.5)\n"
        )
        run_pod(self.bridge.k, self.image, script, name=self.name, wait=False)
        wait_for(
            lambda: "ok" in self.results(), timeout=90, message=f"the sampler pod answering: {self.results()[-3:]}"
        )
        self._thread.start()
        return self

    def results(self) -> list[str]:
        return [line.split()[0] for line in self.lines()]

    def lines(self) -> list[str]:
        """The samples from the first answer on: before it, the sampler pod's own network was still coming up (a new
        pod's NetworkPolicy admission by kube-router lags its start), which says nothing about the bridge."""
        out = self.bridge.k("logs", "-n", self.bridge.ns, self.name, check=False).stdout.splitlines()
        samples = [line for line in out if line.strip()]
        first_ok = next((i for i, line in enumerate(samples) if line.startswith("ok")), len(samples))
        return samples[first_ok:]

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(timeout=10)


def make_bridge(
    request: pytest.FixtureRequest, node: RealNode, ns: str, name: str, spec: dict[str, Any]
) -> Callable[[], Bridge]:
    """Applies a LighthouseBridge and returns a function that waits for it to be Ready."""
    b = Bridge(Kubectl(node.cluster, ns), name)
    b.apply(spec)
    return lambda: (b.wait_ready(), b)[1]

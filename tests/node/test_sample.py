"""The sample LighthouseBridge (examples/minimal.yaml: `spec: {}`) on the real node, with the operator's defaults as
`make up` sets them: its bridge, PostgreSQL and Redis pods run, and everything a kubelet does for them is real."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness.cluster import wait_for
from tests.integration.operator.conftest import condition

from .conftest import (
    FUSE_RESOURCE,
    NODE,
    Bridge,
    Kubectl,
    RealNode,
    frozen,
    host_pid,
    http,
    node_namespace,
    node_operator,
    pod_ready,
    port_forward,
    run_pod,
)

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "minimal.yaml"


@pytest.fixture(scope="module")
def sample(real_node: RealNode, crd: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    (doc,) = [d for d in yaml.safe_load_all(SAMPLE.read_text()) if d["kind"] == "LighthouseBridge"]
    with node_namespace(real_node.cluster, "sample") as ns:
        log = tmp_path_factory.mktemp("sample") / "operator.log"
        with node_operator(real_node, [ns], log):
            b = Bridge(Kubectl(real_node.cluster, ns), doc["metadata"]["name"])
            b.apply(doc["spec"])
            b.wait_ready()
            b.wait_fuse()  # Ready comes before the mount
            b.wait_healthy()
            yield b


def test_pods_run_on_the_real_node(sample: Bridge) -> None:
    for component in ("bridge", "postgres", "redis"):
        pod = sample.pod(component)
        assert pod["spec"]["nodeName"] == NODE, component
        (status,) = pod["status"]["containerStatuses"]
        # A container ID and a start time only exist where a runtime really started a process.
        assert status["containerID"].startswith("containerd://") and status["started"] is True, status
        assert "running" in status["state"] and status["restartCount"] == 0, status
        assert pod["status"]["podIP"].startswith("10.244."), pod["status"]


def descendant(pid: int, word: str) -> int:
    """The first process under `pid` (host pids) whose command line has `word` as an argument."""
    todo = [pid]
    while todo:
        p = todo.pop(0)
        if word.encode() in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[1:] and p != pid:
            return p
        for task in Path(f"/proc/{p}/task").iterdir():
            todo += [int(c) for c in (task / "children").read_text().split()]
    raise AssertionError(f"no process with argument {word!r} under pid {pid}")


def test_health_through_the_service_by_dns_name_from_another_pod(sample: Bridge, real_node: RealNode) -> None:
    script = (
        "import json, socket, urllib.request\n"
        f"url = {sample.service_url() + '/health'!r}\n"
        "print('address', socket.gethostbyname(url.split('/')[2].split(':')[0]))\n"
        "with urllib.request.urlopen(url, timeout=10) as r:\n"
        "    print('status', r.status, json.loads(r.read())['status'])\n"
    )
    phase, logs = run_pod(sample.k, real_node.refs["bridge"], script)
    assert phase == "Succeeded", logs
    svc = sample.k.get("service", f"{sample.name}-bridge")
    assert f"address {svc['spec']['clusterIP']}" in logs and "status 200 healthy" in logs, logs


def test_logs_exec_and_port_forward(sample: Bridge) -> None:
    pod = sample.pod("bridge")["metadata"]["name"]
    logs = sample.k("logs", "-n", sample.ns, pod).stdout
    assert "Application startup complete" in logs
    # exec runs in the container: the pod's own hostname and its projected config file.
    out = sample.exec(pod, "sh", "-c", "hostname; cat /etc/lighthouse/policy.yaml | head -1").stdout
    assert out.splitlines()[0] == pod
    with port_forward(sample.k.cluster, sample.ns, f"svc/{sample.name}-bridge", 8765) as port:
        status, body = http(f"http://127.0.0.1:{port}/health")
    assert status == 200 and body["status"] == "healthy", body


def test_events_live_in_the_in_cluster_postgres_and_redis_is_used(sample: Bridge) -> None:
    path = f"node-tier/{uuid.uuid4().hex[:8]}.txt"
    content = f"written through the Service at {time.time()}\n"
    sample.create_file(path, content)
    with port_forward(sample.k.cluster, sample.ns, f"svc/{sample.name}-bridge", 8765) as port:
        status, read = http(f"http://127.0.0.1:{port}/shadow/read/{path}", sample.token())
        assert status == 200 and read["content"] == content, read
    # Read back from PostgreSQL's own pod, over TCP, with the generated credentials.
    creds = f"{sample.name}-postgres-credentials"
    user, password, db = (sample.secret(creds, k) for k in ("username", "password", "database"))
    pg = sample.pod("postgres")["metadata"]["name"]
    query = f"SELECT event_type, source_agent FROM events WHERE aggregate_id = '{path}'"
    rows = sample.exec(
        pg, "env", f"PGPASSWORD={password}", "psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-Atc", query
    ).stdout.split()
    assert rows == ["file_created|node-tier"], rows
    wrong = sample.exec(
        pg, "env", "PGPASSWORD=wrong", "psql", "-h", "127.0.0.1", "-U", user, "-d", db, "-c", "SELECT 1", check=False
    )
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    # Redis: the bridge holds a connection from its pod's address, authenticated with the generated password.
    redis = sample.pod("redis")["metadata"]["name"]
    clients = sample.exec(redis, "redis-cli", "CLIENT", "LIST").stdout
    bridge_ip = sample.pod("bridge")["status"]["podIP"]
    assert f"addr={bridge_ip}:" in clients, clients
    assert int(sample.exec(redis, "redis-cli", "DBSIZE").stdout.strip()) > 0
    noauth = sample.exec(redis, "env", "-u", "REDISCLI_AUTH", "redis-cli", "DBSIZE", check=False).stdout
    assert "NOAUTH" in noauth, noauth


def test_fuse_is_mounted_in_the_default_mode_without_privilege(sample: Bridge) -> None:
    """The default mode with the chart's node plugin: csi (no capability, no device; tests/node/test_fuse_restricted.py
    runs it in a restricted namespace)."""
    pod = sample.pod("bridge")
    (c,) = pod["spec"]["containers"]
    sc = c["securityContext"]
    assert not sc.get("privileged") and sc["capabilities"] == {"drop": ["ALL"]}, sc
    assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True
    assert FUSE_RESOURCE not in (c.get("resources") or {}).get("limits", {})
    name = pod["metadata"]["name"]
    status = sample.fuse_status(name)
    assert status["mounted"] is True, status
    assert condition(sample.obj(), "FuseAvailable")["reason"] == "Mounted"
    mounts = sample.exec(name, "cat", "/proc/mounts").stdout
    assert any(line.split()[1] == "/mnt/lighthouse/project" and line.split()[2].startswith("fuse") for line in
               mounts.splitlines()), mounts  # fmt: skip
    # No capability at all in the effective set.
    caps = dict(
        line.split(":\t") for line in sample.exec(name, "cat", "/proc/1/status").stdout.splitlines() if ":\t" in line
    )
    assert int(caps["CapEff"], 16) == 0, caps["CapEff"]

    path = f"fuse-{uuid.uuid4().hex[:6]}.txt"
    sample.create_file(path, "through FUSE\n")
    text = wait_for(
        lambda: sample.exec(name, "cat", f"/mnt/lighthouse/project/current/{path}", check=False).stdout,
        timeout=30,
        message="the new file in the FUSE mount",
    )
    assert text == "through FUSE\n"


def test_pod_readiness_reaches_the_lighthousebridge_status(sample: Bridge) -> None:
    obj = sample.obj()
    components = json.dumps(obj["status"])
    assert obj["status"]["phase"] == "Ready" and "demo-bridge" in components, obj["status"]
    assert all(pod_ready(p) for p in sample.pods("bridge"))


# Last in this module: it restarts the bridge container.
def test_readiness_and_liveness_probes_are_run_by_the_kubelet(sample: Bridge) -> None:
    """Freeze PostgreSQL's container from the host: the bridge's /readyz fails, the kubelet takes the pod out of its
    Service and puts it back once PostgreSQL runs again. Then freeze the bridge's API process: /livez stops
    answering and the kubelet restarts the container."""
    bridge = sample.pod("bridge")
    with frozen(sample.pod("postgres"), "postgres"):
        # PostgreSQL's own liveness probe would restart it after 60 s: well after this.
        wait_for(lambda: not sample.pods("bridge", ready_only=True), timeout=45, message="bridge pod NotReady")
    wait_for(lambda: sample.pods("bridge", ready_only=True), timeout=90, message="bridge pod Ready again")
    events = sample.k("get", "events", "-n", sample.ns, "--field-selector",
                      f"involvedObject.name={bridge['metadata']['name']},reason=Unhealthy", "-o", "json")  # fmt: skip
    messages = [e["message"] for e in json.loads(events.stdout)["items"]]
    assert any("Readiness probe failed" in m for m in messages), messages
    assert sample.pod("bridge")["status"]["containerStatuses"][0]["restartCount"] == 0

    # The API process (`lighthouse-bridge serve`, under tini and the supervisor) stops answering /livez: three
    # failures 10 s apart, then a restart.
    os.kill(descendant(host_pid(sample.pod("bridge"), "bridge"), "serve"), signal.SIGSTOP)
    restarted = wait_for(
        lambda: (p := sample.pods("bridge")) and p[0]["status"]["containerStatuses"][0]["restartCount"] >= 1 and p[0],
        timeout=120,
        message="the kubelet restarting the frozen bridge",
    )
    last = restarted["status"]["containerStatuses"][0]["lastState"]
    assert "terminated" in last, last
    wait_for(lambda: sample.pods("bridge", ready_only=True), timeout=120, message="restarted bridge Ready")

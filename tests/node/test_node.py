"""The real node itself: which pods go where, one node per machine, a kubelet restart, and a `down` that leaves
nothing behind on the host. The last two are `disruptive` (hack/test.sh runs them after everything else)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.harness.cluster import Cluster, fake_node_namespace, wait_for

from .conftest import FUSE_RESOURCE, NODE, NODE_IP, REPO, Kubectl, RealNode, node_namespace, run_pod

NODE_SH = REPO / "hack" / "node.sh"
CLUSTER_SH = REPO / "hack" / "cluster.sh"
NODE_DIRS = ("/var/lib/kubelet", "/run/lighthouse-node", "/var/lib/lighthouse-node/volumes")


def test_pods_go_to_the_real_node_unless_their_namespace_asks_for_fake_ones(
    real_node: RealNode, tmp_path: Path
) -> None:
    cluster = real_node.cluster
    fakes = json.loads(cluster.kubectl("get", "nodes", "-l", "type=kwok", "-o", "json").stdout)["items"]
    assert fakes and all(
        {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"} in n["spec"].get("taints", [])
        for n in fakes
    )
    with node_namespace(cluster, "placement") as real_ns:
        fake_ns = f"{real_ns}-fake"
        cluster.kubectl("create", "-f", "-", input=json.dumps(fake_node_namespace(fake_ns)))
        try:
            wait_for(lambda: cluster.kubectl("get", "sa", "default", "-n", fake_ns), timeout=30, message="SA")
            phase, logs = run_pod(Kubectl(cluster, real_ns), real_node.refs["bridge"], "print('hello from a kubelet')")
            assert phase == "Succeeded" and logs.strip() == "hello from a kubelet", logs
            # The same pod in the opted-in namespace: scheduled to a fake node, where kwok "runs" it (no logs).
            fk = Kubectl(cluster, fake_ns)
            run_pod(fk, real_node.refs["bridge"], "print('never runs')", name="py", wait=False)
            pod = wait_for(lambda: (p := fk.get("pod", "py")) and p["spec"].get("nodeName") and p, timeout=60)
            assert pod["spec"]["nodeName"] in {n["metadata"]["name"] for n in fakes}
            real_pods = json.loads(cluster.kubectl("get", "pods", "-n", real_ns, "-o", "json").stdout)["items"]
            assert {p["spec"]["nodeName"] for p in real_pods} == {NODE}
        finally:
            cluster.kubectl("delete", "namespace", fake_ns, "--wait=false", check=False)


def test_one_real_node_per_machine(real_node: RealNode, tmp_path: Path) -> None:
    """Another checkout asking for a real node while ours runs is refused before anything starts."""
    state = tmp_path / "other-checkout"
    env = {
        **os.environ,
        "LIGHTHOUSE_STATE": str(state),
        "LIGHTHOUSE_CLUSTER_REAL_NODE": "1",
        "LIGHTHOUSE_CLUSTER_PORT": "31999",
    }
    proc = subprocess.run([CLUSTER_SH, "up"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    owner = subprocess.run([NODE_SH, "owner"], capture_output=True, text=True, check=True).stdout.strip()
    assert f"this machine's real node belongs to the cluster in {owner}" in proc.stderr, proc.stderr
    assert not (state / "kwok" / "clusters").exists()
    assert node_ready_now(real_node.cluster)


def node_ready_now(cluster: Cluster) -> bool:
    node = json.loads(cluster.kubectl("get", "node", NODE, "-o", "json").stdout)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])


def fuse_allocatable(cluster: Cluster) -> str:
    node = json.loads(cluster.kubectl("get", "node", NODE, "-o", "json").stdout)
    return node["status"]["allocatable"].get(FUSE_RESOURCE, "0")


@pytest.mark.disruptive
def test_a_kubelet_restart_recovers(real_node: RealNode) -> None:
    cluster = real_node.cluster
    dns = json.loads(cluster.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json").stdout)
    (before,) = [p["status"]["containerStatuses"][0] for p in dns["items"]]
    subprocess.run([NODE_SH, "restart-kubelet"], check=True, capture_output=True, timeout=300)
    assert node_ready_now(cluster)
    # Running containers are left alone: same container, no restart.
    dns = json.loads(cluster.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json").stdout)
    (after,) = [p["status"]["containerStatuses"][0] for p in dns["items"]]
    assert (after["containerID"], after["restartCount"]) == (before["containerID"], before["restartCount"])
    # The device plugin registered again with the new kubelet, and a pod that needs /dev/fuse starts.
    wait_for(lambda: fuse_allocatable(cluster) != "0", timeout=60, message="the FUSE resource back on the node")
    with node_namespace(cluster, "after-restart") as ns:
        k = Kubectl(cluster, ns)
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "fuse"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "c",
                        "image": real_node.refs["bridge"],
                        "command": ["sh", "-c", "test -c /dev/fuse && echo device-present"],
                        "resources": {"limits": {FUSE_RESOURCE: "1"}},
                    }
                ],
            },
        }
        k("apply", "-n", ns, "-f", "-", input=json.dumps(pod))
        wait_for(lambda: k.get("pod", "fuse")["status"]["phase"] == "Succeeded", timeout=120, message="fuse pod")
        assert k("logs", "-n", ns, "fuse").stdout.strip() == "device-present"


def host_traces() -> list[str]:
    """What a node leaves on this machine, if anything: processes, mounts, links, netfilter rules, cgroups, files."""
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if b"LIGHTHOUSE_NODE_DAEMON=1" in environ or "/run/lighthouse-node" in cmdline or NODE_IP in cmdline:
            found.append(f"process {proc.name}: {cmdline[:120]}")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4]
        if point.startswith(NODE_DIRS) or " nsfs " in line:
            found.append(f"mount {point}")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    found += [f"link {m}" for m in re.findall(r"^\d+: (lh-[^:@]+)", links, re.M)]
    found += [f"veth on lh-cni0: {line[:80]}" for line in links.splitlines() if "master lh-cni0" in line]
    for cmd in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        found += [f"{cmd[0]}: {line.strip()}" for line in out.splitlines()
                  if re.search(r"KUBE-|kube-proxy|10\.244\.|10\.96\.|10\.255\.0\.1|lh-cni0", line)]  # fmt: skip
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob("*/kubepods")]
    found += [f"directory {d}" for d in NODE_DIRS if Path(d).exists() and any(Path(d).iterdir())]
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout
    found += [f"listener {line.split()[3]}" for line in listening.splitlines()
              if re.search(rf"({re.escape(NODE_IP)}:\d+|:1025[0-6])\s", line + " ")]  # fmt: skip
    return found


@pytest.mark.disruptive
def test_down_leaves_nothing_behind_and_up_brings_the_node_back(real_node: RealNode) -> None:
    assert host_traces(), "the node should leave traces while it runs (else this test proves nothing)"
    forward = Path("/run/lighthouse-node/ip_forward.orig").read_text().strip()
    subprocess.run([CLUSTER_SH, "down"], check=True, capture_output=True, timeout=300)
    # Network namespaces of killed pods are freed by the kernel asynchronously: give it a moment.
    deadline = time.monotonic() + 30
    while (traces := host_traces()) and time.monotonic() < deadline:
        time.sleep(1)
    assert traces == []
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == forward
    assert subprocess.run([NODE_SH, "owner"], capture_output=True, check=False).returncode != 0
    # Up again, for whoever runs next: the node rejoins, with the images still in its containerd.
    env = {**os.environ, "LIGHTHOUSE_CLUSTER_REAL_NODE": "1"}
    subprocess.run([CLUSTER_SH, "up"], check=True, capture_output=True, timeout=900, env=env)
    cluster = real_node.cluster
    assert node_ready_now(cluster)
    with node_namespace(cluster, f"after-up-{uuid.uuid4().hex[:4]}") as ns:
        phase, logs = run_pod(Kubectl(cluster, ns), real_node.refs["bridge"], "print('back')")
    assert phase == "Succeeded" and logs.strip() == "back"

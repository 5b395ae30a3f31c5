"""The FUSE view in the bridge pod for each fuse.mode, on a real kubelet and containerd. (The default mode, csi through
the chart's node plugin, is in test_sample.py and, under Pod Security "restricted", in test_fuse_restricted.py.) One
bridge whose mode each test sets in turn: one bridge pod starts at a time, which the machine's 2 shared cores need."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import wait_for

from .conftest import FUSE_RESOURCE, NODE, Bridge, Kubectl, RealNode, node_namespace, node_operator, pod_ready


@pytest.fixture(scope="module")
def bridge(real_node: RealNode, crd: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with node_namespace(real_node.cluster, "fuse-modes") as ns:
        log = tmp_path_factory.mktemp("fuse") / "operator.log"
        with node_operator(real_node, [ns], log):
            yield Bridge(Kubectl(real_node.cluster, ns), "modes")


def set_mode(b: Bridge, mode: str) -> None:
    # A long deadline: no rollback may undo a mode while the test looks at it.
    b.apply({"fuse": {"mode": mode}, "rollout": {"progressDeadlineSeconds": 3600}})


def effective_caps(b: Bridge, pod: str) -> int:
    return int(b.proc_status(pod)["CapEff"], 16)


def test_privileged_mode_mounts(bridge: Bridge) -> None:
    b = bridge
    set_mode(b, "privileged")
    b.wait_ready()
    pod = b.pod()
    assert pod["spec"]["containers"][0]["securityContext"]["privileged"] is True
    name = pod["metadata"]["name"]
    # Ready comes first (a missing mount only degrades the bridge); the mount follows, and the operator reports it.
    wait_for(lambda: b.fuse_status(name)["mounted"], timeout=60, message=f"the mount in {name}")
    assert b.wait_fuse()["status"] == "True"
    assert b.exec(name, "ls", "/mnt/lighthouse/project").stdout.split() == [
        "context", "current", "debug", "history", "shadows", "streams",
    ]  # fmt: skip


def test_disabled_mode_serves_the_api_without_fuse_or_capabilities(bridge: Bridge) -> None:
    b = bridge
    set_mode(b, "disabled")
    b.wait_ready()
    pod = b.pod()
    sc = pod["spec"]["containers"][0]["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["capabilities"] == {"drop": ["ALL"]}, sc
    name = pod["metadata"]["name"]
    assert effective_caps(b, name) == 0
    assert b.exec(name, "id", "-u").stdout.strip() == "10001"
    mounts = b.exec(name, "cat", "/proc/mounts").stdout
    assert "/mnt/lighthouse/project" not in mounts
    assert not b.exec(name, "test", "-e", "/dev/fuse", check=False).returncode == 0


def test_capabilities_mode_is_refused_the_device_by_the_runtime(bridge: Bridge) -> None:
    """SYS_ADMIN and a hostPath /dev/fuse: the node (device cgroup) refuses the device to a container that is neither
    privileged nor given it by a device plugin. The mount fails and says why; the API keeps serving (the pod is Ready,
    the bridge degraded) and the operator's FuseAvailable condition carries the bridge's own error."""
    b = bridge
    set_mode(b, "capabilities")

    def started() -> dict | None:
        for p in b.pods():
            mounts = {v["name"] for v in p["spec"].get("volumes", [])}
            if "dev-fuse" in mounts and (p["status"].get("containerStatuses") or [{}])[0].get("started"):
                return p
        return None

    pod = wait_for(started, timeout=240, message="the capabilities-mode bridge container started")
    name = pod["metadata"]["name"]
    assert b.exec(name, "test", "-c", "/dev/fuse").returncode == 0  # the node is there (hostPath) ...
    opened = b.exec(name, "python3", "-c", "open('/dev/fuse', 'rb+')", check=False)
    assert opened.returncode != 0 and "Operation not permitted" in opened.stderr, opened.stderr  # ... but not usable
    status = wait_for(
        lambda: (s := b.fuse_status(name)) and s.get("error") and s, timeout=60, message="a FUSE status with an error"
    )
    assert status["mounted"] is False, status
    assert b.local_get(name, "/livez") == {"status": "ok"}
    # A FUSE failure degrades the bridge, never takes it out of its Service (docs/fuse-modes.md): the pod turns Ready
    # and /readyz says degraded, with the mount's error.
    wait_for(lambda: pod_ready(b.k.get("pod", name)), timeout=120, message=f"pod {name} Ready without its mount")
    readyz = b.local_get(name, "/readyz")
    assert readyz["status"] == "degraded" and readyz["checks"]["fuse"]["status"] == "not_mounted", readyz
    # The operator asked the pod's /health on its IP: FuseAvailable False, naming the pod. (The FUSE process is
    # restarted with back-off, so the error it quotes alternates between the mount's and the exit's.)
    cond = b.wait_fuse("NotMounted")
    assert cond["status"] == "False" and f"{name}: " in cond["message"], cond


def test_device_plugin_mode_mounts_with_sys_admin_only(bridge: Bridge) -> None:
    """/dev/fuse from the node's device plugin (the extended resource) and SYS_ADMIN alone, as root."""
    b = bridge
    set_mode(b, "devicePlugin")
    b.wait_ready()
    pod = next(
        p for p in b.pods() if FUSE_RESOURCE in (p["spec"]["containers"][0].get("resources") or {}).get("limits", {})
    )
    (c,) = pod["spec"]["containers"]
    sc = c["securityContext"]
    assert not sc.get("privileged") and sc["capabilities"] == {"drop": ["ALL"], "add": ["SYS_ADMIN"]}, sc
    assert c["resources"]["limits"][FUSE_RESOURCE] == "1"
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])  # the device comes from the plugin only
    name = pod["metadata"]["name"]
    wait_for(lambda: b.fuse_status(name)["mounted"], timeout=60, message=f"the mount in {name}")
    assert effective_caps(b, name) == 1 << 21  # CAP_SYS_ADMIN alone
    assert b.wait_fuse("Mounted")["status"] == "True"


# Last in this module: its pod never starts, and the bridge keeps the previous mode's pod.
def test_user_namespaces_mode_is_reported_unsupported_on_this_runtime(bridge: Bridge) -> None:
    """hostUsers: false needs containerd 2.x and runc 1.2+; the node runs Debian's containerd 1.6: the kubelet refuses
    the pod, and the operator's FuseAvailable says why, naming the node and its runtime."""
    b = bridge
    node = json.loads(b.k("get", "node", NODE, "-o", "json").stdout)
    runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
    if not runtime.startswith("containerd://1."):
        pytest.skip(f"the node runs {runtime}: this test is about a runtime without user namespaces")
    set_mode(b, "userNamespaces")
    pod = wait_for(
        lambda: next((p for p in b.pods() if p["spec"].get("hostUsers") is False), None),
        timeout=120,
        message="the userNamespaces bridge pod",
    )
    cond = b.wait_fuse("UserNamespacesUnsupported")
    assert cond["status"] == "False", cond
    assert f"node {NODE} runs {runtime}" in cond["message"] and "containerd 2.x" in cond["message"], cond
    name = pod["metadata"]["name"]

    def refusal() -> str:
        events = b.k("get", "events", "-n", b.ns, "--field-selector", f"involvedObject.name={name}", "-o", "json")
        return "\n".join(e["message"] for e in json.loads(events.stdout)["items"] if "user namespace" in e["message"])

    # The kubelet's own refusal, as an Event of the pod; the pod never turns Ready.
    assert wait_for(refusal, timeout=60, message=f"the kubelet's refusal of {name}")
    assert not pod_ready(b.k.get("pod", name))

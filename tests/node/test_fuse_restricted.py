"""fuse.mode csi on the real node: a LighthouseBridge in a namespace that enforces Pod Security "restricted" is
admitted, its pod holds no capability, and its shadow filesystem works, served by the chart's CSI node plugin (a
DaemonSet pod on the node) through a descriptor handed to the pod. The plugin restarting keeps the mount."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.cluster import wait_for

from .conftest import (
    NODE,
    Bridge,
    FusePlugin,
    Kubectl,
    RealNode,
    node_namespace,
    node_operator,
    pod_ready,
)

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
PROJECT = "/mnt/lighthouse/project"


@pytest.fixture(scope="module")
def restricted(
    real_node: RealNode, crd: Path, fuse_plugin: FusePlugin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bridge]:
    """One bridge in the default mode (the operator's default with the chart's plugin: csi), in a restricted
    namespace. Its managed PostgreSQL and Redis pass restricted too."""
    with node_namespace(real_node.cluster, "restricted") as ns:
        real_node.cluster.kubectl("label", "namespace", ns, *(f"{k}={v}" for k, v in RESTRICTED.items()))
        log = tmp_path_factory.mktemp("restricted") / "operator.log"
        with node_operator(real_node, [ns], log):
            b = Bridge(Kubectl(real_node.cluster, ns), "restricted")
            b.apply({"postgres": {"managed": {"storage": {"size": "64Mi"}}}})
            b.wait_ready()
            b.wait_fuse()  # Ready comes before the mount
            yield b


def grep(b: Bridge, pod: str, needle: str) -> list[str]:
    proc = b.exec(pod, "grep", "-r", "-l", needle, f"{PROJECT}/current", check=False)
    return proc.stdout.split()


def test_admitted_in_a_restricted_namespace_without_any_capability(restricted: Bridge) -> None:
    pod = restricted.pod()
    spec = pod["spec"]
    assert spec["nodeName"] == NODE
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]}, sc  # nothing added
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0 and sc["allowPrivilegeEscalation"] is False
    assert not sc.get("privileged") and "appArmorProfile" not in sc
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any("hostPath" in v for v in spec["volumes"])
    assert "resources" not in c or not any("/" in r for r in c["resources"].get("limits", {}))  # no device
    (mnt,) = [v for v in spec["volumes"] if v["name"] == "mnt"]
    assert mnt["csi"]["driver"] == "fuse.lighthouse.dev"
    # The kernel agrees: no capability in any set, no_new_privs, not root.
    status = restricted.proc_status(pod["metadata"]["name"])
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
    assert status["NoNewPrivs"].strip() == "1" and status["Uid"].split()[0] != "0", status


def test_the_namespace_really_enforces_restricted(restricted: Bridge) -> None:
    """The same namespace refuses a pod that adds SYS_ADMIN: the bridge was admitted by the policy, not around it."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "needs-sys-admin"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "localhost/whatever",
                    "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}},
                }
            ]
        },
    }
    proc = restricted.k("apply", "-n", restricted.ns, "-f", "-", input=json.dumps(pod), check=False)
    assert proc.returncode != 0 and "violates PodSecurity" in proc.stderr, proc.stderr


def test_grep_through_the_mount_finds_a_file_appended_through_the_api(restricted: Bridge) -> None:
    name = restricted.pod()["metadata"]["name"]
    status = restricted.fuse_status(name)
    assert status["mounted"] is True and status["mountpoint"] == PROJECT, status
    mounts = restricted.exec(name, "cat", "/proc/mounts").stdout.splitlines()
    (line,) = [m for m in mounts if m.split()[1] == PROJECT]
    assert line.split()[2] == "fuse.lighthouse" and "ro" in line.split()[3].split(","), line
    needle = f"needle-{uuid.uuid4().hex}"
    path = f"docs/{needle[:13]}.md"
    restricted.create_file(path, f"appended through the API: {needle}\n")
    found = wait_for(lambda: grep(restricted, name, needle), timeout=30, message="grep -r to find the new file")
    assert found == [f"{PROJECT}/current/{path}"]
    cond = restricted.wait_fuse("Mounted", timeout=90)
    assert cond["status"] == "True" and "mode csi" in cond["message"], cond


def fuse_pid(b: Bridge, pod: str) -> int:
    script = (
        "import os\n"
        "for p in os.listdir('/proc'):\n"
        "    if p.isdigit():\n"
        "        args = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')\n"
        "        if b'fuse' in args[1:3]:\n"
        "            print(p)\n"
    )
    pids = b.exec(pod, "python3", "-c", script).stdout.split()
    assert len(pids) == 1, pids
    return int(pids[0])


def test_the_plugin_restarting_keeps_the_mount_and_serves_a_new_one_after(
    restricted: Bridge, fuse_plugin: FusePlugin
) -> None:
    name = restricted.pod()["metadata"]["name"]
    before = fuse_plugin.pod()
    fuse_plugin.k("delete", "pod", "-n", fuse_plugin.ns, before["metadata"]["name"], "--wait=true")
    # The mount does not depend on the plugin: the pod's FUSE process holds its descriptor.
    needle = f"during-{uuid.uuid4().hex}"
    restricted.create_file(f"restart/{needle[:15]}.txt", f"{needle}\n")
    assert wait_for(lambda: grep(restricted, name, needle), timeout=30, message="grep while the plugin restarts")
    after = wait_for(
        lambda: (p := fuse_plugin.pod(ready_only=True)) and p["metadata"]["uid"] != before["metadata"]["uid"] and p,
        timeout=120,
        message="a new plugin pod Ready",
    )
    logs = fuse_plugin.k("logs", "-n", fuse_plugin.ns, after["metadata"]["name"], "-c", "csi").stdout
    assert "Recovered volume" in logs and f"pod={restricted.ns}/{name}" in logs, logs[-2000:]
    # The FUSE process dies: the supervisor starts another, which asks the new plugin for a new mount.
    old = fuse_pid(restricted, name)
    restricted.exec(name, "python3", "-c", f"import os; os.kill({old}, 9)")
    wait_for(
        lambda: fuse_pid(restricted, name) != old and restricted.fuse_status(name)["mounted"],
        timeout=90,
        message="a new FUSE process serving a new mount",
    )
    needle2 = f"after-{uuid.uuid4().hex}"
    restricted.create_file(f"restart/{needle2[:14]}.txt", f"{needle2}\n")
    assert wait_for(lambda: grep(restricted, name, needle2), timeout=30, message="grep after the FUSE restart")
    logs = fuse_plugin.k("logs", "-n", fuse_plugin.ns, after["metadata"]["name"], "-c", "csi").stdout
    assert "replaced=True" in logs, logs[-2000:]
    assert pod_ready(restricted.pod()) and restricted.pod()["status"]["containerStatuses"][0]["restartCount"] == 0

"""The FUSE node plugin image and the bridge image as a pod would run them (docs/fuse-modes.md, mode csi): the plugin
privileged with the kubelet directory shared (rshared), the bridge container as uid 10001 with every capability
dropped and no-new-privileges, its volume bind-mounted with slave propagation. The plugin publishes the volume
(NodePublishVolume from a real gRPC client); the FUSE mount appears inside the running bridge container only after
its FUSE process asked for it, and serves the project."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.containers import Container, Images, podman, running_container, wait_for
from tests.e2e.test_bridge_container import bridge_flags, free_port, project_tree, wait_ready
from tests.integration.csi.harness import csi_stubs, publish_request

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/fuse"), reason="the plugin container mounts FUSE: root and /dev/fuse"
)


@pytest.fixture
def kubelet_dir() -> Iterator[Path]:
    """A stand-in for /var/lib/kubelet: a shared mount, as the kubelet makes its own root."""
    d = Path(tempfile.mkdtemp(prefix="lh-e2e-kubelet-"))
    subprocess.run(["mount", "--bind", str(d), str(d)], check=True)
    subprocess.run(["mount", "--make-rshared", str(d)], check=True)
    try:
        yield d
    finally:
        with open("/proc/self/mountinfo") as f:
            mounts = sorted((line.split()[4] for line in f if line.split()[4].startswith(str(d))), reverse=True)
        for m in mounts:
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", str(d)], check=False)


@contextlib.contextmanager
def plugin_and_bridge(
    images: Images, postgres_url: str, redis_url: str, tmp_path: Path, kubelet_dir: Path
) -> Iterator[tuple[Container, Container]]:
    """The plugin container, a volume it published (NodePublishVolume from a real gRPC client, as the kubelet calls
    it), and the restricted bridge container with that volume, once its FUSE process has the mount."""
    plugin_flags = ["--privileged", "-v", f"{kubelet_dir}:{kubelet_dir}:rshared"]
    args = ["--kubelet-dir", str(kubelet_dir), "serve", "--node-id", "e2e", "--no-registration"]
    with running_container(images.fuse_plugin, *args, flags=plugin_flags, name_prefix="lighthouse-e2e-plugin") as pl:
        sock = kubelet_dir / "plugins" / "fuse.lighthouse.dev" / "csi.sock"
        wait_for(lambda: sock.exists() and pl.running(), timeout=60, what="the plugin's CSI socket")
        target = kubelet_dir / "pods" / "e2e-pod" / "volumes" / "kubernetes.io~csi" / "mnt" / "mount"
        target.parent.mkdir(parents=True)
        ch, _, node = csi_stubs(str(sock))
        with ch:
            node.NodePublishVolume(publish_request("e2e-vol", str(target)), timeout=10)
        port = free_port()
        flags = [
            *bridge_flags(port, postgres_url, redis_url, project_tree(tmp_path), "enabled"),
            "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--read-only", "--tmpfs", "/tmp", "--tmpfs", "/run/lighthouse",
            "-v", f"{target}:/mnt/lighthouse:rslave",
            "-e", "LIGHTHOUSE_FUSE_FD_SOCKET=/mnt/lighthouse/.lighthouse-fuse.sock",
        ]  # fmt: skip
        with running_container(images.bridge, "run", flags=flags) as bridge:
            body = wait_ready(bridge, port)
            assert body["checks"]["fuse"]["status"] in ("mounted", "not_mounted")  # readiness never waits for FUSE
            wait_for(lambda: mounted(bridge), timeout=120, what="the FUSE mount in the bridge container")
            yield pl, bridge


def mounted(bridge: Container) -> bool:
    return bool(json.loads(bridge.exec("cat", "/run/lighthouse/fuse-status.json").stdout)["mounted"])


def grep(bridge: Container) -> list[str]:
    return bridge.exec("grep", "-r", "-l", "lighthouse e2e", "/mnt/lighthouse/project/current").stdout.split()


def fuse_pid(bridge: Container) -> int:
    """The bridge's FUSE process (`lighthouse-bridge fuse ...`), found through /proc."""
    script = (
        "import os\n"
        "for p in filter(str.isdigit, os.listdir('/proc')):\n"
        "    if b'fuse' in open(f'/proc/{p}/cmdline', 'rb').read().split(b'\\0')[1:3]:\n"
        "        print(p)\n"
    )
    (pid,) = bridge.exec("python3", "-c", script).stdout.split()
    return int(pid)


def test_restricted_bridge_container_serves_the_plugins_mount(
    images: Images, postgres_url: str, redis_url: str, tmp_path: Path, kubelet_dir: Path
) -> None:
    with plugin_and_bridge(images, postgres_url, redis_url, tmp_path, kubelet_dir) as (pl, bridge):
        lines = bridge.exec("cat", "/proc/1/status").stdout.splitlines()
        status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
        assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"].strip() == "1", status
        assert grep(bridge) == ["/mnt/lighthouse/project/current/src/main.py"]
        logs = podman("logs", pl.name).stderr
        assert "Mounted FUSE for the pod volume_id=e2e-vol" in logs, logs[-2000:]


def test_the_plugin_restarting_keeps_the_mount_and_serves_the_next_one(
    images: Images, postgres_url: str, redis_url: str, tmp_path: Path, kubelet_dir: Path
) -> None:
    """docs/fuse-modes.md: a running mount does not depend on the plugin (the pod's FUSE process holds the only
    descriptor); a restarted plugin listens again on the volumes it published, and serves the pod's next FUSE
    process a fresh mount in place of the dead one."""
    with plugin_and_bridge(images, postgres_url, redis_url, tmp_path, kubelet_dir) as (pl, bridge):
        podman("stop", "--time", "10", pl.name)
        # The plugin is gone: the mount serves a file not read before.
        assert bridge.exec("cat", "/mnt/lighthouse/project/current/README.md").stdout == "# e2e\n"
        podman("start", pl.name)
        wait_for(lambda: "Recovered volume volume_id=e2e-vol" in podman("logs", pl.name).stderr, timeout=60,
                 what="the restarted plugin to recover the volume")  # fmt: skip
        assert grep(bridge) == ["/mnt/lighthouse/project/current/src/main.py"]
        # The FUSE process dies: the bridge's supervisor starts another, which asks the restarted plugin for a mount.
        old = fuse_pid(bridge)
        bridge.exec("python3", "-c", f"import os; os.kill({old}, 9)")
        wait_for(lambda: fuse_pid(bridge) != old and mounted(bridge), timeout=120, what="a new FUSE process mounted")
        assert "replaced=True" in podman("logs", pl.name).stderr
        assert grep(bridge) == ["/mnt/lighthouse/project/current/src/main.py"]

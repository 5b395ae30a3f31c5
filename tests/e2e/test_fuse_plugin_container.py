"""The FUSE node plugin image and the bridge image as a pod would run them (docs/fuse-modes.md, mode csi): the plugin
privileged with the kubelet directory shared (rshared), the bridge container as uid 10001 with every capability
dropped and no-new-privileges, its volume bind-mounted with slave propagation. The plugin publishes the volume
(NodePublishVolume from a real gRPC client); the FUSE mount appears inside the running bridge container only after
its FUSE process asked for it, and serves the project."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.containers import Images, podman, running_container, wait_for
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


def test_restricted_bridge_container_serves_the_plugins_mount(
    images: Images, postgres_url: str, redis_url: str, tmp_path: Path, kubelet_dir: Path
) -> None:
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
            wait_for(
                lambda: json.loads(bridge.exec("cat", "/run/lighthouse/fuse-status.json").stdout)["mounted"],
                timeout=120,
                what="the FUSE mount in the bridge container",
            )
            lines = bridge.exec("cat", "/proc/1/status").stdout.splitlines()
            status = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
            assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"].strip() == "1", status
            found = bridge.exec("grep", "-r", "-l", "lighthouse e2e", "/mnt/lighthouse/project/current").stdout.split()
            assert found == ["/mnt/lighthouse/project/current/src/main.py"], found
            assert body["checks"]["fuse"]["status"] in ("mounted", "not_mounted")  # readiness never waits for FUSE
            logs = podman("logs", pl.name).stderr
            assert "Mounted FUSE for the pod volume_id=e2e-vol" in logs, logs[-2000:]

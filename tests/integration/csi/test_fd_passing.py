"""fuse.mode csi on this host, end to end with real parts: the CSI node plugin (root) publishes a volume through its
gRPC interface, an unprivileged FUSE process of the bridge (another uid, no capabilities, no_new_privs) asks the
volume's socket for a mount, gets the /dev/fuse descriptor and serves /dev/fd/N; reads through the mount return
what the bridge's API holds. Then: the FUSE process restarting, the plugin restarting, unpublishing."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.csi.harness import POD_UID, Plugin, PodFuse, csi_stubs, kubelet_target, publish_request
from tests.integration.fs.harness import Bridge, wait_until


@pytest.fixture
def work() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="lh-pod-"))
    d.chmod(0o777)
    try:
        yield d
    finally:
        subprocess.run(["rm", "-rf", str(d)], check=False)


def fuse_mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) and " - fuse" in line for line in f)


def statvfs_errno(path: Path) -> int:
    """statvfs() always reaches the FUSE server (reads may come from the page cache of a dead mount)."""
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno or -1
    return 0


def test_unprivileged_fuse_process_serves_the_plugins_mount(
    bridge: Bridge, kubelet_dir: Path, work: Path, tmp_path: Path
) -> None:
    from lighthouse_csi.proto import csi_pb2

    bridge.put("src/app.py", b"print('hello from the shadow')\n")
    plugin = Plugin(kubelet_dir, tmp_path / "plugin.log").start()
    target = kubelet_target(kubelet_dir)
    assert len(str(target / ".lighthouse-fuse.sock")) > 107  # longer than sun_path: the plugin must cope
    target.parent.mkdir(parents=True)  # the kubelet makes the parent, the plugin the target
    fuses: list[PodFuse] = []
    try:
        ch, _, node = csi_stubs(plugin.csi_socket)
        with ch:
            node.NodePublishVolume(publish_request("csi-vol-1", str(target), readonly=True), timeout=10)
        sock = target / ".lighthouse-fuse.sock"
        st = sock.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (POD_UID, POD_UID, 0o660)
        assert (target / "project").is_dir() and not fuse_mounted(target / "project")

        fuse = PodFuse(bridge.url, target, work)
        fuses.append(fuse)
        fuse.wait_mounted()
        status = fuse.proc_status()
        assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0, status
        assert status["NoNewPrivs"].strip() == "1" and status["Uid"].split()[0] == str(POD_UID)
        assert fuse_mounted(target / "project")
        assert (target / "project/current/src/app.py").read_bytes() == b"print('hello from the shadow')\n"
        # The plugin mounted it read-only, as asked, nosuid and nodev.
        with open("/proc/self/mountinfo") as f:
            line = next(line for line in f if line.split()[4] == str(target / "project"))
        assert {"ro", "nosuid", "nodev"} <= set(line.split()[5].split(",")), line
        grep = subprocess.run(
            ["grep", "-r", "-l", "hello from the shadow", str(target / "project/current")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert grep.stdout.split() == [str(target / "project/current/src/app.py")], grep

        # The FUSE process dies hard: the mount is dead (ENOTCONN) until the next process asks for a new one.
        fuse.stop(signal.SIGKILL)
        assert statvfs_errno(target / "project") in (errno.ENOTCONN, errno.ECONNABORTED)
        bridge.put("src/later.txt", b"after the restart\n")
        fuse = PodFuse(bridge.url, target, work)
        fuses.append(fuse)
        fuse.wait_mounted()
        assert (target / "project/current/src/later.txt").read_bytes() == b"after the restart\n"
        mounts = [line for line in open("/proc/self/mountinfo") if line.split()[4] == str(target / "project")]
        assert len(mounts) == 1, mounts  # the dead mount was replaced, not stacked under the new one

        # The plugin restarting (killed, not even a clean stop) does not touch a running mount ...
        plugin.stop(signal.SIGKILL)
        assert (target / "project/current/src/app.py").read_bytes() == b"print('hello from the shadow')\n"
        # ... and once it is back, it answers on the volume's socket again (a FUSE restart needs it).
        plugin = Plugin(kubelet_dir, tmp_path / "plugin.log").start()
        assert "Recovered volume volume_id=csi-vol-1" in plugin.log()
        fuse.stop(signal.SIGKILL)
        fuse = PodFuse(bridge.url, target, work)
        fuses.append(fuse)
        fuse.wait_mounted()
        assert (target / "project/current/src/later.txt").read_bytes() == b"after the restart\n"

        ch, _, node = csi_stubs(plugin.csi_socket)
        with ch:
            node.NodeUnpublishVolume(
                csi_pb2.NodeUnpublishVolumeRequest(volume_id="csi-vol-1", target_path=str(target)), timeout=10
            )
        assert not fuse_mounted(target / "project")
        assert not target.exists()
        # The served process sees its connection go away and exits.
        wait_until(lambda: fuse.proc.poll() is not None, 30, 0.1, "the FUSE process to end after the unmount")
    finally:
        for f in fuses:
            f.stop(signal.SIGKILL)
        plugin.stop()


def test_a_pod_without_the_plugin_reports_why(bridge: Bridge, kubelet_dir: Path, work: Path) -> None:
    """No plugin behind the socket (not running, or restarting): the FUSE process waits and says so."""
    import json

    target = kubelet_target(kubelet_dir)
    target.mkdir(parents=True)
    (target / "project").mkdir()
    fuse = PodFuse(bridge.url, target, work)
    try:
        status = wait_until(
            lambda: (
                (doc := json.loads(fuse.status_file.read_text()))
                .get("error", "")
                .startswith("waiting for the FUSE node plugin")
                and doc
            ),
            60,
            0.1,
            "a status saying it waits for the plugin",
        )
        assert status["mounted"] is False
        assert fuse.proc.poll() is None  # it keeps trying
    finally:
        fuse.stop()
    assert os.listdir(target / "project") == []

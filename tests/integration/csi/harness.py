"""The FUSE CSI node plugin as a real process (`lighthouse-fuse-csi serve`, as root, on a temporary kubelet
directory) and a real gRPC client of it; an unprivileged FUSE process of the bridge (no capabilities, no_new_privs,
another uid), as a restricted pod's process would be."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.fs.harness import REPO, bridge_cmd, wait_until

POD_UID = 10001
SKIP_REASON = (
    "the plugin mounts FUSE itself: needs root and /dev/fuse"
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse")
    else None
)


def csi_stubs(socket_path: str) -> tuple[grpc.Channel, Any, Any]:
    from lighthouse_csi.proto import csi_pb2_grpc

    ch = grpc.insecure_channel(f"unix://{socket_path}")
    return ch, csi_pb2_grpc.IdentityStub(ch), csi_pb2_grpc.NodeStub(ch)


class Plugin:
    """`lighthouse-fuse-csi serve` with its kubelet directory in `kubelet_dir`."""

    def __init__(self, kubelet_dir: Path, log: Path, registration: bool = False) -> None:
        self.kubelet_dir = kubelet_dir
        self.csi_socket = str(kubelet_dir / "plugins" / "fuse.lighthouse.dev" / "csi.sock")
        self.reg_socket = str(kubelet_dir / "plugins_registry" / "fuse.lighthouse.dev-reg.sock")
        self.registration = registration
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Plugin:
        args = [
            sys.executable,
            "-m",
            "lighthouse_csi.cli",
            "--kubelet-dir",
            str(self.kubelet_dir),
            "serve",
            "--node-id",
            "test-node",
        ]
        if not self.registration:
            args.append("--no-registration")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            args, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
        log.close()
        wait_until(self._answers, 30, 0.05, "the plugin's CSI socket")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"plugin exited with {self.proc.returncode}: {self.log()[-2000:]}")
        from lighthouse_csi.proto import csi_pb2

        if not os.path.exists(self.csi_socket):
            return False
        ch, ident, _ = csi_stubs(self.csi_socket)
        with ch:
            try:
                return bool(ident.Probe(csi_pb2.ProbeRequest(), timeout=2).ready.value)
            except grpc.RpcError:
                return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return None if self.proc is None else self.proc.returncode


def publish_request(
    volume_id: str, target: str, uid: int = POD_UID, readonly: bool = False, block: bool = False
) -> Any:
    from lighthouse_csi.proto import csi_pb2

    cap = csi_pb2.VolumeCapability(
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER)
    )
    if block:
        cap.block.SetInParent()
    else:
        cap.mount.SetInParent()
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=volume_id,
        target_path=target,
        volume_capability=cap,
        readonly=readonly,
        volume_context={
            "uid": str(uid),
            "gid": str(uid),
            "csi.storage.k8s.io/ephemeral": "true",
            "csi.storage.k8s.io/pod.name": "bridge-0",
            "csi.storage.k8s.io/pod.namespace": "test",
        },
    )


def kubelet_target(kubelet_dir: Path, pod_uid: str | None = None) -> Path:
    """The path the kubelet would give: long enough that its socket path exceeds sun_path's 107 bytes."""
    pod_uid = pod_uid or str(uuid.uuid4())
    return kubelet_dir / "pods" / pod_uid / "volumes" / "kubernetes.io~csi" / "lighthouse-fuse" / "mount"


@pytest.fixture
def kubelet_dir() -> Iterator[Path]:
    """A stand-in for /var/lib/kubelet that another uid can traverse (pytest's tmp_path is 0700)."""
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    d = Path(tempfile.mkdtemp(prefix="lh-kubelet-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        # Detach whatever a failed test left mounted below it, deepest first, before removing the tree.
        with open("/proc/self/mountinfo") as f:
            mounts = sorted((line.split()[4] for line in f if line.split()[4].startswith(str(d))), reverse=True)
        for m in mounts:
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def unprivileged(*cmd: str, uid: int = POD_UID) -> list[str]:
    """What a restricted pod's process is: another uid, no supplementary groups, no capability in any set, and
    no_new_privs (no setuid fusermount3 either)."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--ambient-caps=-all",
        "--bounding-set=-all",
        "--",
        *cmd,
    ]


class PodFuse:
    """`lighthouse-bridge fuse` as the pod's unprivileged process, getting its mount from the plugin's socket."""

    def __init__(self, bridge_url: str, target: Path, work: Path) -> None:
        self.mountpoint = target / "project"
        run = uuid.uuid4().hex[:6]  # a status file per process: a killed one leaves "mounted" in its own
        self.status_file = work / f"fuse-status-{run}.json"
        self.log_path = work / f"fuse-{run}.log"
        env = dict(
            os.environ,
            PYTHONPATH=str(REPO),
            LIGHTHOUSE_FUSE_STATUS_FILE=str(self.status_file),
            LIGHTHOUSE_FUSE_FD_SOCKET=str(target / ".lighthouse-fuse.sock"),
            TMPDIR=str(work),
            HOME=str(work),
        )
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            unprivileged(*bridge_cmd("fuse", "--mountpoint", str(self.mountpoint), "--bridge-url", bridge_url)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_mounted(self, timeout: float = 60) -> None:
        import json

        def mounted() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"FUSE process exited with {self.proc.returncode}: {self.log()[-3000:]}")
            try:
                return json.loads(self.status_file.read_text()).get("mounted") is True
            except (OSError, ValueError):
                return False

        try:
            wait_until(mounted, timeout, 0.05, "the pod's FUSE process to serve its mount")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nFUSE process log:\n{self.log()[-3000:]}") from None

    def proc_status(self) -> dict[str, str]:
        """/proc/<pid>/status of the FUSE process (setpriv execs it: same pid)."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

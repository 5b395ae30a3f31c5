"""The CSI node plugin's pure parts: requests -> volumes, mountinfo parsing, the fd-passing messages, and the
generated code matching its pins."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from lighthouse_csi import kernel
from lighthouse_csi.proto import csi_pb2
from lighthouse_csi.server import InvalidVolume, volume_from_request
from lighthouse_fusefd import MountRequest, ProtocolError, request_mount, send_error, send_mount

REPO = Path(__file__).resolve().parents[3]


def request(**ctx: str) -> csi_pb2.NodePublishVolumeRequest:
    cap = csi_pb2.VolumeCapability()
    cap.mount.SetInParent()
    return csi_pb2.NodePublishVolumeRequest(
        volume_id="csi-1", target_path="/var/lib/kubelet/pods/p/mount/", volume_capability=cap, volume_context=ctx
    )


def test_volume_from_request_takes_ids_and_pod_from_the_context() -> None:
    vol = volume_from_request(
        request(
            uid="10001", gid="10002", **{"csi.storage.k8s.io/pod.name": "b-0", "csi.storage.k8s.io/pod.namespace": "ns"}
        )
    )
    assert (vol.uid, vol.gid, vol.pod, vol.readonly) == (10001, 10002, "ns/b-0", False)
    assert vol.target == "/var/lib/kubelet/pods/p/mount"  # normalised
    assert vol.socket_path == "/var/lib/kubelet/pods/p/mount/.lighthouse-fuse.sock"
    assert vol.mount_dir == "/var/lib/kubelet/pods/p/mount/project"
    assert volume_from_request(request()).uid == 65532  # the bridge image's user when the pod says nothing


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: setattr(r, "target_path", "relative/path"), "absolute"),
        (lambda r: setattr(r, "volume_id", ""), "volume_id"),
        (lambda r: r.volume_capability.block.SetInParent(), "mount volumes"),
        (lambda r: r.volume_context.update(uid="-1"), "out of range"),
        (lambda r: r.volume_context.update(gid="x"), "number"),
    ],
)
def test_volume_from_request_refuses(change, message: str) -> None:
    r = request()
    change(r)
    with pytest.raises(InvalidVolume, match=message):
        volume_from_request(r)


def test_mountinfo_parsing_unescapes_and_reads_the_type(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "90 22 0:50 / /var/lib/kubelet/pods/a\\040b/mount/project ro,nosuid,nodev - fuse.lighthouse lighthouse "
        "ro,user_id=10001\n"
        "91 22 0:51 / /other rw - tmpfs tmpfs rw\n"
    )
    assert kernel.mount_points(str(info))[1] == ("/var/lib/kubelet/pods/a b/mount/project", "fuse.lighthouse")
    assert kernel.fuse_mounted_at("/var/lib/kubelet/pods/a b/mount/project", str(info))
    assert not kernel.fuse_mounted_at("/other", str(info))


def test_fuse_mount_options() -> None:
    assert kernel.fuse_options(7, 10001, 10002) == (
        "fd=7,rootmode=40000,user_id=10001,group_id=10002,allow_other,default_permissions"
    )


def test_request_round_trip_and_refusals() -> None:
    assert MountRequest.decode(MountRequest(readonly=False).encode()) == MountRequest(readonly=False)
    for bad, match in (
        (b"{", "not JSON"),
        (b'{"op": "umount"}', "unknown request"),
        (b'{"op": "mount", "readonly": "yes"}', "true or false"),
    ):
        with pytest.raises(ProtocolError, match=match):
            MountRequest.decode(bad)


def _serve_once(tmp_path: Path, answer) -> str:
    import threading

    path = str(tmp_path / "s.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)

    def run() -> None:
        conn, _ = srv.accept()
        with conn, srv:
            conn.recv(4096)
            answer(conn)

    threading.Thread(target=run, daemon=True).start()
    return path


def test_descriptor_arrives_with_the_answer(tmp_path: Path) -> None:
    (tmp_path / "payload").write_text("through the descriptor")

    def answer(conn: socket.socket) -> None:
        with open(tmp_path / "payload") as f:
            send_mount(conn, f.fileno())

    fd, doc = request_mount(_serve_once(tmp_path, answer), timeout=5)
    with open(fd) as f:
        assert f.read() == "through the descriptor"
    assert doc == {"ok": True, "mountpoint": "project"}


def test_refusal_is_raised_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="mount failed on the node: EPERM"):
        request_mount(_serve_once(tmp_path, lambda c: send_error(c, "mount failed on the node: EPERM")), timeout=5)


def test_generated_code_matches_its_pins() -> None:
    """hack/update-csi-proto.sh's pins, the generated code and the runtime floor in pyproject.toml agree."""
    from lighthouse_csi import proto

    script = (REPO / "hack/update-csi-proto.sh").read_text()
    assert f"CSI_SPEC_VERSION=v{proto.CSI_SPEC_VERSION}" in script
    assert f"KUBELET_VERSION=v{proto.KUBELET_VERSION}" in script
    assert f"GRPCIO_TOOLS_VERSION={proto.GRPCIO_TOOLS_VERSION}" in script
    assert (
        f"# Protobuf Python Version: {proto.PROTOBUF_GENCODE_VERSION}"
        in (REPO / "nodeplugin/lighthouse_csi/proto/csi_pb2.py").read_text()
    )
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'"protobuf>={proto.PROTOBUF_GENCODE_VERSION},<8"' in pyproject
    assert re.search(rf'"grpcio>={re.escape(proto.GRPCIO_TOOLS_VERSION)},<2"', pyproject)
    assert csi_pb2.DESCRIPTOR.package == "csi.v1"

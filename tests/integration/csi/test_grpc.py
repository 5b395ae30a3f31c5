"""The CSI node plugin's gRPC services against a real gRPC client: identity, node info, publish and unpublish into
a temporary target, refusals, idempotency, and the kubelet's plugin registration service."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from tests.integration.csi.harness import Plugin, csi_stubs, kubelet_target, publish_request


@pytest.fixture
def plugin(kubelet_dir: Path, tmp_path: Path):
    p = Plugin(kubelet_dir, tmp_path / "plugin.log", registration=True).start()
    yield p
    p.stop()


def test_identity_and_node_info(plugin: Plugin) -> None:
    from lighthouse_csi.proto import csi_pb2

    ch, ident, node = csi_stubs(plugin.csi_socket)
    with ch:
        info = ident.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5)
        assert info.name == "fuse.lighthouse.dev" and info.vendor_version
        assert list(ident.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5).capabilities) == []
        assert node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=5).node_id == "test-node"
        assert list(node.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest(), timeout=5).capabilities) == []


def test_registration_service_points_the_kubelet_at_the_csi_socket(plugin: Plugin) -> None:
    from lighthouse_csi.proto import pluginregistration_pb2, pluginregistration_pb2_grpc

    with grpc.insecure_channel(f"unix://{plugin.reg_socket}") as ch:
        stub = pluginregistration_pb2_grpc.RegistrationStub(ch)
        info = stub.GetInfo(pluginregistration_pb2.InfoRequest(), timeout=5)
        assert (info.type, info.name, info.endpoint) == ("CSIPlugin", "fuse.lighthouse.dev", plugin.csi_socket)
        assert list(info.supported_versions) == ["1.0.0"]
        stub.NotifyRegistrationStatus(
            pluginregistration_pb2.RegistrationStatus(plugin_registered=False, error="test says no"), timeout=5
        )
    assert "The kubelet refused the registration driver=fuse.lighthouse.dev error=test says no" in plugin.log()


def test_publish_and_unpublish_into_a_temp_target(plugin: Plugin, kubelet_dir: Path) -> None:
    from lighthouse_csi.proto import csi_pb2

    target = kubelet_target(kubelet_dir)
    target.parent.mkdir(parents=True)
    ch, _, node = csi_stubs(plugin.csi_socket)
    with ch:
        node.NodePublishVolume(publish_request("vol-a", str(target)), timeout=5)
        node.NodePublishVolume(publish_request("vol-a", str(target)), timeout=5)  # idempotent
        assert sorted(p.name for p in target.iterdir()) == [".lighthouse-fuse.sock", "project"]
        (state,) = (kubelet_dir / "plugins/fuse.lighthouse.dev/volumes").glob("*.json")
        assert json.loads(state.read_text())["target"] == str(target)
        # The same volume at another target is refused; so is a block volume or a bad uid.
        other = target.parent / "other"
        with pytest.raises(grpc.RpcError) as err:
            node.NodePublishVolume(publish_request("vol-a", str(other)), timeout=5)
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        with pytest.raises(grpc.RpcError) as err:
            node.NodePublishVolume(publish_request("vol-b", str(other), block=True), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "mount volumes" in err.value.details()
        bad = publish_request("vol-c", str(other))
        bad.volume_context["uid"] = "root"
        with pytest.raises(grpc.RpcError) as err:
            node.NodePublishVolume(bad, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "uid" in err.value.details()
        assert not other.exists()

        req = csi_pb2.NodeUnpublishVolumeRequest(volume_id="vol-a", target_path=str(target))
        node.NodeUnpublishVolume(req, timeout=5)
        assert not target.exists() and not state.exists()
        node.NodeUnpublishVolume(req, timeout=5)  # idempotent: already gone is success

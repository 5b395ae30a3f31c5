"""The gRPC services: CSI Identity and Node (on the CSI endpoint the kubelet calls) and the kubelet's plugin
registration (on a socket in the kubelet's plugins_registry directory, which the kubelet watches): the plugin
registers itself, without the node-driver-registrar sidecar and its image."""

from __future__ import annotations

import logging
import os
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import wrappers_pb2

from . import DRIVER_NAME, __version__
from .proto import csi_pb2, csi_pb2_grpc, pluginregistration_pb2, pluginregistration_pb2_grpc
from .volumes import Volume, Volumes

log = logging.getLogger(__name__)

# Set by the kubelet in volume_context (CSIDriver podInfoOnMount: true; ephemeral inline volumes).
CTX_EPHEMERAL = "csi.storage.k8s.io/ephemeral"
CTX_POD_NAME = "csi.storage.k8s.io/pod.name"
CTX_POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace"
# Set by the pod's volumeAttributes: the user and group the mount belongs to (the pod's runAsUser/runAsGroup).
ATTR_UID = "uid"
ATTR_GID = "gid"
DEFAULT_ID = 65532  # the bridge image's user


class InvalidVolume(ValueError):
    pass


def _id(ctx: dict[str, str], key: str) -> int:
    raw = ctx.get(key)
    if raw is None or raw == "":
        return DEFAULT_ID
    try:
        value = int(raw)
    except ValueError:
        raise InvalidVolume(f"volumeAttributes.{key} must be a number, not {raw!r}") from None
    if not 0 <= value < 2**32 - 1:
        raise InvalidVolume(f"volumeAttributes.{key} {value} is out of range")
    return value


def volume_from_request(req: Any) -> Volume:
    """A NodePublishVolumeRequest -> Volume, or InvalidVolume saying what is wrong."""
    if not req.volume_id:
        raise InvalidVolume("volume_id is required")
    if not req.target_path or not os.path.isabs(req.target_path):
        raise InvalidVolume("target_path must be an absolute path")
    cap = req.volume_capability
    if not cap.HasField("mount"):
        raise InvalidVolume("only mount volumes are supported (this driver serves a filesystem, not a block device)")
    ctx = dict(req.volume_context)
    pod = f"{ctx.get(CTX_POD_NAMESPACE, '')}/{ctx.get(CTX_POD_NAME, '')}".strip("/")
    return Volume(
        volume_id=req.volume_id,
        target=os.path.normpath(req.target_path),
        uid=_id(ctx, ATTR_UID),
        gid=_id(ctx, ATTR_GID),
        readonly=bool(req.readonly),
        pod=pod,
    )


class Identity(csi_pb2_grpc.IdentityServicer):
    def GetPluginInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.GetPluginInfoResponse(name=DRIVER_NAME, vendor_version=__version__)

    def GetPluginCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        # No controller service: volumes are ephemeral inline volumes, published on the node only.
        return csi_pb2.GetPluginCapabilitiesResponse()

    def Probe(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.ProbeResponse(ready=wrappers_pb2.BoolValue(value=True))


class Node(csi_pb2_grpc.NodeServicer):
    def __init__(self, volumes: Volumes, node_id: str):
        self.volumes = volumes
        self.node_id = node_id

    def NodeGetCapabilities(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.NodeGetCapabilitiesResponse()  # no staging, no volume stats

    def NodeGetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return csi_pb2.NodeGetInfoResponse(node_id=self.node_id)

    def NodePublishVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            vol = volume_from_request(request)
        except InvalidVolume as exc:
            log.warning("Refused NodePublishVolume volume_id=%s error=%s", request.volume_id, exc)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            if not self.volumes.publish(vol):
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"volume {vol.volume_id} is published elsewhere")
        except OSError as exc:
            log.error("NodePublishVolume failed volume_id=%s target=%s error=%s", vol.volume_id, vol.target, exc)
            context.abort(grpc.StatusCode.INTERNAL, f"publishing {vol.target}: {exc}")
        return csi_pb2.NodePublishVolumeResponse()

    def NodeUnpublishVolume(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.volume_id or not request.target_path:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "volume_id and target_path are required")
        try:
            self.volumes.unpublish(request.volume_id, os.path.normpath(request.target_path))
        except OSError as exc:
            log.error("NodeUnpublishVolume failed volume_id=%s error=%s", request.volume_id, exc)
            context.abort(grpc.StatusCode.INTERNAL, str(exc))
        return csi_pb2.NodeUnpublishVolumeResponse()


class Registration(pluginregistration_pb2_grpc.RegistrationServicer):
    """The kubelet's plugin watcher calls GetInfo on our registration socket, then tells us the outcome."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint  # the CSI socket, as the kubelet sees it
        self.registered: bool | None = None
        self.error = ""

    def GetInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        return pluginregistration_pb2.PluginInfo(
            type="CSIPlugin", name=DRIVER_NAME, endpoint=self.endpoint, supported_versions=["1.0.0"]
        )

    def NotifyRegistrationStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.registered, self.error = request.plugin_registered, request.error
        if request.plugin_registered:
            log.info("Registered with the kubelet driver=%s endpoint=%s", DRIVER_NAME, self.endpoint)
        else:
            log.error("The kubelet refused the registration driver=%s error=%s", DRIVER_NAME, request.error)
        return pluginregistration_pb2.RegistrationStatusResponse()


@dataclass
class Servers:
    csi: grpc.Server
    registration: grpc.Server | None
    registrar: Registration | None

    def stop(self, grace: float = 2.0) -> None:
        if self.registration is not None:
            self.registration.stop(grace).wait()
        self.csi.stop(grace).wait()


def _unix(path: str) -> str:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return f"unix://{path}"


def start(
    volumes: Volumes,
    node_id: str,
    csi_socket: str,
    registration_socket: str | None = None,
    kubelet_endpoint: str | None = None,
) -> Servers:
    """Serves the CSI services on csi_socket; then, when registration_socket is given, the registration service there
    (created last: the kubelet calls the CSI endpoint as soon as it sees the registration socket)."""
    os.makedirs(os.path.dirname(csi_socket), exist_ok=True)
    csi = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="csi"))
    csi_pb2_grpc.add_IdentityServicer_to_server(Identity(), csi)
    csi_pb2_grpc.add_NodeServicer_to_server(Node(volumes, node_id), csi)
    csi.add_insecure_port(_unix(csi_socket))
    csi.start()
    log.info("Serving CSI driver=%s version=%s node=%s endpoint=%s", DRIVER_NAME, __version__, node_id, csi_socket)
    if not registration_socket:
        return Servers(csi, None, None)
    os.makedirs(os.path.dirname(registration_socket), exist_ok=True)
    registrar = Registration(kubelet_endpoint or csi_socket)
    reg = grpc.server(futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="registration"))
    pluginregistration_pb2_grpc.add_RegistrationServicer_to_server(registrar, reg)
    reg.add_insecure_port(_unix(registration_socket))
    reg.start()
    log.info("Waiting for the kubelet to register us socket=%s", registration_socket)
    return Servers(csi, reg, registrar)

"""`lighthouse-fuse-csi serve|probe`: the CSI node plugin's process (a DaemonSet container of the chart)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType

from . import DRIVER_NAME

DEFAULT_KUBELET_DIR = "/var/lib/kubelet"


def _paths(args: argparse.Namespace) -> tuple[str, str, str]:
    plugin_dir = args.plugin_dir or os.path.join(args.kubelet_dir, "plugins", DRIVER_NAME)
    csi_socket = args.csi_socket or os.path.join(plugin_dir, "csi.sock")
    state_dir = args.state_dir or os.path.join(plugin_dir, "volumes")
    return plugin_dir, csi_socket, state_dir


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import start
    from .volumes import Volumes

    if not args.node_id:
        print("lighthouse-fuse-csi: --node-id (or NODE_NAME) is required", file=sys.stderr)
        return 2
    _, csi_socket, state_dir = _paths(args)
    reg_socket = None
    if not args.no_registration:
        reg_socket = os.path.join(args.kubelet_dir, "plugins_registry", f"{DRIVER_NAME}-reg.sock")
    volumes = Volumes(state_dir)
    recovered = volumes.recover()
    servers = start(volumes, args.node_id, csi_socket, reg_socket, kubelet_endpoint=csi_socket)
    logging.getLogger(__name__).info("Plugin started recovered_volumes=%d state=%s", recovered, state_dir)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("Stopping on signal signal=%s", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    # The registration socket goes first: the kubelet deregisters the driver and stops sending us volumes. Published
    # volumes stay (their mounts are served by the pods); a new plugin process listens on them again.
    if reg_socket:
        try:
            os.unlink(reg_socket)
        except FileNotFoundError:
            pass
    servers.stop()
    volumes.stop()
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Exit 0 when the plugin answers Probe on its CSI socket (the DaemonSet's liveness probe)."""
    import grpc

    from .proto import csi_pb2, csi_pb2_grpc

    _, csi_socket, _ = _paths(args)
    try:
        with grpc.insecure_channel(f"unix://{csi_socket}") as ch:
            resp = csi_pb2_grpc.IdentityStub(ch).Probe(csi_pb2.ProbeRequest(), timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"probe failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    return 0 if resp.ready.value else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="lighthouse-fuse-csi", description=f"CSI node plugin {DRIVER_NAME}")
    p.add_argument(
        "--kubelet-dir",
        default=os.environ.get("KUBELET_DIR", DEFAULT_KUBELET_DIR),
        help="the kubelet's root directory, at the same path as on the node (default /var/lib/kubelet)",
    )
    p.add_argument("--plugin-dir", default=None, help=f"default KUBELET_DIR/plugins/{DRIVER_NAME}")
    p.add_argument("--csi-socket", default=None, help="default PLUGIN_DIR/csi.sock")
    p.add_argument("--state-dir", default=None, help="published volumes (default PLUGIN_DIR/volumes)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the CSI node and identity services and register with the kubelet")
    s.add_argument("--node-id", default=os.environ.get("NODE_NAME"), help="this node's name (env NODE_NAME)")
    s.add_argument("--no-registration", action="store_true", help="do not register with the kubelet (tests)")
    s.set_defaults(func=cmd_serve)
    pr = sub.add_parser("probe", help="exit 0 when the plugin answers on its CSI socket")
    pr.add_argument("--timeout", type=float, default=5.0)
    pr.set_defaults(func=cmd_probe)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

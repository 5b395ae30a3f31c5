"""lighthouse-operator: run the LighthouseBridge operator.

    lighthouse-operator --namespace team-a [--namespace team-b]   # only these namespaces
    lighthouse-operator --all-namespaces                          # cluster-wide (the default)
    lighthouse-operator --leader-elect --leader-election-namespace NS   # one of several replicas: a Lease decides

Everything listens on 127.0.0.1 unless told otherwise (in a Pod, pass --bind 0.0.0.0 for probes and scraping).
With --leader-elect, a replica that does not hold the Lease stands by: it watches the Lease and nothing else (no
reconcile, no write) and takes over when the leader goes; a leader that cannot renew the Lease exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from typing import Any

from lighthouse_operator import __version__
from lighthouse_operator.models import (
    DEFAULT_BRIDGE_IMAGE,
    DEFAULT_POSTGRES_IMAGE,
    DEFAULT_REDIS_IMAGE,
    DEFAULTS,
    FUSE_MODES,
    FUSE_MODES_WITH_DEVICE,
    OperatorDefaults,
)

LOST_LEADERSHIP = 3  # exit status: the pod restarts and comes back as a standby

# The fields of models.OperatorDefaults a flag --default-<field> (env LIGHTHOUSE_DEFAULT_<FIELD>) sets.
DEFAULT_FLAGS = (
    ("bridge_image", "IMAGE", f"spec.image (default {DEFAULT_BRIDGE_IMAGE})"),
    ("postgres_image", "IMAGE", f"spec.postgres.managed.image (default {DEFAULT_POSTGRES_IMAGE})"),
    ("redis_image", "IMAGE", f"spec.redis.managed.image (default {DEFAULT_REDIS_IMAGE})"),
    ("fuse_mode", "MODE", f"spec.fuse.mode: {', '.join(FUSE_MODES)} (default capabilities)"),
    ("fuse_device_plugin_resource", "RESOURCE", "spec.fuse.devicePluginResource, e.g. lighthouse.dev/fuse"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="lighthouse-operator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch only this namespace (repeatable; globs such as team-* work)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    p.add_argument(
        "--bind",
        default=os.environ.get("LIGHTHOUSE_OPERATOR_BIND", "127.0.0.1"),
        help="address for the metrics and liveness endpoints (default 127.0.0.1)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("LIGHTHOUSE_OPERATOR_METRICS_PORT", 9469)),
        help="Prometheus metrics port; 0 turns it off (default 9469)",
    )
    p.add_argument(
        "--liveness-port",
        type=int,
        default=int(os.environ.get("LIGHTHOUSE_OPERATOR_LIVENESS_PORT", 9470)),
        help="liveness endpoint port (/healthz); 0 turns it off (default 9470)",
    )
    p.add_argument(
        "--resync-seconds", type=float, default=None, help="periodic level-based check of every resource (default 30)"
    )
    p.add_argument("--workers", type=int, default=16, help="LighthouseBridges reconciled at the same time (default 16)")
    p.add_argument(
        "--no-watch-secrets",
        dest="watch_secrets",
        action="store_false",
        help="read the Secrets the operator generates by name instead of watching them (for RBAC without list and "
        "watch on Secrets, as the chart grants in cluster mode)",
    )
    le = p.add_argument_group("leader election (a coordination.k8s.io/v1 Lease)")
    le.add_argument("--leader-elect", action="store_true", help="run as one of several replicas: only the leader works")
    le.add_argument(
        "--leader-election-namespace",
        default=os.environ.get("POD_NAMESPACE"),
        help="namespace of the Lease (default: $POD_NAMESPACE)",
    )
    le.add_argument("--leader-election-id", default="lighthouse-operator", help="name of the Lease")
    le.add_argument(
        "--leader-election-identity",
        default=None,
        help="this replica's name in the Lease (default: $POD_NAME or the host name, plus a random suffix)",
    )
    le.add_argument("--lease-duration", type=float, default=10.0, help="seconds a Lease lasts unrenewed (10)")
    le.add_argument("--renew-deadline", type=float, default=8.0, help="seconds the leader tries to renew (8)")
    le.add_argument("--renew-period", type=float, default=3.0, help="seconds between renewals (3)")
    defaults = p.add_argument_group(
        "defaults", "for LighthouseBridges that leave these fields out (each also read from the environment)"
    )
    for field, metavar, what in DEFAULT_FLAGS:
        flag = field.replace("_", "-")
        variable = f"LIGHTHOUSE_DEFAULT_{field.upper()}"
        defaults.add_argument(
            f"--default-{flag}",
            default=os.environ.get(variable),
            metavar=metavar,
            help=f"{what}; env {variable}",
        )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs from the operator")
    p.add_argument("--debug", action="store_true", help="debug logs from kopf too")
    args = p.parse_args(argv)
    if args.default_fuse_mode not in (None, "", *FUSE_MODES):
        p.error(f"the default FUSE mode must be one of {', '.join(FUSE_MODES)}, not {args.default_fuse_mode!r}")
    if args.default_fuse_mode in FUSE_MODES_WITH_DEVICE and not args.default_fuse_device_plugin_resource:
        p.error(f"--default-fuse-mode {args.default_fuse_mode} needs --default-fuse-device-plugin-resource")
    return args


def apply_defaults(args: argparse.Namespace, defaults: OperatorDefaults) -> None:
    """Copies the --default-* settings that were given into `defaults` (models.DEFAULTS at run time)."""
    for field, _, _ in DEFAULT_FLAGS:
        value = getattr(args, f"default_{field}")
        if value:
            setattr(defaults, field, value)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    in_cluster = os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token")
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not in_cluster and not all(os.path.exists(p) for p in kubeconfig.split(os.pathsep) if p):
        print(
            f"lighthouse-operator: no credentials: {kubeconfig} does not exist and this is not a pod with a "
            "service account (set KUBECONFIG)",
            file=sys.stderr,
        )
        return 2
    if args.leader_elect and not args.leader_election_namespace:
        print("lighthouse-operator: --leader-elect needs --leader-election-namespace", file=sys.stderr)
        return 2
    apply_defaults(args, DEFAULTS)
    if args.resync_seconds is not None:
        # Read by main.py when it is imported, so it must be set before the import below.
        os.environ["LIGHTHOUSE_OPERATOR_RESYNC_SECONDS"] = str(args.resync_seconds)

    import kopf
    from prometheus_client import start_http_server

    from . import main as registrations
    from . import memory
    from .leader import Timings

    try:
        timings = Timings(args.lease_duration, args.renew_period, args.renew_deadline)
    except ValueError as e:
        print(f"lighthouse-operator: {e}", file=sys.stderr)
        return 2
    kopf.configure(debug=args.debug, verbose=args.debug, log_format=kopf.LogFormat.PLAIN)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        force=True,
    )
    if not args.debug:
        logging.getLogger("kopf").setLevel(logging.WARNING)
        logging.getLogger("aiohttp").setLevel(logging.WARNING)
    log = logging.getLogger("lighthouse_operator")

    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.bind)
    liveness = f"http://{args.bind}:{args.liveness_port}/healthz" if args.liveness_port else None
    namespaces = args.namespace
    registrations.setup(namespaces or None, registrations.RESYNC_SECONDS, args.workers, args.watch_secrets)
    memory.install(lambda: registrations.RUNTIME.cache)
    log.info(
        "Starting lighthouse-operator scope=%s metrics=%s:%s liveness=%s leader_election=%s defaults=%s",
        ",".join(namespaces) if namespaces else "all-namespaces",
        args.bind,
        args.metrics_port,
        liveness,
        f"{args.leader_election_namespace}/{args.leader_election_id}" if args.leader_elect else "off",
        DEFAULTS,
    )
    try:
        return asyncio.run(serve(args, timings))
    except KeyboardInterrupt:
        return 0


async def serve(args: argparse.Namespace, timings: Any) -> int:
    """Stand by until leading (with --leader-elect), then run kopf until a signal; then release the Lease."""
    import kopf

    from . import main as registrations
    from .health import Health

    log = logging.getLogger("lighthouse_operator")
    health = Health()
    health.details = registrations.details
    beat = asyncio.ensure_future(health.heartbeat())
    if args.liveness_port:
        health.serve(args.bind, args.liveness_port)
    elector = None
    if args.leader_elect:
        identity = args.leader_election_identity or (
            f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        )
        elector = registrations.elector(args.leader_election_namespace, args.leader_election_id, identity, timings)
        health.role = "standby"
        if not await stand_by(elector):
            beat.cancel()
            return 0

        def lost(why: str) -> None:
            # Past the deadline another replica may lead already: stop every write now, and let the pod restart.
            log.error("Exiting: leadership lost (%s)", why)
            logging.shutdown()
            os._exit(LOST_LEADERSHIP)

        elector.keep(lost)
    health.role = "leader" if elector else "standalone"
    try:
        await kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=True,  # no kopf peering objects: the Lease above decides who works
        )
    finally:
        if elector is not None:
            await elector.release()
        beat.cancel()
    return 0


async def stand_by(elector: Any) -> bool:
    """Wait for the Lease; False when a signal came first (then nothing was ever done)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    acquired = asyncio.ensure_future(elector.acquire())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({acquired, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)  # kopf installs its own
        stopped.cancel()
    if not acquired.done():
        acquired.cancel()
        await asyncio.gather(acquired, return_exceptions=True)
        return False
    acquired.result()
    return True


if __name__ == "__main__":
    sys.exit(main())

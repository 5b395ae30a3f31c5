"""lighthouse-operator: run the LighthouseBridge operator.

    lighthouse-operator --namespace team-a [--namespace team-b]   # only these namespaces
    lighthouse-operator --all-namespaces                          # cluster-wide (the default)

Everything listens on 127.0.0.1 unless told otherwise (in a Pod, pass --bind 0.0.0.0 for probes and scraping).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from lighthouse_operator import __version__


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
    p.add_argument("-v", "--verbose", action="store_true", help="debug logs from the operator")
    p.add_argument("--debug", action="store_true", help="debug logs from kopf too")
    return p.parse_args(argv)


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
    if args.resync_seconds is not None:
        # Read by main.py when it is imported, so it must be set before the import below.
        os.environ["LIGHTHOUSE_OPERATOR_RESYNC_SECONDS"] = str(args.resync_seconds)

    import kopf
    from prometheus_client import start_http_server

    from . import main as registrations

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
    registrations.setup(namespaces or None, registrations.RESYNC_SECONDS, args.workers)
    log.info(
        "Starting lighthouse-operator scope=%s metrics=%s:%s liveness=%s",
        ",".join(namespaces) if namespaces else "all-namespaces",
        args.bind,
        args.metrics_port,
        liveness,
    )
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0


async def serve(args: argparse.Namespace) -> int:
    """Run kopf (and with it the cache and the reconcile) until a signal, with /healthz served from a thread."""
    import kopf

    from . import main as registrations
    from .health import Health

    health = Health()
    health.details = registrations.details
    beat = asyncio.ensure_future(health.heartbeat())
    if args.liveness_port:
        health.serve(args.bind, args.liveness_port)
    health.role = "standalone"
    try:
        await kopf.operator(
            clusterwide=not args.namespace,
            namespaces=args.namespace,
            standalone=True,  # no kopf peering objects; one replica
        )
    finally:
        beat.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())

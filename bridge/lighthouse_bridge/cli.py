"""`lighthouse-bridge`: serve the API, print the version or the settings; FUSE and backup subcommands plug in."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from types import FrameType
from typing import Any

from lighthouse_bridge import __version__
from lighthouse_bridge.core.config import DEFAULT_PORT, Settings, load


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (+ CLI overrides); exits 2 with every offending LIGHTHOUSE_* variable named."""
    return load(Settings, **overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from lighthouse_bridge.main import create_app

    settings = load_settings(host=args.host, port=args.port)
    _configure_logging(settings.log_level)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        from lighthouse_bridge.metrics import REGISTRY

        start_http_server(settings.metrics_port, addr=settings.host, registry=REGISTRY)
        logging.getLogger(__name__).info("Serving metrics port=%d", settings.metrics_port)
    app = create_app(settings)

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Open event streams end themselves (complete responses) while uvicorn waits for them to finish.
            if (runtime := getattr(app.state, "runtime", None)) is not None:
                runtime.drain()
            super().handle_exit(sig, frame)

    # timeout_graceful_shutdown bounds the wait for any response that does not end on its own.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    DrainingServer(config).run()
    return 0


def cmd_version(_: argparse.Namespace) -> int:
    print(__version__)
    return 0


def cmd_config(_: argparse.Namespace) -> int:
    from lighthouse_bridge.core.config import describe

    for var, default, desc in describe():
        print(f"{var}\n    default: {default}\n    {desc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lighthouse-bridge", description="Lighthouse bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    serve.add_argument("--host", default=None, help="bind address (env LIGHTHOUSE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help=f"port (env LIGHTHOUSE_PORT, default {DEFAULT_PORT})")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("version", help="print the version").set_defaults(func=cmd_version)
    sub.add_parser("config", help="list every LIGHTHOUSE_* setting").set_defaults(func=cmd_config)
    # Subcommands owned by other packages plug in when present.
    for module in (
        "lighthouse_bridge.fs.cli",
        "lighthouse_bridge.backup.cli",
        "lighthouse_bridge.agents.cli",
        "lighthouse_bridge.health_check",
    ):
        try:
            mod = __import__(module, fromlist=["add_subcommands"])
        except ImportError:
            continue
        mod.add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

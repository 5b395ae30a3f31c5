"""Subcommands `fuse` and `run`, added to the bridge CLI by `add_subcommands(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .status import DEFAULT_MOUNT_POINT, MountConfig


def default_bridge_url() -> str:
    """LIGHTHOUSE_BRIDGE_URL, else the API's own port (LIGHTHOUSE_PORT) on loopback."""
    return os.environ.get("LIGHTHOUSE_BRIDGE_URL") or f"http://127.0.0.1:{os.environ.get('LIGHTHOUSE_PORT') or 8765}"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mountpoint", default=os.environ.get("LIGHTHOUSE_MOUNT_POINT", DEFAULT_MOUNT_POINT),
                   help="where to mount (env LIGHTHOUSE_MOUNT_POINT; default %(default)s)")
    p.add_argument("--bridge-url", default=default_bridge_url(),
                   help="bridge API: http://127.0.0.1:PORT or unix:///path.sock (env LIGHTHOUSE_BRIDGE_URL; "
                        "default http://127.0.0.1:$LIGHTHOUSE_PORT, port 8765)")
    p.add_argument("--writable", action="store_true",
                   default=os.environ.get("LIGHTHOUSE_FUSE_WRITABLE", "").lower() in ("1", "true", "yes"),
                   help="allow writes in current/ (env LIGHTHOUSE_FUSE_WRITABLE=true)")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fuse", help="mount the shadow filesystem (FUSE) and follow the bridge")
    _common(p)
    p.set_defaults(func=cmd_fuse, handler=cmd_fuse)
    r = subparsers.add_parser("run", help="container entrypoint: supervise the API and the FUSE mount")
    _common(r)
    r.add_argument("--fuse-mode", choices=["auto", "enabled", "disabled"],
                   default=os.environ.get("LIGHTHOUSE_FUSE_MODE", "auto"),
                   help="disabled: API only (env LIGHTHOUSE_FUSE_MODE)")
    r.set_defaults(func=cmd_run, handler=cmd_run)


def _setup_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=os.environ.get("LIGHTHOUSE_LOG_LEVEL", "INFO").upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the log


def _config(args: argparse.Namespace) -> MountConfig:
    return MountConfig.from_env(mountpoint=args.mountpoint, bridge_url=args.bridge_url, writable=args.writable)


def cmd_fuse(args: argparse.Namespace) -> int:
    from .mount import run_mount  # pyfuse3 is imported only by the commands that mount

    _setup_logging()
    return run_mount(_config(args))


def cmd_run(args: argparse.Namespace) -> int:
    from .supervisor import supervise

    _setup_logging()
    return supervise(_config(args), mode=args.fuse_mode)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m lighthouse_bridge.fs.cli fuse ...`) while the bridge CLI is being written."""
    parser = argparse.ArgumentParser(prog="lighthouse-bridge")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

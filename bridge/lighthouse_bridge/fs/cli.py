"""Subcommands `fuse` and `run`, added to the bridge CLI by `add_subcommands(subparsers)`."""

from __future__ import annotations

import argparse
import logging
import sys

from lighthouse_bridge.core.config import DEFAULT_PORT, FuseSettings, load

from .status import DEFAULT_MOUNT_POINT, MountConfig

# Flags default to None: the environment (core.config.FuseSettings) fills what a flag leaves unset.


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mountpoint", default=None,
                   help=f"where to mount (env LIGHTHOUSE_MOUNT_POINT; default {DEFAULT_MOUNT_POINT})")
    p.add_argument("--bridge-url", default=None,
                   help="bridge API: http://127.0.0.1:PORT or unix:///path.sock (env LIGHTHOUSE_BRIDGE_URL; "
                        f"default http://127.0.0.1:$LIGHTHOUSE_PORT, port {DEFAULT_PORT})")
    p.add_argument("--writable", action="store_true", default=None,
                   help="allow writes in current/ (env LIGHTHOUSE_FUSE_WRITABLE=true)")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("fuse", help="mount the shadow filesystem (FUSE) and follow the bridge")
    _common(p)
    p.set_defaults(func=cmd_fuse, handler=cmd_fuse)
    r = subparsers.add_parser("run", help="container entrypoint: supervise the API and the FUSE mount")
    _common(r)
    r.add_argument("--fuse-mode", choices=["auto", "enabled", "disabled"], default=None,
                   help="disabled: API only (env LIGHTHOUSE_FUSE_MODE; default auto)")
    r.set_defaults(func=cmd_run, handler=cmd_run)


def _setup_logging(settings: FuseSettings) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown the log


def _config(args: argparse.Namespace, settings: FuseSettings) -> MountConfig:
    return MountConfig.from_settings(settings, mountpoint=args.mountpoint, bridge_url=args.bridge_url,
                                     writable=args.writable)


def cmd_fuse(args: argparse.Namespace) -> int:
    from .mount import run_mount  # pyfuse3 is imported only by the commands that mount

    settings = load(FuseSettings)
    _setup_logging(settings)
    return run_mount(_config(args, settings))


def cmd_run(args: argparse.Namespace) -> int:
    from .supervisor import supervise

    settings = load(FuseSettings)
    _setup_logging(settings)
    return supervise(_config(args, settings), mode=args.fuse_mode or settings.fuse_mode)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m lighthouse_bridge.fs.cli fuse ...`) while the bridge CLI is being written."""
    parser = argparse.ArgumentParser(prog="lighthouse-bridge")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""CLI subcommands of the agents package (loaded by lighthouse_bridge.cli)."""

from __future__ import annotations

import argparse

from lighthouse_bridge.core.config import DEFAULT_BRIDGE_URL


def _hook(args: argparse.Namespace) -> int:
    from lighthouse_bridge.agents.hook import main

    return main(args.url, args.token, args.wait)


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hook", help="pre-tool hook: validate a tool call read from stdin (exit 0 approved, 2 blocked)")
    p.add_argument(
        "--url",
        default=None,
        help=f"bridge URL (env LIGHTHOUSE_BRIDGE_URL, default {DEFAULT_BRIDGE_URL} on LIGHTHOUSE_PORT)",
    )
    p.add_argument("--token", default=None, help="agent token (env LIGHTHOUSE_TOKEN)")
    p.add_argument(
        "--wait",
        type=float,
        default=None,
        help="seconds to wait for an escalation decision (env LIGHTHOUSE_HOOK_WAIT, default 120)",
    )
    p.set_defaults(func=_hook)

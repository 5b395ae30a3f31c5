"""The same validation decision through each agent front end, against one real bridge on 127.0.0.1:
POST /validate, Claude Code's HTTP hook (POST /hooks/claude-code), and the MCP tool validate_command over streamable
HTTP (an initialize-handshake session, and the 2026-07-28 protocol without a session). The ratio is against
/validate in the same run.

    .venv/bin/python benchmarks/agent_fronts_bench.py [--requests 500]

Sequential requests on one keep-alive connection each; the command is a decision-cache hit (the cheapest decision),
so the figures are the cost of each front end's framing, authentication and serialisation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bridge import agents_env, append_results, bridge, fresh_database, mint, services_env

ADMIN = "bench-admin-token"
CALL = {"tool_name": "Bash", "tool_input": {"command": "git status"}}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


async def timed(n: int, call: Callable[[], Awaitable[None]]) -> list[float]:
    await call()  # warm: connection, session, decision cache
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


async def http_front(url: str, token: str, n: int, path: str, body: dict[str, object]) -> list[float]:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:

        async def call() -> None:
            r = await c.post(path, json=body)
            if r.status_code != 200:
                raise SystemExit(f"{path}: {r.status_code} {r.text}")

        return await timed(n, call)


async def mcp_front(url: str, token: str, n: int, mode: str) -> list[float]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as hc:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=hc), mode=mode) as client:

            async def call() -> None:
                r = await client.call_tool("validate_command", CALL)
                if r.is_error:
                    raise SystemExit(f"validate_command: {r.content}")

            return await timed(n, call)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=500)
    args = ap.parse_args()
    env = services_env()
    hook_body = {
        "session_id": "s",
        "transcript_path": "/t.jsonl",
        "cwd": "/w",
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_use_id": "toolu_1",
        **CALL,
    }
    with fresh_database(env) as dsn, tempfile.TemporaryDirectory() as tmp:
        benv = agents_env(env, dsn, tmp, "fronts", ADMIN)
        with bridge(benv, Path(tmp) / "bridge.log") as url:
            token = mint(url, ADMIN, "bench", "builder")
            n = args.requests
            results = {
                "POST /validate": asyncio.run(http_front(url, token, n, "/validate", CALL)),
                "POST /hooks/claude-code": asyncio.run(http_front(url, token, n, "/hooks/claude-code", hook_body)),
                "MCP validate_command, session (handshake)": asyncio.run(mcp_front(url, token, n, "legacy")),
                "MCP validate_command, 2026-07-28 (no session)": asyncio.run(mcp_front(url, token, n, "auto")),
            }
    base = pct(results["POST /validate"], 0.5)
    lines = ["| front end | p50 | p99 | p50 vs /validate |", "|---|---|---|---|"]
    for name, lat in results.items():
        lines.append(f"| {name} | {pct(lat, 0.5):.2f} ms | {pct(lat, 0.99):.2f} ms | {pct(lat, 0.5) / base:.2f}x |")
    append_results(
        "agent_fronts_bench",
        f"python benchmarks/agent_fronts_bench.py --requests {args.requests}",
        [f"{n} sequential decision-cache hits per front end, one client connection each.", "", *lines],
    )


if __name__ == "__main__":
    main()

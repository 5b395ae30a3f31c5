"""POST /validate latency for a decision-cache hit vs a cache miss, against a real bridge on 127.0.0.1.

    .venv/bin/python benchmarks/validate_bench.py [--requests 2000] [--concurrency 8]

Hit: the same safe command each time (served from the Redis decision cache after the first request).
Miss: a new command each time (`ls dir-<n>`): policy evaluation plus the cache write.
Both paths write an audit line and queue a decision event (appended in batches in the background).
Latency is measured by the client per request (keep-alive connections); the bridge's own processing_time_ms is
reported alongside. Sequential first (one connection), then `--concurrency` connections in parallel.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bridge import agents_env, append_results, bridge, fresh_database, mint, services_env

ADMIN = "bench-admin-token"


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


async def run(url: str, token: str, n: int, conc: int, kind: str, offset: int) -> tuple[list[float], list[float]]:
    lat: list[float] = []
    server: list[float] = []
    counter = iter(range(n))
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30
    ) as c:

        async def worker() -> None:
            for i in counter:
                cmd = "git status" if kind == "hit" else f"ls dir-{offset + i}"
                t0 = time.perf_counter()
                r = await c.post("/validate", json={"tool_name": "Bash", "tool_input": {"command": cmd}})
                lat.append((time.perf_counter() - t0) * 1000)
                body = r.json()
                if r.status_code != 200 or body["cache_hit"] is not (kind == "hit"):
                    raise SystemExit(f"unexpected answer for {kind}: {r.status_code} {body}")
                server.append(body["processing_time_ms"])

        if kind == "hit":  # warm the cache entry
            await c.post("/validate", json={"tool_name": "Bash", "tool_input": {"command": "git status"}})
        await asyncio.gather(*(worker() for _ in range(conc)))
    return lat, server


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    env = services_env()
    lines = []
    with fresh_database(env) as dsn, tempfile.TemporaryDirectory() as tmp:
        benv = agents_env(env, dsn, tmp, "validate", ADMIN)
        with bridge(benv, Path(tmp) / "bridge.log") as url:
            token = mint(url, ADMIN, "bench", "builder")
            offset = 0
            for conc in (1, args.concurrency):
                for kind in ("hit", "miss"):
                    t0 = time.perf_counter()
                    lat, server = asyncio.run(run(url, token, args.requests, conc, kind, offset))
                    wall = time.perf_counter() - t0
                    offset += args.requests
                    lines.append(
                        f"- /validate cache {kind}, {conc} connection(s), {args.requests} requests: "
                        f"p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms (client); "
                        f"server processing p50 {pct(server, 0.5):.2f} ms, p99 {pct(server, 0.99):.2f} ms; "
                        f"{args.requests / wall:.0f} req/s"
                    )
    append_results(
        "validate_bench",
        f"python benchmarks/validate_bench.py --requests {args.requests} --concurrency {args.concurrency}",
        lines,
    )


if __name__ == "__main__":
    main()

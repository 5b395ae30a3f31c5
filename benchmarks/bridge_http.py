"""/health and /shadow/read on one uvicorn worker: max throughput (wrk) and latency at a fixed 1000 req/s, plus
the Redis cache effect (same data, one bridge with Redis, one without, in the same run).

    .venv/bin/python benchmarks/bridge_http.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bridge import append_results, bridge, ensure_wrk, fresh_database, paced, services_env, wrk


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=float, default=1000)
    args = ap.parse_args()
    env = services_env()
    wrk_bin = ensure_wrk()
    lines = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    with fresh_database(env) as db:
        common = {"LIGHTHOUSE_DATABASE_URL": db}
        cached = {
            **common,
            "LIGHTHOUSE_REDIS_URL": env["LIGHTHOUSE_REDIS_URL"],
            "LIGHTHOUSE_REDIS_PREFIX": f"bench:{tmp.name}:",
        }
        with bridge(cached, tmp / "cached.log") as url:
            content = "x = 1\n" * 700  # ~4 KiB source file
            r = httpx.post(
                url + "/shadow/update", json={"operation": "create", "path": "src/app.py", "content": content}
            )
            r.raise_for_status()
            read = "/shadow/read/src/app.py"
            # History for the time-travel listing: 300 files, then 300 more events after the point we list at.
            blob = b"y = 2\n" * 50
            sha = hashlib.sha256(blob).hexdigest()
            httpx.put(f"{url}/blobs/{sha}", content=blob).raise_for_status()
            for start in (0, 300):
                evs = [
                    {
                        "event_type": "file_created",
                        "aggregate_id": f"pkg/m{i}.py",
                        "aggregate_type": "file",
                        "data": {"sha256": sha},
                    }
                    for i in range(start, start + 300)
                ]
                httpx.post(url + "/events", json={"events": evs}, timeout=60).raise_for_status()
            past = "/shadow/list?at=200&prefix=pkg/"
            for path in ("/health", read):
                res = paced(url, path, args.rate, args.seconds)
                lines.append(
                    f"- paced {path} at {res['rate']:.0f} req/s: achieved {res['achieved_rps']:.0f} req/s, "
                    f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, max {res['max_ms']:.1f} ms, "
                    f"errors {res['errors']}"
                )
            if wrk_bin:
                for path in ("/health", read):
                    w = wrk(wrk_bin, url + path, args.seconds)
                    lines.append(
                        f"- wrk max {path} (16 conns, 1 thread): {w['rps']:.0f} req/s, "
                        f"p50 {w['p50_ms']:.2f} ms, p99 {w['p99_ms']:.2f} ms, non-2xx {w['non2xx']:.0f}"
                    )
                with_cache = wrk(wrk_bin, url + read, args.seconds)
                past_cache = wrk(wrk_bin, url + past, args.seconds)
        with bridge(common, tmp / "nocache.log") as url2:  # same database, no LIGHTHOUSE_REDIS_URL
            if wrk_bin:
                without = wrk(wrk_bin, url2 + read, args.seconds)
                past_without = wrk(wrk_bin, url2 + past, args.seconds)
                lines.append(
                    f"- Redis cache effect on {past} (time travel: snapshot + replay): "
                    f"{past_cache['rps']:.0f} req/s with Redis vs {past_without['rps']:.0f} req/s without = "
                    f"{past_cache['rps'] / past_without['rps']:.2f}x"
                )
                lines.append(
                    f"- Redis cache effect on {read}: {with_cache['rps']:.0f} req/s with Redis vs "
                    f"{without['rps']:.0f} req/s without = {with_cache['rps'] / without['rps']:.2f}x "
                    f"(p99 {with_cache['p99_ms']:.2f} vs {without['p99_ms']:.2f} ms)"
                )
            else:
                lines.append("- wrk unavailable: max-throughput and cache-ratio figures skipped")
    shutil.rmtree(tmp, ignore_errors=True)
    append_results("bridge_http", "python benchmarks/bridge_http.py " + " ".join(sys.argv[1:]), lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

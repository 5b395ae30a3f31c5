"""Event append throughput: single events vs batches, at the store layer and over HTTP (one uvicorn worker).

.venv/bin/python benchmarks/bridge_append.py [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bridge import append_results, bridge, fresh_database, services_env
from lighthouse_bridge.store import db, events
from lighthouse_bridge.store.group_commit import GroupCommitter


def new(i: int, stream: str) -> events.NewEvent:
    return events.NewEvent("custom", f"{stream}-{i % 50}", "bench", data={"i": i, "payload": "x" * 64})


async def store_level(dsn: str, n: int) -> list[str]:
    pool = await db.create_pool(dsn, min_size=2, max_size=20, op_timeout=60)
    await db.migrate(pool)
    lines = []
    try:
        for conc in (1, 16):
            count = n // 10
            t0 = time.perf_counter()

            async def worker(w: int, per: int, conc: int = conc) -> None:
                for i in range(per):
                    await events.append(pool, [new(i, f"s{conc}-{w}")])

            await asyncio.gather(*(worker(w, count // conc) for w in range(conc)))
            dt = time.perf_counter() - t0
            lines.append(
                f"- store, single appends, {conc} concurrent writers: {count / dt:,.0f} events/s "
                f"({count} events, {dt:.2f} s)"
            )
        committer = GroupCommitter(pool)
        for conc in (16, 64):
            count = n // 10
            t0 = time.perf_counter()

            async def gworker(w: int, per: int, conc: int = conc) -> None:
                for i in range(per):
                    await committer.append([new(i, f"g{conc}-{w}")])

            await asyncio.gather(*(gworker(w, count // conc) for w in range(conc)))
            dt = time.perf_counter() - t0
            lines.append(
                f"- store, single appends through group commit (what the API uses), {conc} concurrent "
                f"writers: {count / dt:,.0f} events/s "
                f"(avg group {committer.grouped_requests / max(1, committer.groups):.1f} requests)"
            )
        await committer.stop()
        for batch, conc in ((100, 1), (1000, 1), (1000, 4)):
            t0 = time.perf_counter()

            async def bworker(w: int, per: int, batch: int = batch) -> None:
                for b in range(per):
                    await events.append(pool, [new(b * batch + i, f"b{batch}-{w}") for i in range(batch)])

            await asyncio.gather(*(bworker(w, n // batch // conc) for w in range(conc)))
            dt = time.perf_counter() - t0
            total = (n // batch // conc) * conc * batch
            lines.append(
                f"- store, batches of {batch}, {conc} concurrent writers: {total / dt:,.0f} events/s "
                f"({total} events, {dt:.2f} s)"
            )
        # Reference: what PostgreSQL itself gives for one-row commits on this disk, without the ordering lock.
        await pool.execute("CREATE TABLE IF NOT EXISTS bench_plain (id bigserial PRIMARY KEY, v text)")
        for conc in (1, 16):
            count = n // 10
            t0 = time.perf_counter()

            async def plain(per: int) -> None:
                for _ in range(per):
                    await pool.execute("INSERT INTO bench_plain (v) VALUES ('x')")

            await asyncio.gather(*(plain(count // conc) for _ in range(conc)))
            dt = time.perf_counter() - t0
            lines.append(
                f"- reference: plain one-row INSERT commits (no events, no lock), {conc} writers: "
                f"{count / dt:,.0f} commits/s"
            )
        head = await events.head_position(pool)
        gaps = await pool.fetchval("SELECT count(*) FROM events") != head
        lines.append(f"- positions after the run: 1..{head}, gaps: {'YES' if gaps else 'none'}")
    finally:
        await pool.close()
    return lines


async def http_level(url: str, n: int) -> list[str]:
    lines = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        count = n // 20
        t0 = time.perf_counter()

        async def worker(w: int, per: int) -> None:
            for i in range(per):
                r = await c.post(
                    "/event/store",
                    json={
                        "event_type": "custom",
                        "aggregate_id": f"h{w}-{i % 50}",
                        "aggregate_type": "bench",
                        "data": {"i": i},
                    },
                )
                r.raise_for_status()

        await asyncio.gather(*(worker(w, count // 32) for w in range(32)))
        dt = time.perf_counter() - t0
        lines.append(f"- HTTP POST /event/store, 32 concurrent clients: {count / dt:,.0f} events/s")
        batch = 1000
        t0 = time.perf_counter()
        batches = n // batch
        for b in range(batches):
            body = {
                "events": [
                    {
                        "event_type": "custom",
                        "aggregate_id": f"hb-{i % 50}",
                        "aggregate_type": "bench",
                        "data": {"i": i},
                    }
                    for i in range(batch)
                ]
            }
            (await c.post("/events", json=body)).raise_for_status()
            _ = b
        dt = time.perf_counter() - t0
        lines.append(f"- HTTP POST /events, batches of {batch}, 1 client: {batches * batch / dt:,.0f} events/s")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    args = ap.parse_args()
    env = services_env()
    lines: list[str] = []
    with fresh_database(env) as dsn:
        lines += asyncio.run(store_level(dsn, args.events))
    with fresh_database(env) as dsn:
        tmp = Path(tempfile.mkdtemp(prefix="bench-append-"))
        with bridge({"LIGHTHOUSE_DATABASE_URL": dsn}, tmp / "bridge.log") as url:
            lines += asyncio.run(http_level(url, args.events))
    shutil.rmtree(tmp, ignore_errors=True)
    append_results("bridge_append", "python benchmarks/bridge_append.py " + " ".join(sys.argv[1:]), lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

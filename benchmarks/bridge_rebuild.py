"""Projection rebuild speed: replay from zero vs from the newest snapshot, in events per second.

.venv/bin/python benchmarks/bridge_rebuild.py [--files 5000 --events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bridge import append_results, fresh_database, services_env
from lighthouse_bridge.store import blobs, db, events, projection, snapshots


async def run(dsn: str, files: int, total: int) -> list[str]:
    pool = await db.create_pool(dsn, min_size=2, max_size=4, op_timeout=300)
    await db.migrate(pool)
    try:
        shas = await blobs.put_many(pool, [f"content {i}\n".encode() for i in range(200)])
        rng = random.Random(1)
        paths = [f"src/pkg{i % 50}/mod{i}.py" for i in range(files)]
        await events.append(
            pool, [events.NewEvent("file_created", p, "file", {"sha256": rng.choice(shas)}) for p in paths]
        )
        t0 = time.perf_counter()
        written = files
        while written < total:
            batch = []
            touched: set[str] = set()
            for _ in range(1000):
                p = rng.choice(paths)
                if p in touched:
                    continue
                touched.add(p)
                batch.append(events.NewEvent("file_modified", p, "file", {"sha256": rng.choice(shas)}))
            await events.append(pool, batch)
            written += len(batch)
        load_s = time.perf_counter() - t0
        head = await events.head_position(pool)

        t0 = time.perf_counter()
        full = await projection.build(pool, head, use_snapshots=False)
        from_zero = time.perf_counter() - t0
        snap_tree = await projection.build(pool, head - head // 10, use_snapshots=False)
        await snapshots.create(pool, "bench", snap_tree)
        t0 = time.perf_counter()
        fast = await projection.build(pool, head)
        from_snap = time.perf_counter() - t0
        assert {k: v.sha256 for k, v in fast.files.items()} == {k: v.sha256 for k, v in full.files.items()}
        return [
            f"- store: {head} events ({files} files), loaded at {written / load_s:,.0f} events/s in batches of 1000",
            f"- rebuild from zero: {head / from_zero:,.0f} events/s ({from_zero:.2f} s for {head} events)",
            f"- rebuild from a snapshot at 90% + tail of {head // 10} events: {from_snap:.2f} s "
            f"({from_zero / from_snap:.1f}x faster than from zero); trees identical",
        ]
    finally:
        await pool.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--events", type=int, default=100000)
    args = ap.parse_args()
    env = services_env()
    with fresh_database(env) as dsn:
        lines = asyncio.run(run(dsn, args.files, args.events))
    append_results("bridge_rebuild", "python benchmarks/bridge_rebuild.py " + " ".join(sys.argv[1:]), lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())

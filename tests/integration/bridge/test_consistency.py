"""Concurrency, gap-free positions, live stream, and time travel against a reference replay."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
from lighthouse_bridge.core.config import Settings

from tests.integration.bridge.conftest import app_client


def ev(aggregate_id: str, **kw: object) -> dict[str, object]:
    return {"event_type": "custom", "aggregate_id": aggregate_id, "aggregate_type": "thing", "data": {}, **kw}


async def test_concurrent_writers_on_one_stream_one_winner_per_version(client: httpx.AsyncClient) -> None:
    async def attempt(version: int) -> int:
        r = await client.post("/event/store", json=ev("hot", expected_version=version))
        return r.status_code

    for version in range(5):
        codes = await asyncio.gather(*(attempt(version) for _ in range(8)))
        assert sorted(codes) == [200] + [409] * 7, codes
    events = (await client.get("/event/query", params={"aggregate_id": "hot"})).json()["events"]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]


async def test_concurrent_idempotent_retries_store_once(client: httpx.AsyncClient) -> None:
    results = await asyncio.gather(
        *(client.post("/event/store", json=ev(f"a{i % 3}", event_id="same-id")) for i in range(12))
    )
    bodies = [r.json() for r in results]
    assert all(r.status_code == 200 for r in results)
    assert len({(b["event_id"], b["position"]) for b in bodies}) == 1
    assert sum(1 for b in bodies if not b["duplicate"]) == 1
    assert len((await client.get("/event/query")).json()["events"]) == 1


async def test_positions_dense_and_readers_never_skip(settings: Settings) -> None:
    """Many concurrent writers; a tailing reader must see 1..N in order with no gap, ever."""
    async with app_client(settings) as c:
        seen: list[int] = []
        stop = asyncio.Event()

        async def tail() -> None:
            cursor = 1
            while not stop.is_set() or cursor <= 280:
                page = (await c.get("/event/query", params={"from_position": cursor, "limit": 1000})).json()
                for e in page["events"]:
                    seen.append(e["position"])
                    cursor = e["position"] + 1
                await asyncio.sleep(0.001)

        async def writer(w: int) -> list[int]:
            out = []
            for i in range(20):
                if i % 5 == 0:
                    batch = {"events": [ev(f"w{w}-{i}-{j}") for j in range(3)]}
                    out += [x["position"] for x in (await c.post("/events", json=batch)).json()["results"]]
                else:
                    out.append((await c.post("/event/store", json=ev(f"w{w}-{i}"))).json()["position"])
            return out

        reader = asyncio.create_task(tail())
        written = await asyncio.gather(*(writer(w) for w in range(10)))
        stop.set()
        await asyncio.wait_for(reader, 60)
        total = sum(len(x) for x in written)
        assert total == 10 * (16 + 4 * 3) == 280
        assert sorted(p for w in written for p in w) == list(range(1, total + 1))
        assert seen == list(range(1, total + 1))


async def test_event_stream_replays_then_follows_with_heartbeats(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await client.post("/event/store", json=ev(f"s{i}"))
    lines: list[dict] = []

    async def read() -> None:
        async with client.stream("GET", "/events/stream", params={"from_position": 2, "idle_timeout": 2}) as r:
            assert r.headers["content-type"].startswith("application/x-ndjson")
            async for line in r.aiter_lines():
                if line:
                    lines.append(json.loads(line))

    task = asyncio.create_task(read())
    await asyncio.sleep(0.3)
    await client.post("/event/store", json=ev("live"))
    await asyncio.wait_for(task, 30)
    positions = [x["position"] for x in lines if "position" in x]
    assert positions == [2, 3, 4]
    assert lines[-1] == {"heartbeat": 4}  # stream_heartbeat=0.5 s in the test settings
    live = next(x for x in lines if x.get("aggregate_id") == "live")
    assert set(live) >= {"event_id", "event_type", "aggregate_type", "timestamp", "data", "metadata", "version"}


def reference_replay(ops: list[tuple[int, str, str, str | None, str | None]], upto: int) -> dict[str, str]:
    """The tree at position `upto` computed independently of the bridge: path -> content."""
    tree: dict[str, str] = {}
    for pos, op, path, content, new_path in ops:
        if pos > upto:
            break
        if op in ("create", "modify"):
            tree[path] = content or ""
        elif op == "delete":
            del tree[path]
        elif op == "move":
            tree[new_path or ""] = tree.pop(path)
    return tree


async def test_time_travel_matches_reference_replay(settings: Settings) -> None:
    rng = random.Random(4)
    s = settings.model_copy(update={"snapshot_interval": 17})  # exercise snapshot + tail replay
    async with app_client(s) as c:
        ops: list[tuple[int, str, str, str | None, str | None]] = []
        live: dict[str, str] = {}
        for i in range(150):
            choice = rng.random()
            if not live or choice < 0.3:
                path, content = f"d{rng.randint(0, 3)}/f{i}.txt", f"created {i}\n"
                r = await c.post("/shadow/update", json={"operation": "create", "path": path, "content": content})
                ops.append((r.json()["position"], "create", path, content, None))
                live[path] = content
            elif choice < 0.7:
                path = rng.choice(sorted(live))
                content = live[path] + f"edit {i}\n"
                r = await c.post("/shadow/update", json={"operation": "modify", "path": path, "content": content})
                ops.append((r.json()["position"], "modify", path, content, None))
                live[path] = content
            elif choice < 0.85:
                path = rng.choice(sorted(live))
                new_path = f"moved/{i}.txt"
                r = await c.post("/shadow/update", json={"operation": "move", "path": path, "new_path": new_path})
                ops.append((r.json()["position"], "move", path, None, new_path))
                live[new_path] = live.pop(path)
            else:
                path = rng.choice(sorted(live))
                r = await c.post("/shadow/update", json={"operation": "delete", "path": path})
                ops.append((r.json()["position"], "delete", path, None, None))
                del live[path]
            assert r.status_code == 200, r.text
            if i % 10 == 0:  # non-file events interleave with file events
                await c.post("/event/store", json=ev(f"noise-{i}"))
        head = max(p for p, *_ in ops) + 1
        for at in [1, 2, 16, 17, 18, 35, 50, 77, 99, 120, head - 1, head]:
            expected = reference_replay(ops, at)
            listing = (await c.get("/shadow/list", params={"at": str(at)})).json()
            assert [f["path"] for f in listing["files"]] == sorted(expected), at
            for path in rng.sample(sorted(expected), min(3, len(expected))):
                got = (await c.get(f"/shadow/read/{path}", params={"at": str(at)})).json()
                assert got["content"] == expected[path], (at, path)
        # the current tree equals the full replay
        current = (await c.get("/shadow/list")).json()
        assert {f["path"] for f in current["files"]} == set(reference_replay(ops, head))
        snaps = (await c.get("/snapshots")).json()["snapshots"]
        assert len([x for x in snaps if x["auto"]]) >= 5


async def test_group_commit_shares_transactions_but_isolates_errors(client: httpx.AsyncClient) -> None:
    await client.post("/event/store", json=ev("taken"))
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    groups_before = rt.appender.groups

    async def good(i: int) -> httpx.Response:
        return await client.post("/event/store", json=ev(f"g{i}", expected_version=0))

    async def bad() -> httpx.Response:
        return await client.post("/event/store", json=ev("taken", expected_version=0))  # stale: 409

    first = await asyncio.gather(*(good(i) for i in range(30)))
    assert all(r.status_code == 200 for r in first)
    # Concurrent requests were committed together: fewer transactions than requests.
    assert rt.appender.groups > groups_before
    assert rt.appender.grouped_requests > rt.appender.groups
    # One stale request inside a group fails alone; its neighbours succeed.
    responses = await asyncio.gather(*(good(i) for i in range(30, 50)), bad(), *(good(i) for i in range(50, 80)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 50 and codes.count(409) == 1 and codes[20] == 409
    positions = sorted(r.json()["position"] for r in [*first, *responses] if r.status_code == 200)
    assert positions == list(range(2, 82))

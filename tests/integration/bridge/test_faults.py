"""Faults with real servers: Redis stopped and restarted, PostgreSQL restarted and crashed, bridge kill -9."""

from __future__ import annotations

import concurrent.futures
import re
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.bridge.support import BridgeProcess, PostgresServer, RedisServer, bridges, wait_until


def metric(c: httpx.Client, name: str) -> float:
    total = 0.0
    for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", c.get("/metrics").text, re.M):
        total += float(m.group(1))
    return total


def test_redis_stopped_and_restarted(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        env = {**bridge_env, "LIGHTHOUSE_REDIS_URL": redis.url, "LIGHTHOUSE_REDIS_TIMEOUT": "0.3"}
        with bridges(tmp_path, env) as (b,), b.client() as c:
            assert c.post("/shadow/update", json={"operation": "create", "path": "a.txt", "content": "A"}).is_success
            c.get("/shadow/read/a.txt")
            hits0 = metric(c, "lighthouse_bridge_speed_layer_cache_hits_total")
            assert c.get("/shadow/read/a.txt").json()["content"] == "A"
            assert metric(c, "lighthouse_bridge_speed_layer_cache_hits_total") > hits0

            redis.stop()
            # Still serving: reads fall back to PostgreSQL, writes work, health says degraded.
            assert c.get("/shadow/read/a.txt").json()["content"] == "A"
            r = c.post("/shadow/update", json={"operation": "create", "path": "b.txt", "content": "B"})
            assert r.status_code == 200
            wait_until(lambda: c.get("/health").json()["status"] == "degraded", 15, what="degraded health")
            ready = c.get("/readyz")
            assert ready.status_code == 200 and ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["redis"]["status"] == "down"
            assert c.get("/health/dependencies").json()["redis"]["status"] == "disconnected"
            assert metric(c, "lighthouse_bridge_redis_connection_status") == 0.0
            assert c.get("/shadow/read/b.txt").json()["content"] == "B"

            redis.start()  # same port: the bridge reconnects by itself
            wait_until(lambda: c.get("/health").json()["status"] == "healthy", 15, what="healthy again")
            assert c.get("/readyz").json()["checks"]["redis"]["status"] == "connected"
            c.get("/shadow/read/b.txt")
            hits1 = metric(c, "lighthouse_bridge_speed_layer_cache_hits_total")
            assert c.get("/shadow/read/b.txt").json()["content"] == "B"
            assert metric(c, "lighthouse_bridge_speed_layer_cache_hits_total") > hits1
    finally:
        redis.stop()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    # mkdtemp in /tmp: the unprivileged server user must be able to traverse the parents.
    root = Path(tempfile.mkdtemp(prefix="lh-bridge-pg-"))
    os_chmod_traversable(root)
    pg = PostgresServer(root / "pg")
    pg.init()
    try:
        yield pg
    finally:
        pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def os_chmod_traversable(path: Path) -> None:
    import os

    os.chmod(path, 0o755)


def _write(c: httpx.Client, i: int, event_id: str | None = None) -> httpx.Response:
    return c.post(
        "/event/store",
        json={
            "event_type": "custom",
            "aggregate_id": f"a{i % 7}",
            "aggregate_type": "t",
            "data": {"i": i},
            "event_id": event_id or f"ev-{i}",
        },
    )


def test_postgres_restart_and_crash(
    tmp_path: Path, private_postgres: PostgresServer, redis_url: str, redis_prefix: str
) -> None:
    env = {
        "LIGHTHOUSE_DATABASE_URL": private_postgres.url,
        "LIGHTHOUSE_REDIS_URL": redis_url,
        "LIGHTHOUSE_REDIS_PREFIX": redis_prefix,
        "LIGHTHOUSE_HEALTH_INTERVAL": "0.5",
        "LIGHTHOUSE_DATABASE_TIMEOUT": "2",
        "LIGHTHOUSE_PROJECTION_POLL_INTERVAL": "0.5",
    }
    acked: dict[str, int] = {}
    with bridges(tmp_path, env) as (b,), b.client() as c:
        for i in range(20):
            r = _write(c, i)
            assert r.status_code == 200
            acked[f"ev-{i}"] = r.json()["position"]
        assert c.post("/shadow/update", json={"operation": "create", "path": "x.txt", "content": "x"}).is_success

        for mode in ("fast", "immediate"):  # a clean restart, then a crash (SIGQUIT, recovery from WAL)
            private_postgres.stop(mode)
            wait_until(lambda: c.get("/readyz").status_code == 503, 20, what="readyz 503")
            assert c.get("/readyz").json()["checks"]["postgres"]["status"] == "disconnected"
            assert c.get("/livez").status_code == 200
            assert c.get("/health").status_code == 503
            r = _write(c, 1000 + len(acked), "retry-me-" + mode)
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["type"].endswith("/postgres-unavailable") and body["event_ids"] == ["retry-me-" + mode]
            assert r.headers.get("retry-after") == "1"
            # The in-memory shadow keeps answering listings while the store is down.
            assert [f["path"] for f in c.get("/shadow/list").json()["files"]] == ["x.txt"]

            private_postgres.start()
            wait_until(lambda: c.get("/readyz").status_code == 200, 30, what="readyz 200")
            r = _write(c, 1000 + len(acked), "retry-me-" + mode)  # the client's retry with the same id
            assert r.status_code == 200
            acked["retry-me-" + mode] = r.json()["position"]
            for i in range(5):
                r = _write(c, 100 * len(acked) + i, f"after-{mode}-{i}")
                assert r.status_code == 200
                acked[f"after-{mode}-{i}"] = r.json()["position"]
            wait_until(
                lambda: c.get("/health/detailed").json()["components"]["projection"]["listening"],
                20,
                what="LISTEN reconnected",
            )

        events = c.get("/event/query", params={"limit": 1000}).json()["events"]
        stored = {e["event_id"]: e["position"] for e in events}
        assert {k: stored.get(k) for k in acked} == acked
        assert [e["position"] for e in events] == list(range(1, len(events) + 1))


def test_kill9_during_acknowledged_writes(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    """kill -9 the bridge while writers stream events; every 200-acknowledged event survives, positions continue."""
    acked: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()
    bridge = BridgeProcess(bridge_env, tmp_path / "bridge.log")
    bridge.start()
    try:

        def writer(w: int) -> int:
            failures = 0
            with httpx.Client(base_url=bridge.url, timeout=10) as c:
                i = 0
                while not stop.is_set():
                    eid = f"w{w}-{i}-{uuid.uuid4().hex[:6]}"
                    try:
                        r = c.post(
                            "/events",
                            json={
                                "events": [
                                    {
                                        "event_type": "custom",
                                        "aggregate_id": f"w{w}",
                                        "aggregate_type": "t",
                                        "data": {"i": i, "k": k},
                                        "event_id": f"{eid}-{k}",
                                    }
                                    for k in range(3)
                                ]
                            },
                        )
                    except httpx.HTTPError:
                        failures += 1
                        continue
                    if r.status_code == 200:
                        with lock:
                            for res in r.json()["results"]:
                                acked[res["event_id"]] = res["position"]
                            if len(acked) >= 600:
                                enough.set()
                    i += 1
            return failures

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(writer, w) for w in range(6)]
            assert enough.wait(120), "writers did not get going"
            bridge.kill9()  # mid-stream: requests are in flight
            with lock:
                acked_at_kill = dict(acked)
            stop.set()
            failures = sum(f.result() for f in futures)
        assert failures > 0 or len(acked) == len(acked_at_kill)

        bridge.start()
        with bridge.client() as c:
            events, cursor = [], 1
            while cursor is not None:
                page = c.get("/event/query", params={"from_position": cursor, "limit": 1000}).json()
                events += page["events"]
                cursor = page["next_from_position"]
            stored = {e["event_id"]: e["position"] for e in events}
            missing = {k: v for k, v in acked.items() if stored.get(k) != v}
            assert not missing, f"{len(missing)} acknowledged events lost or moved"
            assert [e["position"] for e in events] == list(range(1, len(events) + 1))
            r = c.post("/event/store", json={"event_type": "custom", "aggregate_id": "after", "aggregate_type": "t"})
            assert r.json()["position"] == len(events) + 1
    finally:
        bridge.stop()


def test_sigterm_ends_serve_while_a_stream_client_is_connected(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    """An open /events/stream must not keep `serve` alive after SIGTERM, and its client sees a complete response
    (a clean end it can reconnect after), not a torn chunked body."""
    bridge = BridgeProcess(bridge_env, tmp_path / "bridge.log").start()
    assert bridge.proc is not None
    done = threading.Event()
    outcome: list[str] = []

    def follow() -> None:
        try:
            with httpx.stream("GET", bridge.url + "/events/stream?from_position=0", timeout=None) as r:
                assert r.status_code == 200
                for _ in r.iter_lines():
                    if done.is_set():
                        outcome.append("still streaming after the bridge stopped")
                        return
            outcome.append("ended")
        except httpx.HTTPError as e:
            outcome.append(f"{type(e).__name__}: {e}")

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    wait_until(lambda: metric(bridge.client(), "lighthouse_bridge_stream_clients") >= 1, 30, what="stream client")
    bridge.proc.terminate()
    try:
        rc = bridge.proc.wait(30)
    finally:
        done.set()
        bridge.stop()
    log = bridge.log_path.read_text()
    # uvicorn re-raises the signal after a clean shutdown, so the exit status is -SIGTERM.
    assert rc in (0, -signal.SIGTERM), log[-2000:]
    assert "Application shutdown complete" in log, log[-2000:]
    reader.join(10)
    assert outcome == ["ended"], log[-2000:]

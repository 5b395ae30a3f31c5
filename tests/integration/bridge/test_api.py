"""Every route against real PostgreSQL and Redis, through the ASGI app with its lifespan."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from lighthouse_bridge.core.config import Settings

from tests.integration.bridge.conftest import app_client

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(r: httpx.Response, status: int, needle: str = "") -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status
    assert needle in body["detail"], body
    return body


async def update(c: httpx.AsyncClient, op: str, path: str, content: str | None = None, **kw: object) -> httpx.Response:
    body: dict[str, object] = {"operation": op, "path": path, **kw}
    if content is not None:
        body["content"] = content
    return await c.post("/shadow/update", json=body)


def ev(event_type: str = "custom", aggregate_id: str = "agg-1", **kw: object) -> dict[str, object]:
    return {
        "event_type": event_type,
        "aggregate_id": aggregate_id,
        "aggregate_type": "thing",
        "data": {"n": 1},
        "metadata": {},
        **kw,
    }


# ---------------------------------------------------------------- events
async def test_store_and_query_with_every_filter(client: httpx.AsyncClient) -> None:
    r1 = await client.post("/event/store", json=ev("alpha", "a1", source_agent="alice", correlation_id="c1"))
    assert r1.status_code == 200, r1.text
    assert r1.json()["position"] == 1 and r1.json()["version"] == 1
    await asyncio.sleep(0.05)
    mid = datetime.now(UTC)
    await asyncio.sleep(0.05)
    r2 = await client.post("/event/store", json=ev("beta", "a1", agent_id="bob"))
    r3 = await client.post("/event/store", json=ev("alpha", "a2", source_agent="bob"))
    assert [r2.json()["position"], r3.json()["position"]] == [2, 3]
    assert r2.json()["version"] == 2 and r3.json()["version"] == 1

    async def q(**params: object) -> list[int]:
        r = await client.get("/event/query", params=params)
        assert r.status_code == 200, r.text
        return [e["position"] for e in r.json()["events"]]

    assert await q() == [1, 2, 3]
    assert await q(event_type="alpha") == [1, 3]
    assert await q(aggregate_id="a1") == [1, 2]
    assert await q(agent_id="bob") == [2, 3]  # agent_id on input is stored as source_agent
    assert await q(start_time=mid.isoformat()) == [2, 3]
    assert await q(end_time=mid.isoformat()) == [1]
    assert await q(from_position=2) == [2, 3]
    assert await q(event_type="alpha", agent_id="bob") == [3]
    first = (await client.get("/event/query", params={"event_type": "alpha"})).json()["events"][0]
    assert first["correlation_id"] == "c1" and first["source_agent"] == "alice" and first["data"] == {"n": 1}
    assert datetime.fromisoformat(first["timestamp"]) <= mid


async def test_query_pagination_walks_every_event_once(client: httpx.AsyncClient) -> None:
    r = await client.post("/events", json={"events": [ev(aggregate_id=f"p{i}") for i in range(25)]})
    assert r.status_code == 200
    seen, cursor = [], None
    while True:
        params = {"limit": 10} | ({"from_position": cursor} if cursor is not None else {})
        page = (await client.get("/event/query", params=params)).json()
        seen += [e["position"] for e in page["events"]]
        cursor = page["next_from_position"]
        if cursor is None:
            break
    assert seen == list(range(1, 26))


async def test_batch_is_atomic_and_positions_are_consecutive(client: httpx.AsyncClient) -> None:
    r = await client.post("/events", json={"events": [ev(aggregate_id="s"), ev(aggregate_id="s"), ev("x", "t")]})
    assert r.status_code == 200
    res = r.json()["results"]
    assert [x["position"] for x in res] == [1, 2, 3] and [x["version"] for x in res] == [1, 2, 1]
    # The second event conflicts: nothing of the batch may be stored.
    bad = {"events": [ev(aggregate_id="u"), ev(aggregate_id="s", expected_version=0)]}
    assert_problem(await client.post("/events", json=bad), 409, "expected version 0")
    q = (await client.get("/event/query")).json()["events"]
    assert len(q) == 3 and all(e["aggregate_id"] != "u" for e in q)
    nxt = await client.post("/event/store", json=ev(aggregate_id="u"))
    assert nxt.json()["position"] == 4 and nxt.json()["version"] == 1  # no hole left by the failed batch


async def test_expected_version_conflict_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/event/store", json=ev(expected_version=0))).status_code == 200
    body = assert_problem(await client.post("/event/store", json=ev(expected_version=0)), 409, "at 1")
    assert body["current_version"] == 1
    ok = await client.post("/event/store", json=ev(expected_version=1))
    assert ok.status_code == 200 and ok.json()["version"] == 2


async def test_idempotent_retry_returns_the_original(client: httpx.AsyncClient) -> None:
    body = ev(event_id="client-id-1")
    first = (await client.post("/event/store", json=body)).json()
    await client.post("/event/store", json=ev(aggregate_id="other"))
    again = (await client.post("/event/store", json=body)).json()
    assert again["duplicate"] is True
    assert (again["event_id"], again["position"], again["version"]) == (
        first["event_id"],
        first["position"],
        first["version"],
    )
    # Even with an expected_version that is stale by now, the retry is recognised, not a conflict.
    again2 = await client.post("/event/store", json={**body, "expected_version": 0})
    assert again2.status_code == 200 and again2.json()["position"] == first["position"]
    assert len((await client.get("/event/query")).json()["events"]) == 2
    batch = {"events": [ev(event_id="b1", aggregate_id="x"), ev(event_id="b2", aggregate_id="y")]}
    r1 = (await client.post("/events", json=batch)).json()["results"]
    r2 = (await client.post("/events", json=batch)).json()["results"]
    assert [x["position"] for x in r1] == [x["position"] for x in r2] and all(x["duplicate"] for x in r2)


async def test_file_events_via_event_store_need_blob_and_valid_path(client: httpx.AsyncClient) -> None:
    content = b"hello blob"
    sha = hashlib.sha256(content).hexdigest()
    file_ev = {
        "event_type": "file_created",
        "aggregate_id": "f.txt",
        "aggregate_type": "file",
        "data": {"path": "f.txt", "sha256": sha, "size": 10},
        "metadata": {},
    }
    assert_problem(await client.post("/event/store", json=file_ev), 422, "stored blob")
    put = await client.put(f"/blobs/{sha}", content=content, headers={"content-type": "application/octet-stream"})
    assert put.status_code == 200 and put.json() == {"sha256": sha, "size": 10}
    assert_problem(await client.put(f"/blobs/{'0' * 64}", content=content), 400, "hashes to")
    assert (await client.post("/event/store", json=file_ev)).status_code == 200
    blob = await client.get(f"/blobs/{sha}")
    assert blob.content == content and "immutable" in blob.headers["cache-control"]
    assert_problem(await client.get(f"/blobs/{'a' * 64}"), 404)
    assert_problem(await client.get("/blobs/xyz"), 422)
    bad = {**file_ev, "aggregate_id": "../etc/passwd", "data": {"path": "../etc/passwd", "sha256": sha}}
    assert_problem(await client.post("/event/store", json=bad), 422, "'..'")


# ---------------------------------------------------------------- shadow
async def test_shadow_lifecycle(client: httpx.AsyncClient) -> None:
    r = await update(client, "create", "src/app.py", "print('v1')\n", agent_id="builder")
    assert r.status_code == 200 and r.json()["version"] == 1
    assert_problem(await update(client, "create", "src/app.py", "again"), 409, "already exists")
    read = (await client.get("/shadow/read/src/app.py")).json()
    assert read["content"] == "print('v1')\n" and read["encoding"] == "utf-8" and read["author"] == "builder"
    assert read["sha256"] == hashlib.sha256(b"print('v1')\n").hexdigest() and read["size"] == 12

    assert_problem(await update(client, "modify", "src/app.py", "x", expected_version=0), 409, "at 1")
    r = await update(client, "modify", "src/app.py", "print('v2')\n", expected_version=1)
    assert r.json()["version"] == 2
    binary = bytes(range(256))
    r = await update(client, "create", "img/logo.bin", base64.b64encode(binary).decode(), encoding="base64")
    assert r.status_code == 200
    got = (await client.get("/shadow/read/img/logo.bin")).json()
    assert got["encoding"] == "base64" and base64.b64decode(got["content"]) == binary

    listing = (await client.get("/shadow/list")).json()
    assert [f["path"] for f in listing["files"]] == ["img/logo.bin", "src/app.py"]
    assert listing["position"] == 3 and listing["truncated"] is False
    assert [f["path"] for f in (await client.get("/shadow/list", params={"prefix": "src/"})).json()["files"]] == [
        "src/app.py"
    ]
    limited = (await client.get("/shadow/list", params={"limit": 1})).json()
    assert len(limited["files"]) == 1 and limited["truncated"] is True

    r = await update(client, "move", "src/app.py", new_path="src/main.py")
    assert r.status_code == 200
    assert_problem(await client.get("/shadow/read/src/app.py"), 404)
    moved = (await client.get("/shadow/read/src/main.py")).json()
    assert moved["content"] == "print('v2')\n" and moved["version"] == 1
    assert (await update(client, "modify", "src/main.py", "v3", expected_version=1)).json()["version"] == 2
    assert_problem(await update(client, "move", "img/logo.bin", new_path="src/main.py"), 409, "already exists")
    assert_problem(await update(client, "modify", "nope.txt", "x"), 404, "does not exist")
    assert_problem(await update(client, "delete", "nope.txt"), 404)
    assert_problem(await update(client, "move", "nope.txt", new_path="b"), 404)
    assert (await update(client, "delete", "img/logo.bin")).status_code == 200
    assert_problem(await client.get("/shadow/read/img/logo.bin"), 404)
    # Re-creating a deleted path continues its stream.
    assert (await update(client, "create", "img/logo.bin", "new")).json()["version"] == 3


@pytest.mark.parametrize("bad", ["../x", "a/../../b", "/etc/passwd", "a\x01b", "a//b", "x" * 1100])
async def test_bad_paths_are_rejected_everywhere(client: httpx.AsyncClient, bad: str) -> None:
    assert_problem(await update(client, "create", bad, "x"), 422)
    assert_problem(await client.post("/annotations", json={"path": bad, "line": 1, "message": "m", "author": "a"}), 422)
    r = (
        await client.get("/history/x", params={})
        if bad.startswith("/")
        else await client.get("/diff", params={"path": bad})
    )
    assert r.status_code in (404, 422)


async def test_invalid_input_gets_problem_bodies(client: httpx.AsyncClient) -> None:
    assert_problem(
        await client.post("/event/store", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    assert_problem(await client.post("/event/store", json={"event_type": "x"}), 422, "aggregate_id")
    assert_problem(await client.post("/event/store", json=ev(data={"k": "nul\u0000"})), 422, "NUL")
    assert_problem(await client.get("/event/query", params={"limit": 5000}), 422)
    assert_problem(await client.get("/event/query", params={"from_position": -1}), 422)
    assert_problem(
        await client.post("/shadow/update", json={"operation": "create", "path": "a"}), 422, "content is required"
    )
    assert_problem(await update(client, "create", "a", "!!!", encoding="base64"), 422, "base64")
    assert_problem(await client.get("/shadow/read/a", params={"at": "yesterday"}), 422, "ISO-8601")
    assert_problem(await client.post("/shadow/search", json={"pattern": "("}), 422, "invalid pattern")
    assert_problem(await client.get("/nope"), 404)
    assert_problem(await client.delete("/livez"), 405)


async def test_request_and_result_size_limits(settings: Settings) -> None:
    small = settings.model_copy(
        update={"max_request_bytes": 4096, "max_file_bytes": 1000, "max_batch_events": 3, "max_list_files": 2}
    )
    async with app_client(small) as c:
        assert_problem(await update(c, "create", "big", "x" * 5000), 413, "exceeds 4096")
        assert_problem(await update(c, "create", "big", "x" * 2000), 413, "limit is 1000")
        assert_problem(await c.post("/events", json={"events": [ev(aggregate_id=str(i)) for i in range(4)]}), 413)
        for i in range(3):
            await update(c, "create", f"f{i}", "x")
        listing = (await c.get("/shadow/list", params={"limit": 100})).json()
        assert len(listing["files"]) == 2 and listing["truncated"] is True


async def test_search(client: httpx.AsyncClient) -> None:
    await update(client, "create", "a.py", "import os\npassword = 'hunter22hunter'\nx = 1\n")
    await update(client, "create", "lib/b.py", "api_key = 'abcdefghijk'\nPASSWORD = 'no'\n")
    await update(client, "create", "bin.dat", base64.b64encode(b"\x00password\x00").decode(), encoding="base64")
    r = (await client.post("/shadow/search", json={"pattern": r"(password|api_key)\s*="})).json()
    assert r["matches"] == [
        {"path": "a.py", "line": 2, "text": "password = 'hunter22hunter'"},
        {"path": "lib/b.py", "line": 1, "text": "api_key = 'abcdefghijk'"},
    ]
    assert r["truncated"] is False
    r = (await client.post("/shadow/search", json={"pattern": "(?i)password", "path_prefix": "lib/"})).json()
    assert [(m["path"], m["line"]) for m in r["matches"]] == [("lib/b.py", 2)]
    r = (await client.post("/shadow/search", json={"pattern": ".", "max_results": 2})).json()
    assert len(r["matches"]) == 2 and r["truncated"] is True


async def test_history_time_travel_and_diff(client: httpx.AsyncClient) -> None:
    p1 = (await update(client, "create", "doc.md", "one\n")).json()["position"]
    await asyncio.sleep(0.05)
    t_after_p1 = datetime.now(UTC)
    await asyncio.sleep(0.05)
    p2 = (await update(client, "modify", "doc.md", "one\ntwo\n")).json()["position"]
    p3 = (await update(client, "move", "doc.md", new_path="docs/doc.md")).json()["position"]
    p4 = (await update(client, "modify", "docs/doc.md", "one\n2\n")).json()["position"]

    h = (await client.get("/history/doc.md")).json()["versions"]
    assert [(v["version"], v["position"], v["event_type"]) for v in h] == [
        (1, p1, "file_created"),
        (2, p2, "file_modified"),
        (3, p3, "file_moved"),
    ]
    assert h[2]["to_path"] == "docs/doc.md"
    h2 = (await client.get("/history/docs/doc.md")).json()["versions"]
    assert [(v["version"], v["event_type"], v["from_path"]) for v in h2] == [
        (1, "file_moved", "doc.md"),
        (2, "file_modified", None),
    ]
    assert_problem(await client.get("/history/never.md"), 404)

    at1 = (await client.get("/shadow/read/doc.md", params={"at": str(p1)})).json()
    assert at1["content"] == "one\n" and at1["version"] == 1
    at_time = (await client.get("/shadow/read/doc.md", params={"at": t_after_p1.isoformat()})).json()
    assert at_time["content"] == "one\n"
    assert_problem(await client.get("/shadow/read/doc.md", params={"at": str(p3)}), 404)
    old = (await client.get("/shadow/list", params={"at": str(p2)})).json()
    assert old["position"] == p2 and [f["path"] for f in old["files"]] == ["doc.md"]
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert (await client.get("/shadow/list", params={"at": before})).json()["files"] == []

    d = (await client.get("/diff", params={"path": "doc.md", "from": str(p1), "to": str(p2)})).json()
    assert "+two" in d["diff"] and d["from_position"] == p1 and d["to_position"] == p2
    d2 = (await client.get("/diff", params={"path": "docs/doc.md", "from": str(p3)})).json()
    assert "-two" in d2["diff"] and "+2" in d2["diff"] and d2["to_position"] == p4
    d3 = (await client.get("/diff", params={"path": "doc.md", "from": str(p2), "to": str(p3)})).json()
    assert "+++ /dev/null" in d3["diff"]
    assert_problem(await client.get("/diff", params={"path": "zzz"}), 404)


async def test_annotations_follow_moved_lines(client: httpx.AsyncClient) -> None:
    src = "def f():\n    secret = 'x'\n    return 1\n"
    await update(client, "create", "m.py", src)
    r = await client.post(
        "/annotations",
        json={
            "path": "m.py",
            "line": 2,
            "message": "hard-coded secret",
            "category": "security",
            "severity": "high",
            "author": "sec",
        },
    )
    assert r.status_code == 200, r.text
    a = r.json()
    assert (a["line"], a["end_line"], a["anchor"]["status"]) == (2, 2, "exact")
    await update(client, "modify", "m.py", "# header\n# more\n" + src)
    listed = (await client.get("/annotations", params={"path": "m.py"})).json()["annotations"]
    assert [(x["id"], x["line"], x["anchor"]["status"]) for x in listed] == [(a["id"], 4, "moved")]
    upd = await client.put(f"/annotations/{a['id']}", json={"message": "rotate it", "severity": "critical"})
    assert upd.status_code == 200 and upd.json()["message"] == "rotate it" and upd.json()["line"] == 4
    upd2 = (await client.put(f"/annotations/{a['id']}", json={"line": 1, "end_line": 3})).json()
    assert (upd2["line"], upd2["end_line"], upd2["anchor"]["status"]) == (1, 3, "exact")
    await update(client, "modify", "m.py", "nothing here\n")
    stale = (await client.get("/annotations")).json()["annotations"][0]
    assert stale["anchor"]["status"] == "stale"
    assert_problem(
        await client.post("/annotations", json={"path": "m.py", "line": 9, "message": "m", "author": "a"}),
        422,
        "has 1 lines",
    )
    assert_problem(
        await client.post("/annotations", json={"path": "zz.py", "line": 1, "message": "m", "author": "a"}), 404
    )
    d = await client.delete(f"/annotations/{a['id']}")
    assert d.status_code == 200 and d.json()["deleted"] is True
    assert_problem(await client.delete(f"/annotations/{a['id']}"), 404)
    assert_problem(await client.put("/annotations/not-a-uuid", json={"message": "x"}), 404)
    assert (await client.get("/annotations")).json()["annotations"] == []
    types = [
        e["event_type"] for e in (await client.get("/event/query", params={"aggregate_id": a["id"]})).json()["events"]
    ]
    assert types == [
        "shadow_annotation_created",
        "shadow_annotation_updated",
        "shadow_annotation_updated",
        "shadow_annotation_deleted",
    ]


async def test_snapshots(client: httpx.AsyncClient) -> None:
    await update(client, "create", "a", "1")
    r = await client.post("/snapshots", json={"name": "before-refactor"})
    assert r.status_code == 200 and r.json()["position"] == 1 and r.json()["file_count"] == 1
    assert_problem(await client.post("/snapshots", json={"name": "before-refactor"}), 409)
    assert_problem(await client.post("/snapshots", json={"name": "../bad"}), 422)
    names = [s["name"] for s in (await client.get("/snapshots")).json()["snapshots"]]
    assert names == ["before-refactor"]


async def test_automatic_snapshots_are_taken_and_used(client: httpx.AsyncClient) -> None:
    # settings.snapshot_interval = 50
    for i in range(6):
        r = await client.post("/events", json={"events": [ev(aggregate_id=f"k{i}-{j}") for j in range(10)]})
        assert r.status_code == 200
    await update(client, "create", "late.txt", "z")
    snaps = (await client.get("/snapshots")).json()["snapshots"]
    assert any(s["auto"] and s["position"] >= 50 for s in snaps)
    listing = (await client.get("/shadow/list", params={"at": "61"})).json()
    assert [f["path"] for f in listing["files"]] == ["late.txt"]


# ---------------------------------------------------------------- health, metrics, auth
async def test_health_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).json() == {"status": "ok"}
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["checks"]["postgres"]["status"] == "connected" and ready["checks"]["redis"]["status"] == "connected"
    assert ready["checks"]["fuse"]["status"] == "disabled"
    assert (await client.get("/health")).json()["status"] == "healthy"
    deps = (await client.get("/health/dependencies")).json()
    assert deps["postgres"]["status"] == "connected" and deps["redis"]["status"] == "connected"
    detailed = (await client.get("/health/detailed")).json()
    assert detailed["components"]["projection"]["lag_events"] == 0
    st = (await client.get("/status")).json()
    assert st["mode"] == "normal" and st["components"]["event_store"] == "operational"


async def test_readyz_checks_the_fuse_status_file(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A missing FUSE mount degrades the bridge (the API keeps serving: ready, status degraded), and /health, which
    the operator reads for FuseAvailable, says why."""
    status_file = tmp_path / "fuse.json"
    s = settings.model_copy(update={"fuse_mode": "sidecar", "fuse_status_file": status_file})
    async with app_client(s) as c:
        r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert r.json()["checks"]["fuse"]["status"] == "not_mounted"
        status_file.write_text('{"mounted": true, "mountpoint": "/mnt/lighthouse/project", "error": null}')
        r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert r.json()["checks"]["fuse"]["mountpoint"] == "/mnt/lighthouse/project"
        assert (await c.get("/health")).json()["fuse"] == {"status": "mounted", "error": None}
        status_file.write_text('{"mounted": false, "mountpoint": "/mnt/x", "error": "fusermount failed"}')
        r = await c.get("/readyz")
        assert r.status_code == 200 and r.json()["checks"]["fuse"]["error"] == "fusermount failed"
        health = await c.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert health.json()["fuse"] == {"status": "not_mounted", "error": "fusermount failed"}
        assert (await c.get("/status")).json()["mode"] == "degraded_no_fuse"


async def test_metrics_names(client: httpx.AsyncClient) -> None:
    await update(client, "create", "m.txt", "x")
    for _ in range(2):
        await client.get("/shadow/read/m.txt")
    text = (await client.get("/metrics")).text
    for name in (
        "lighthouse_bridge_requests_total",
        "lighthouse_bridge_request_duration_seconds_bucket",
        "lighthouse_bridge_errors_total",
        "lighthouse_bridge_event_store_failures_total",
        "lighthouse_bridge_speed_layer_cache_hits_total",
        "lighthouse_bridge_speed_layer_cache_requests_total",
        "lighthouse_bridge_redis_connection_status 1.0",
        "lighthouse_bridge_postgres_connection_status 1.0",
        "lighthouse_bridge_memory_usage_bytes",
        "lighthouse_bridge_memory_limit_bytes",
        "lighthouse_bridge_projection_lag_events",
        "lighthouse_bridge_fuse_mount_status",
    ):
        assert name in text, name
    assert 'route="/shadow/read/{path:path}"' in text


async def test_admin_token_guards_everything_but_health(settings: Settings) -> None:
    s = settings.model_copy(update={"admin_token": "s3cret"})
    async with app_client(s) as c:
        assert_problem(await c.get("/shadow/list"), 401)
        assert_problem(await c.get("/shadow/list", headers={"Authorization": "Bearer nope"}), 401)
        assert (await c.get("/shadow/list", headers={"Authorization": "Bearer s3cret"})).status_code == 200
        for open_route in ("/livez", "/readyz", "/health", "/metrics"):
            assert (await c.get(open_route)).status_code == 200, open_route


async def test_automatic_snapshots_are_pruned_but_time_travel_still_works(settings: Settings) -> None:
    s = settings.model_copy(update={"snapshot_interval": 10, "snapshot_keep": 2})
    async with app_client(s) as c:
        await update(c, "create", "first.txt", "1")
        assert (await c.post("/snapshots", json={"name": "named"})).status_code == 200
        for i in range(6):
            await c.post("/events", json={"events": [ev(aggregate_id=f"p{i}-{j}") for j in range(10)]})
            await update(c, "create", f"f{i}.txt", str(i))
        snaps = (await c.get("/snapshots")).json()["snapshots"]
        assert len([x for x in snaps if x["auto"]]) == 2
        assert [x["name"] for x in snaps if not x["auto"]] == ["named"]
        old = (await c.get("/shadow/list", params={"at": "13"})).json()  # before the oldest kept auto snapshot
        assert [f["path"] for f in old["files"]] == ["f0.txt", "first.txt"]

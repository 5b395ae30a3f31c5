"""Identity: every route but four needs a token, roles gate writes, tokens expire and can be revoked, rate limits."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import asyncpg
import pytest
from lighthouse_bridge.agents import tokens
from lighthouse_bridge.core.config import Settings

from tests.integration.agents.conftest import ADMIN_TOKEN, Bridge, audit_lines, start_bridge

OPEN = {"/livez", "/readyz", "/health", "/metrics"}


def all_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, including those of included routers and the docs routes."""
    out = []
    for r in app.routes:
        contexts = r.effective_route_contexts() if hasattr(r, "effective_route_contexts") else [r]
        for c in contexts:
            for m in sorted(getattr(c, "methods", None) or []):
                if m != "HEAD":
                    out.append((m, c.path))
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "a" * 64 if "sha" in m.group(0) else "x", path)


async def test_every_route_except_four_requires_a_token(bridge: Bridge) -> None:
    routes = all_routes(bridge.app)
    assert len(routes) > 30 and ("POST", "/validate") in routes and ("GET", "/openapi.json") in routes
    anon = bridge.client()
    forged = bridge.client("lh1.eyJmb28iOjF9.AAAA")
    unauthenticated = []
    for method, path in routes:
        url = concrete(path)
        r = await anon.request(method, url)
        if path in OPEN:
            assert r.status_code in (200, 503), (method, path, r.status_code)
            continue
        if r.status_code != 401:
            unauthenticated.append((method, path, r.status_code))
            continue
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await forged.request(method, url)).status_code == 401, (method, path)
    assert unauthenticated == [], "routes reachable without a token (add auth or list them in agents.roles)"
    opened = {p for m, p in routes if p in OPEN}
    assert opened == OPEN
    await bridge.agents.sink.flush()
    fails = [a for a in audit_lines(bridge.app.state.settings) if a["action"] == "auth_failed"]
    assert len(fails) >= 2 * (len(routes) - len(opened))
    assert {"missing bearer token", "bad token signature"} <= {a["reason"] for a in fails}


async def test_health_detail_and_status_need_a_token_health_does_not(bridge: Bridge) -> None:
    anon = bridge.client()
    for path in ("/health/detailed", "/health/dependencies", "/status"):
        assert (await anon.get(path)).status_code == 401
        assert (await bridge.admin.get(path)).status_code == 200
    assert (await anon.get("/health")).status_code == 200


# (method, path, json body) -> roles that may call it. Bodies are valid enough to pass the gate; the endpoint may
# still answer 4xx for its own reasons, which is fine: the matrix checks 403 vs not-403.
MATRIX: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/shadow/list", None, {"viewer", "builder", "expert", "admin"}),
    ("GET", "/pending", None, {"viewer", "builder", "expert", "admin"}),
    ("POST", "/shadow/search", {"pattern": "x"}, {"viewer", "builder", "expert", "admin"}),
    ("POST", "/shadow/update", {"operation": "create", "path": "m.txt", "content": "x"}, {"builder", "admin"}),
    (
        "POST",
        "/event/store",
        {"event_type": "custom", "aggregate_id": "a", "aggregate_type": "t"},
        {"builder", "admin"},
    ),
    ("POST", "/validate", {"tool_name": "Bash", "tool_input": {"command": "ls"}}, {"builder", "expert", "admin"}),
    ("POST", "/approve", {"id": str(uuid.uuid4()), "status": "approved", "reason": "ok"}, {"expert", "admin"}),
    ("POST", "/annotations", {"path": "m.txt", "line": 1, "message": "m"}, {"expert", "admin"}),
    ("POST", "/expert/register", {"agent_type": "x", "capabilities": ["lint"]}, {"expert", "admin"}),
    ("POST", "/expert/delegate", {"capability": "lint"}, {"builder", "expert", "admin"}),
    ("POST", "/tasks/claim", {}, {"expert", "admin"}),
    ("POST", "/session/create", {"agent_id": "new", "role": "viewer"}, {"admin"}),
    ("GET", "/tokens", None, {"admin"}),
    ("GET", "/audit", None, {"admin"}),
    ("POST", "/snapshots", {"name": "s1"}, {"builder", "admin"}),
]


async def test_role_matrix(bridge: Bridge) -> None:
    clients = {role: await bridge.as_role(f"{role}-1", role) for role in ("viewer", "builder", "expert")}
    clients["admin"] = bridge.admin
    for method, path, body, allowed in MATRIX:
        for role, c in clients.items():
            r = await c.request(method, path, json=body)
            if role in allowed:
                assert r.status_code not in (401, 403), (role, method, path, r.status_code, r.text)
            else:
                assert r.status_code == 403, (role, method, path, r.status_code)
                assert role in r.json()["detail"]


async def test_expired_token_is_refused(bridge: Bridge, agent_settings: Settings) -> None:
    claims = tokens.new_claims("late", "builder", 60, now=time.time() - 3600)
    conn = await asyncpg.connect(agent_settings.database_url)
    try:
        await tokens.insert(conn, claims, "test", [])
    finally:
        await conn.close()
    c = bridge.client(tokens.sign(bridge.agents.key, claims))
    r = await c.get("/shadow/list")
    assert r.status_code == 401 and r.json()["detail"] == "token expired"
    v = await bridge.admin.post("/session/validate", json={"session_token": tokens.sign(bridge.agents.key, claims)})
    assert (v.json()["valid"], v.json()["reason"]) == (False, "token expired")


async def test_unregistered_token_with_a_valid_signature_is_refused(bridge: Bridge) -> None:
    claims = tokens.new_claims("ghost", "admin", 600)
    r = await bridge.client(tokens.sign(bridge.agents.key, claims)).get("/shadow/list")
    assert r.status_code == 401 and r.json()["detail"] == "unknown token"


async def test_revocation_applies_at_once_and_is_audited(bridge: Bridge, agent_settings: Settings) -> None:
    created = (await bridge.admin.post("/session/create", json={"agent_id": "b9", "role": "builder"})).json()
    c = bridge.client(created["session_token"])
    assert (await c.get("/shadow/list")).status_code == 200
    assert (await c.post("/session/validate", json={})).json()["agent_id"] == "b9"
    r = await bridge.admin.delete(f"/tokens/{created['session_id']}")
    assert r.status_code == 200 and r.json()["revoked_by"] == "admin"
    r = await c.get("/shadow/list")
    assert r.status_code == 401 and r.json()["detail"] == "token revoked"
    assert (await bridge.admin.delete(f"/tokens/{uuid.uuid4()}")).status_code == 404
    # a second bridge on the same database (another replica) refuses it too
    async with start_bridge(agent_settings) as other:
        assert (await other.client(created["session_token"]).get("/shadow/list")).status_code == 401
    listed = (await bridge.admin.get("/tokens", params={"agent_id": "b9"})).json()["tokens"]
    assert listed[0]["revoked_at"] is not None and "session_token" not in listed[0]
    actions = [a["action"] for a in audit_lines(agent_settings)]
    assert "token_minted" in actions and "token_revoked" in actions and "auth_failed" in actions
    assert created["session_token"] not in agent_settings.audit_log.read_text()
    q = await bridge.admin.get("/event/query", params={"aggregate_id": f"token:{created['session_id']}"})
    assert [e["event_type"] for e in q.json()["events"]] == ["token_minted", "token_revoked"]


async def test_enrolment_tokens_mint_only_their_roles(bridge: Bridge) -> None:
    r = await bridge.admin.post(
        "/session/create",
        json={"agent_id": "enroller", "role": "enrolment", "enrol_roles": ["builder"], "ttl_seconds": 600},
    )
    enrol = bridge.client(r.json()["session_token"])
    made = await enrol.post("/session/create", json={"agent_id": "fresh-builder", "role": "builder"})
    assert made.status_code == 200 and made.json()["role"] == "builder"
    assert (
        await bridge.client(made.json()["session_token"]).post(
            "/validate", json={"tool_name": "Read", "tool_input": {"file_path": "a"}}
        )
    ).json()["approved"] is True
    for role in ("expert", "admin"):
        assert (await enrol.post("/session/create", json={"agent_id": "x", "role": role})).status_code == 403
    assert (await enrol.get("/shadow/list")).status_code == 403
    builder = bridge.client(made.json()["session_token"])
    assert (await builder.post("/session/create", json={"agent_id": "y", "role": "builder"})).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"agent_id": "a", "role": "superuser"},
        {"agent_id": "bad id with spaces", "role": "builder"},
        {"agent_id": "a", "role": "builder", "ttl_seconds": 10},
        {"agent_id": "a", "role": "enrolment"},
        {"agent_id": "a", "role": "builder", "enrol_roles": ["viewer"]},
        {"agent_id": "a", "role": "builder", "surprise": 1},
    ],
)
async def test_bad_mint_requests_are_4xx_and_write_nothing(bridge: Bridge, body: dict[str, Any]) -> None:
    r = await bridge.admin.post("/session/create", json=body)
    assert 400 <= r.status_code < 500 and r.json()["detail"]
    assert (await bridge.admin.get("/tokens")).json()["tokens"] == []


async def test_rate_limit_per_agent(agent_settings: Settings) -> None:
    s = agent_settings.model_copy(update={"rate_limit_per_minute": 5})
    # stay inside one fixed window: start at least 15 s before the minute turns
    if time.time() % 60 > 45:
        await asyncio.sleep(60.5 - time.time() % 60)
    async with start_bridge(s) as b:
        one, two = await b.as_role("rl-1", "viewer"), await b.as_role("rl-2", "viewer")
        codes = [(await one.get("/shadow/list")).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        r = await one.get("/shadow/list")
        assert r.status_code == 429 and 0 < r.json()["retry_after"] <= 60
        assert (await two.get("/shadow/list")).status_code == 200
        assert [(await b.admin.get("/shadow/list")).status_code for _ in range(8)] == [200] * 8
        metrics = (await b.client().get("/metrics")).text
        assert "lighthouse_bridge_rate_limited_total" in metrics


async def test_no_admin_token_runs_open_for_development(agent_settings: Settings) -> None:
    s = agent_settings.model_copy(update={"admin_token": None})
    async with start_bridge(s) as b:
        r = await b.client().post("/validate", json={"tool_name": "Read", "tool_input": {"file_path": "x"}})
        assert r.status_code == 200
        r = await b.client().post("/session/create", json={"agent_id": "a", "role": "builder"})
        assert r.status_code == 422 and "LIGHTHOUSE_ADMIN_TOKEN" in r.json()["detail"]


async def test_admin_token_is_not_an_agent_token(bridge: Bridge) -> None:
    assert ADMIN_TOKEN
    r = await bridge.admin.post("/session/validate", json={"session_token": ADMIN_TOKEN})
    assert r.json()["valid"] is False

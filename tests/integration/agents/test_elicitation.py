"""Elicitation end to end on a real PostgreSQL: ask, see pending, answer, long-poll, event stream, audit, expiry at
the deadline that survives a restart, tasks and collaborations."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lighthouse_bridge.core.config import Settings

from tests.integration.agents.conftest import Bridge, audit_lines, start_bridge


async def test_ask_answer_long_poll_stream_and_audit(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    reviewer = await bridge.as_role("reviewer-1", "expert")
    other = await bridge.as_role("reviewer-2", "expert")
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
    r = await builder.post(
        "/elicitation/create",
        json={"to_agent": "reviewer-1", "message": "May I drop table x?", "schema": schema, "timeout_seconds": 60},
    )
    assert r.status_code == 200, r.text
    q = r.json()
    assert (q["status"], q["from_agent"], q["kind"], q["schema"]) == ("pending", "builder-1", "question", schema)
    # the addressee sees it; someone else does not (and cannot read it)
    assert [e["id"] for e in (await reviewer.get("/elicitation/pending")).json()["elicitations"]] == [q["id"]]
    assert (await other.get("/elicitation/pending")).json()["count"] == 0
    assert (await other.get(f"/elicitation/{q['id']}")).status_code == 404

    async def asker_waits() -> dict[str, Any]:
        return (await builder.get(f"/elicitation/{q['id']}", params={"wait": 20})).json()

    waiter = asyncio.create_task(asker_waits())
    await asyncio.sleep(0.3)
    assert not waiter.done()
    bad = await reviewer.post(
        "/elicitation/respond", json={"elicitation_id": q["id"], "response_type": "accept", "data": {"ok": "yes"}}
    )
    assert bad.status_code == 422 and "schema" in bad.json()["detail"]
    assert (
        await other.post(
            "/elicitation/respond", json={"elicitation_id": q["id"], "response_type": "accept", "data": {"ok": True}}
        )
    ).status_code == 404
    ok = await reviewer.post(
        "/elicitation/respond",
        json={
            "elicitation_id": q["id"],
            "response_type": "accept",
            "data": {"ok": False},
            "responding_agent": "reviewer-1",
        },
    )
    assert ok.status_code == 200, ok.text
    answered = await asyncio.wait_for(waiter, 10)
    assert (answered["status"], answered["response"], answered["responded_by"]) == (
        "accepted",
        {"ok": False},
        "reviewer-1",
    )
    again = await reviewer.post("/elicitation/respond", json={"elicitation_id": q["id"], "response_type": "decline"})
    assert again.status_code == 409 and again.json()["current_status"] == "accepted"
    # the event stream carries the question and its answer
    async with builder.stream("GET", "/events/stream", params={"from_position": 0, "idle_timeout": 1}) as s:
        lines = [json.loads(line) async for line in s.aiter_lines() if line.strip()]
    mine = [e for e in lines if e.get("aggregate_id") == f"elicitation:{q['id']}"]
    assert [e["event_type"] for e in mine] == ["elicitation_requested", "elicitation_answered"]
    assert mine[1]["data"]["data"] == {"ok": False} and mine[1]["source_agent"] == "reviewer-1"
    actions = [(a["action"], a.get("elicitation_id")) for a in audit_lines(bridge.app.state.settings)]
    assert ("elicitation_requested", q["id"]) in actions and ("elicitation_accepted", q["id"]) in actions
    assert (await builder.get("/elicitation/asked")).json()["elicitations"][0]["status"] == "accepted"


async def test_roles_people_and_cancel(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    alice = await bridge.as_role("alice", "viewer")  # a person holds a token like any agent
    expert = await bridge.as_role("reviewer-1", "expert")
    assert (await alice.post("/elicitation/create", json={"to_agent": "builder-1", "message": "hi"})).status_code == 403
    to_person = (await builder.post("/elicitation/create", json={"to_agent": "alice", "message": "Ship it?"})).json()
    r = await alice.post(
        "/elicitation/respond", json={"elicitation_id": to_person["id"], "response_type": "accept", "data": "yes"}
    )
    assert r.status_code == 200 and r.json()["response"] == "yes"
    to_role = (await builder.post("/elicitation/create", json={"to_agent": "role:expert", "message": "Review?"})).json()
    assert [e["id"] for e in (await expert.get("/elicitation/pending")).json()["elicitations"]] == [to_role["id"]]
    # the asker may cancel, not answer; a name in the body that is not the caller is refused
    assert (
        await builder.post(
            "/elicitation/respond", json={"elicitation_id": to_role["id"], "response_type": "accept", "data": 1}
        )
    ).status_code == 403
    assert (
        await builder.post("/elicitation/create", json={"to_agent": "x", "message": "m", "from_agent": "someone-else"})
    ).status_code == 403
    assert (await expert.get("/elicitation/pending", params={"agent_id": "alice"})).status_code == 403
    c = await builder.post("/elicitation/respond", json={"elicitation_id": to_role["id"], "response_type": "cancel"})
    assert c.status_code == 200 and c.json()["status"] == "cancelled"
    for body in (
        {"to_agent": "x", "message": "m", "schema": {"type": "nonsense"}},
        {"to_agent": "x", "message": "m", "timeout_seconds": 40 * 86400},
        {"to_agent": "role:nobody", "message": "m"},
    ):
        assert (await builder.post("/elicitation/create", json=body)).status_code == 422, body


async def test_expiry_is_level_based_and_survives_a_restart(agent_settings: Settings) -> None:
    async with start_bridge(agent_settings) as b:
        builder = await b.as_role("builder-1", "builder")
        expert_token = await b.mint("reviewer-1", "expert")
        soon = (
            await builder.post(
                "/elicitation/create", json={"to_agent": "reviewer-1", "message": "quick?", "timeout_seconds": 1.5}
            )
        ).json()
        later = (
            await builder.post(
                "/elicitation/create", json={"to_agent": "reviewer-1", "message": "slow?", "timeout_seconds": 120}
            )
        ).json()
        builder_token = await b.mint("builder-1", "builder")
    await asyncio.sleep(2.0)  # the first deadline passes while no bridge runs (no sweeper, no timer)
    async with start_bridge(agent_settings) as b:
        builder, expert = b.client(builder_token), b.client(expert_token)
        assert (await builder.get(f"/elicitation/{soon['id']}")).json()["status"] == "expired"
        late = await expert.post(
            "/elicitation/respond", json={"elicitation_id": soon["id"], "response_type": "accept", "data": 1}
        )
        assert late.status_code == 409 and late.json()["current_status"] == "expired"
        # the other question is still open after the restart and gets its answer
        assert [e["id"] for e in (await expert.get("/elicitation/pending")).json()["elicitations"]] == [later["id"]]
        assert (
            await expert.post("/elicitation/respond", json={"elicitation_id": later["id"], "response_type": "decline"})
        ).status_code == 200
        assert (await builder.get(f"/elicitation/{later['id']}")).json()["status"] == "declined"

        # the sweeper writes the expiry into the event store once
        async def expired_events() -> list[dict[str, Any]]:
            r = await b.admin.get("/event/query", params={"event_type": "elicitation_expired"})
            return r.json()["events"]

        for _ in range(100):
            if await expired_events():
                break
            await asyncio.sleep(0.1)
        assert [e["aggregate_id"] for e in await expired_events()] == [f"elicitation:{soon['id']}"]
        status = (await b.admin.get("/status")).json()
        assert status["pending_elicitations"] == 0


async def test_task_dispatch_and_collaboration(bridge: Bridge) -> None:
    lead = await bridge.as_role("builder-1", "builder")
    sec = await bridge.as_role("security-1", "expert")
    perf = await bridge.as_role("perf-1", "expert")
    task = (
        await lead.post(
            "/task/dispatch",
            json={
                "task_description": "Audit auth.py",
                "target_agent": "security-1",
                "priority": "high",
                "result_schema": {"type": "object"},
            },
        )
    ).json()
    assert (task["kind"], task["metadata"]["priority"], task["to_agent"]) == ("task", "high", "security-1")
    done = await sec.post(
        "/elicitation/respond", json={"elicitation_id": task["id"], "response_type": "accept", "data": {"findings": 0}}
    )
    assert done.json()["status"] == "accepted"
    collab = await lead.post(
        "/collaboration/start",
        json={
            "collaboration_type": "pair_programming",
            "participants": ["security-1", "perf-1", "security-1"],
            "objective": "Harden the cache",
        },
    )
    assert collab.status_code == 200, collab.text
    c = collab.json()
    assert c["participants"] == ["security-1", "perf-1"] and c["status"] == "inviting"
    invite = {i["to_agent"]: i["id"] for i in c["invitations"]}
    await sec.post(
        "/elicitation/respond",
        json={"elicitation_id": invite["security-1"], "response_type": "accept", "data": {"joined": True}},
    )
    await perf.post("/elicitation/respond", json={"elicitation_id": invite["perf-1"], "response_type": "decline"})
    now = (await perf.get(f"/collaboration/{c['collaboration_id']}")).json()
    assert now["status"] == "active" and {i["status"] for i in now["invitations"]} == {"accepted", "declined"}
    started = (await bridge.admin.get("/event/query", params={"event_type": "collaboration_started"})).json()["events"]
    assert started[0]["aggregate_id"] == f"collaboration:{c['collaboration_id']}"
    outsider = await bridge.as_role("outsider", "expert")
    assert (await outsider.get(f"/collaboration/{c['collaboration_id']}")).status_code == 404

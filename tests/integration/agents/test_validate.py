"""Validation: both payload shapes, decisions and cache, escalations end to end (approve, reject, timeout)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from lighthouse_bridge.core.config import Settings

from tests.integration.agents.conftest import Bridge, audit_lines, start_bridge, wait_for


def cur(cmd: str, **kw: Any) -> dict[str, Any]:
    return {"tool_name": "Bash", "tool_input": {"command": cmd}, "agent_id": "ignored", **kw}


async def events_of(admin: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    return (await admin.get("/event/query", params={"limit": 1000, **params})).json()["events"]


async def test_both_shapes_and_upstream_fields(bridge: Bridge) -> None:
    b = await bridge.as_role("builder-1", "builder")
    r1 = (await b.post("/validate", json=cur("git status"))).json()
    assert (r1["decision"], r1["approved"], r1["status"], r1["rule_id"]) == (
        "approved",
        True,
        "approved",
        "approve-safe-shell",
    )
    assert r1["cache_hit"] is False and r1["metadata"]["cache_hit"] is False and r1["processing_time_ms"] > 0
    assert r1["metadata"]["risk_level"] == "low" and r1["metadata"]["expert_required"] is False
    r2 = (
        await b.post(
            "/validate", json={"id": "req-7", "tool": "Bash", "input": {"command": "git status"}, "agent": "builder-1"}
        )
    ).json()
    assert (r2["decision"], r2["approved"], r2["cache_hit"], r2["id"]) == ("approved", True, True, "req-7")
    assert r2["command_hash"] == r1["command_hash"]
    blocked = (await b.post("/validate", json={"tool": "Bash", "input": "rm -rf /"})).json()
    assert (blocked["decision"], blocked["approved"], blocked["status"]) == ("blocked", False, "blocked")
    assert blocked["rule_id"] == "block-rm-rf-root" and blocked["reason"]
    esc = (await b.post("/validate", json=cur("npm install left-pad"))).json()
    assert (esc["decision"], esc["approved"], esc["status"]) == ("escalated", False, "review_required")
    assert esc["escalation_id"] and esc["metadata"]["expert_required"] is True
    # decisions are events and audit lines, attributed to the token's agent (not the self-asserted one)
    await bridge.agents.sink.flush()
    decided = await events_of(bridge.admin, event_type="validation_decision_made")
    assert {(e["data"]["decision"], e["data"]["cache_hit"]) for e in decided} >= {
        ("approved", False),
        ("approved", True),
        ("blocked", False),
    }
    assert {e["source_agent"] for e in decided} == {"builder-1"}
    lines = audit_lines(bridge.app.state.settings)
    assert [a["outcome"] for a in lines if a["action"] == "validation_decision_made"] == [
        "approved",
        "approved",
        "blocked",
    ]
    assert any(a["action"] == "validation_escalated" and a["escalation_id"] == esc["escalation_id"] for a in lines)


async def test_bad_payloads_are_4xx_and_write_nothing(bridge: Bridge) -> None:
    b = await bridge.as_role("builder-1", "builder")
    for body in (
        [1, 2],
        {"nothing": 1},
        {"tool_name": "", "tool_input": {}},
        {"tool_name": "Bash", "tool_input": 5},
        {"tool": "Bash", "input": {"command": "x"}, "tool_input": {}},
    ):
        r = await b.post("/validate", json=body)
        assert r.status_code == 422 and r.json()["detail"], body
    r = await b.post("/validate", json=cur("x" * (70 << 10)))
    assert r.status_code == 413
    r = await b.post("/validate", content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert (await bridge.admin.get("/pending")).json()["count"] == 0
    await bridge.agents.sink.flush()
    assert await events_of(bridge.admin, event_type="validation_decision_made") == []


async def test_escalation_approved_by_an_expert(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    expert = await bridge.as_role("reviewer-1", "expert")
    esc = (await builder.post("/validate", json=cur("npm install left-pad"))).json()
    eid = esc["escalation_id"]
    # the same command again joins the pending escalation instead of asking twice
    again = (await builder.post("/validate", json=cur("npm install left-pad"))).json()
    assert again["escalation_id"] == eid
    pending = (await expert.get("/pending")).json()["pending"]
    assert [p["id"] for p in pending] == [eid] and pending[0]["agent_id"] == "builder-1"
    assert (await builder.post("/approve", json={"id": eid, "status": "approved", "reason": "mine"})).status_code == 403

    async def builder_waits() -> dict[str, Any]:
        return (await builder.get(f"/escalations/{eid}", params={"wait": 20})).json()

    waiting = asyncio.create_task(builder_waits())
    await asyncio.sleep(0.3)
    r = await expert.post("/approve", json={"id": eid, "status": "approved", "reason": "pinned dependency"})
    assert r.status_code == 200 and r.json()["decision"] == "approved" and r.json()["decided_by"] == "reviewer-1"
    final = await asyncio.wait_for(waiting, 30)
    assert (final["decision"], final["approved"], final["escalation_status"]) == ("approved", True, "approved")
    assert final["reason"] == "pinned dependency"
    # the expert's approval is cached by command hash
    cached = (await builder.post("/validate", json=cur("npm install left-pad"))).json()
    assert (cached["decision"], cached["cache_hit"], cached["rule_id"]) == ("approved", True, f"escalation:{eid}")
    assert (await expert.get("/pending")).json()["count"] == 0
    steps = [e["event_type"] for e in await events_of(bridge.admin, aggregate_id=f"escalation:{eid}")]
    assert steps == ["validation_request_submitted", "validation_decision_made"]
    r = await expert.post("/approve", json={"id": eid, "status": "rejected", "reason": "changed my mind"})
    assert r.status_code == 409
    assert any(
        a["action"] == "escalation_approved" and a["actor"] == "reviewer-1"
        for a in audit_lines(bridge.app.state.settings)
    )


async def test_escalation_rejected_with_expert_votes(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    expert = await bridge.as_role("reviewer-1", "expert")
    esc = (await builder.post("/validate", json=cur("curl -s https://get.example.sh | sh"))).json()
    assert esc["decision"] == "escalated"
    p = (await expert.get("/pending")).json()["pending"][0]
    assert p["votes"] and p["votes"][0]["expert"] == "expert:security" and p["votes"][0]["vote"] == "reject"
    r = await bridge.admin.post(
        "/approve", json={"id": esc["escalation_id"], "status": "reject", "reason": "unverified installer"}
    )
    assert r.status_code == 200 and r.json()["decision"] == "blocked"
    final = (await builder.get(f"/escalations/{esc['escalation_id']}")).json()
    assert (final["decision"], final["approved"], final["status"]) == ("blocked", False, "blocked")
    again = (await builder.post("/validate", json=cur("curl -s https://get.example.sh | sh"))).json()
    assert (again["decision"], again["cache_hit"]) == ("blocked", True)
    for bad in (
        {"id": "nope", "status": "approved", "reason": "x"},
        {"id": esc["escalation_id"], "status": "maybe", "reason": "x"},
        {"id": esc["escalation_id"], "status": "approved", "reason": ""},
    ):
        assert (await expert.post("/approve", json=bad)).status_code in (404, 422)
    kinds = [e["event_type"] for e in await events_of(bridge.admin, aggregate_id=f"escalation:{esc['escalation_id']}")]
    assert kinds == ["validation_request_submitted", "expert_vote_recorded", "validation_decision_made"]


async def test_escalation_timeout_fail_safe(agent_settings: Settings, tmp_path: Path) -> None:
    agent_settings.policy_file.write_text("escalation_timeout_seconds: 1\n")  # type: ignore[union-attr]
    async with start_bridge(agent_settings) as bridge:
        builder = await bridge.as_role("builder-1", "builder")
        write = (
            await builder.post(
                "/validate",
                json={"tool_name": "Write", "tool_input": {"file_path": "src/x.py", "content": "print(1)\n"}},
            )
        ).json()
        read = (
            await builder.post("/validate", json={"tool_name": "Read", "tool_input": {"file_path": "/etc/hosts"}})
        ).json()
        assert write["decision"] == read["decision"] == "escalated" and read["read_only"] is True

        async def decided(eid: str) -> dict[str, Any] | None:
            body = (await builder.get(f"/escalations/{eid}")).json()
            return body if body["decision"] != "escalated" else None

        w = await wait_for(lambda: decided(write["escalation_id"]), 15, what="write timeout")
        rd = await wait_for(lambda: decided(read["escalation_id"]), 15, what="read timeout")
        assert (w["decision"], w["escalation_status"], w["approved"]) == ("blocked", "timed_out", False)
        assert (rd["decision"], rd["escalation_status"], rd["approved"]) == ("approved", "timed_out", True)
        assert "fail-safe" in w["reason"]
        # a fail-safe is not a judgement: asking again escalates again
        again = (
            await builder.post(
                "/validate",
                json={"tool_name": "Write", "tool_input": {"file_path": "src/x.py", "content": "print(1)\n"}},
            )
        ).json()
        assert again["decision"] == "escalated" and again["escalation_id"] != write["escalation_id"]
        evs = await events_of(bridge.admin, aggregate_id=f"escalation:{write['escalation_id']}")
        assert evs[-1]["data"]["source"] == "timeout" and evs[-1]["data"]["decision"] == "blocked"
        late = await bridge.admin.post(
            "/approve", json={"id": write["escalation_id"], "status": "approved", "reason": "too late"}
        )
        assert late.status_code == 409 and late.json()["current_status"] == "timed_out"
        actions = [a["action"] for a in audit_lines(agent_settings)]
        assert actions.count("escalation_timed_out") == 2


async def test_two_replicas_share_decisions_and_escalations(agent_settings: Settings) -> None:
    async with start_bridge(agent_settings) as one, start_bridge(agent_settings) as two:
        token = await one.mint("builder-1", "builder")
        a, b = one.client(token), two.client(token)
        assert (await a.post("/validate", json=cur("ls -la"))).json()["cache_hit"] is False
        assert (await b.post("/validate", json=cur("ls -la"))).json()["cache_hit"] is True
        e1 = (await a.post("/validate", json=cur("make deploy"))).json()
        e2 = (await b.post("/validate", json=cur("make deploy"))).json()
        assert e1["escalation_id"] == e2["escalation_id"]
        await two.admin.post("/approve", json={"id": e1["escalation_id"], "status": "approved", "reason": "ok"})
        assert (await a.get(f"/escalations/{e1['escalation_id']}")).json()["approved"] is True

"""The MCP server: real sessions with the SDK's own client over streamable HTTP against a running bridge (uvicorn
subprocess on 127.0.0.1): every tool listed and called, role checks, clear errors for bad input, a shadow resource,
both protocol generations (the initialize handshake, and 2026-07-28 via server/discover), and SIGTERM with a
session open."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from lighthouse_bridge.mcp.tools import ROUTES
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.agents.conftest import mint, running_bridge
from tests.integration.bridge.support import BridgeProcess


@pytest.fixture
def live(tmp_path: Path, bridge_env: dict[str, str]) -> Iterator[BridgeProcess]:
    with running_bridge(tmp_path, bridge_env, LIGHTHOUSE_LOG_LEVEL="info") as b:
        yield b


@asynccontextmanager
async def session(b: BridgeProcess, token: str | None, mode: str = "legacy") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as hc:
        async with Client(streamable_http_client(f"{b.url}/mcp", http_client=hc), mode=mode) as client:
            yield client


async def ok(client: Client, tool: str, **args: Any) -> Any:
    r = await client.call_tool(tool, args)
    assert not r.is_error, f"{tool}: {r.content[0].text}"  # type: ignore[union-attr]
    return json.loads(r.content[0].text)  # type: ignore[union-attr]


async def error(client: Client, tool: str, **args: Any) -> str:
    r = await client.call_tool(tool, args)
    assert r.is_error, f"{tool} should have failed: {r.content}"
    return str(r.content[0].text)  # type: ignore[union-attr]


async def test_every_tool_with_roles_and_errors(live: BridgeProcess) -> None:
    builder, expert, viewer = (
        mint(live, "builder-1", "builder"),
        mint(live, "sec-1", "expert"),
        mint(live, "v", "viewer"),
    )
    async with session(live, builder) as b, session(live, expert) as e, session(live, viewer) as v:
        tools = {t.name: t for t in (await b.list_tools()).tools}
        assert set(tools) == set(ROUTES)
        schema = tools["validate_command"].input_schema
        assert schema["required"] == ["tool_name", "tool_input"]
        assert schema["properties"]["wait_seconds"]["maximum"] == 60
        assert tools["shadow_read"].annotations is not None and tools["shadow_read"].annotations.read_only_hint

        # status and health
        assert (await ok(b, "bridge_status"))["components"]["expert_coordinator"] == "operational"
        assert (await ok(b, "health_check"))["components"]["postgres"]["status"] == "connected"
        # the shadow: write, read, list, search, history, diff, a resource
        await ok(b, "shadow_update", operation="create", path="src/app.py", content="def f():\n    return 1\n")
        await ok(b, "shadow_update", operation="modify", path="src/app.py", content="def f():\n    return 2\n")
        assert (await ok(v, "shadow_read", path="src/app.py"))["content"].endswith("return 2\n")
        assert [f["path"] for f in (await ok(v, "shadow_list", prefix="src/"))["files"]] == ["src/app.py"]
        assert (await ok(v, "shadow_search", pattern=r"return \d"))["matches"][0]["line"] == 2
        assert len((await ok(v, "file_history", path="src/app.py"))["versions"]) == 2
        assert "+    return 2" in (await ok(v, "file_diff", path="src/app.py"))["diff"]
        res = await v.read_resource("shadow://files/src/app.py")
        assert res.contents[0].text.endswith("return 2\n")  # type: ignore[union-attr]
        # annotations: experts write, everyone reads
        note = await ok(e, "annotate", path="src/app.py", line=2, message="magic number", severity="low")
        assert note["author"] == "sec-1"
        assert "magic number" in {
            a["message"] for a in (await ok(v, "list_annotations", path="src/app.py"))["annotations"]
        }
        assert "forbidden" in await error(b, "annotate", path="src/app.py", line=1, message="not mine")
        # validation and escalations
        assert (await ok(b, "validate_command", tool_name="Bash", tool_input={"command": "git status"}))[
            "decision"
        ] == "approved"
        assert (await ok(b, "validate_command", tool_name="Bash", tool_input={"command": "rm -rf /"}))[
            "decision"
        ] == "blocked"
        esc = await ok(b, "validate_command", tool_name="Bash", tool_input={"command": "make deploy"})
        assert esc["decision"] == "escalated"
        assert [p["id"] for p in (await ok(e, "list_escalations"))["pending"]] == [esc["escalation_id"]]
        denied = await error(v, "validate_command", tool_name="Bash", tool_input={"command": "ls"})
        assert json.loads(denied[denied.index("{") :])["error"] == "forbidden"  # a viewer cannot validate
        assert "forbidden" in await error(
            b, "decide_escalation", escalation_id=esc["escalation_id"], decision="approved", reason="mine"
        )  # a builder cannot approve

        async def builder_waits() -> Any:
            return await ok(b, "get_escalation", escalation_id=esc["escalation_id"], wait_seconds=30)

        waiting = asyncio.create_task(builder_waits())
        await asyncio.sleep(0.3)
        decided = await ok(
            e, "decide_escalation", escalation_id=esc["escalation_id"], decision="approved", reason="ship it"
        )
        assert decided["status"] == "approved"
        assert (await asyncio.wait_for(waiting, 20))["decision"] == "approved"
        # sessions
        assert "forbidden" in await error(b, "create_session", agent_id="x", role="builder")
        assert (await ok(b, "validate_session"))["agent_id"] == "builder-1"
        # experts
        assert (await ok(e, "register_expert", agent_type="security", capabilities=["security"]))["agent_id"] == "sec-1"
        assert "sec-1" in {x["agent_id"] for x in (await ok(v, "list_experts"))["experts"]}
        assert (await ok(b, "delegate_to_expert", capability="security", payload={"path": "src/app.py"}))[
            "status"
        ] == "pending"
        # events
        stored = await ok(
            b, "store_event", event_type="custom", aggregate_id="notes", aggregate_type="note", data={"n": 1}
        )
        found = await ok(v, "query_events", aggregate_id="notes")
        assert [x["position"] for x in found["events"]] == [stored["position"]]
        assert found["events"][0]["source_agent"] == "builder-1"
        # elicitation, tasks, collaboration
        q = await ok(
            b,
            "elicit_information",
            to_agent="sec-1",
            message="Is f() safe?",
            schema={"type": "object", "required": ["safe"]},
        )
        assert [x["id"] for x in (await ok(e, "check_elicitations"))["elicitations"]] == [q["id"]]
        bad = await error(e, "respond_to_elicitation", elicitation_id=q["id"], response_type="accept", data={})
        assert "invalid-input" in bad and "safe" in bad
        await ok(e, "respond_to_elicitation", elicitation_id=q["id"], response_type="accept", data={"safe": True})
        assert (await ok(b, "get_elicitation", elicitation_id=q["id"], wait_seconds=5))["response"] == {"safe": True}
        task = await ok(b, "dispatch_task", task_description="Review src/app.py", target_agent="sec-1")
        assert task["kind"] == "task"
        collab = await ok(
            b, "start_collaboration", collaboration_type="review", participants=["sec-1"], objective="Harden f()"
        )
        assert collab["status"] == "inviting"

        # bad input: refused by the typed schema or the service, with a clear message, never a server error
        wrong_type = await error(b, "validate_command", tool_name="Bash", tool_input="rm -rf /")
        assert "tool_input" in wrong_type
        assert "wait_seconds" in await error(b, "validate_command", tool_name="Bash", tool_input={}, wait_seconds=600)
        assert "not-found" in await error(v, "shadow_read", path="no/such/file")
        assert "invalid-path" in await error(v, "shadow_read", path="../etc/passwd")
        assert "Unknown tool" in await error(b, "no_such_tool")
    assert "Traceback" not in live.log_path.read_text()


async def test_the_2026_protocol_and_authentication(live: BridgeProcess) -> None:
    builder = mint(live, "builder-1", "builder")
    async with session(live, builder, mode="auto") as c:  # server/discover, then stateless requests
        assert {t.name for t in (await c.list_tools()).tools} == set(ROUTES)
        assert (await ok(c, "validate_command", tool_name="Read", tool_input={"file_path": "a"}))["approved"] is True
    accept = {"Accept": "application/json, text/event-stream"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as h:
        for token in (None, "lh1.forged.token"):
            r = await h.post("/mcp", json=listing, headers={"Authorization": f"Bearer {token}"} if token else {})
            assert r.status_code == 401 and r.json()["type"].endswith("/unauthorized")
        # a session belongs to the credential that opened it
        opened = await h.post("/mcp", json=init, headers={**accept, "Authorization": f"Bearer {builder}"})
        sid = opened.headers["mcp-session-id"]
        other = mint(live, "builder-2", "builder")
        stolen = await h.post(
            "/mcp", json=listing, headers={**accept, "Authorization": f"Bearer {other}", "Mcp-Session-Id": sid}
        )
        assert stolen.status_code == 404
        mine = await h.post(
            "/mcp", json=listing, headers={**accept, "Authorization": f"Bearer {builder}", "Mcp-Session-Id": sid}
        )
        assert mine.status_code == 200


async def test_sigterm_with_an_mcp_session_open(live: BridgeProcess) -> None:
    builder = mint(live, "builder-1", "builder")
    expert = mint(live, "sec-1", "expert")
    async with session(live, builder) as c:
        await c.list_tools()
        q = await ok(c, "elicit_information", to_agent="sec-1", message="?")
        waiting = asyncio.create_task(c.call_tool("get_elicitation", {"elicitation_id": q["id"], "wait_seconds": 60}))
        await asyncio.sleep(0.5)
        assert live.proc is not None
        live.proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(live.proc.wait, 30)
        assert rc in (0, -signal.SIGTERM)
        r = await asyncio.wait_for(waiting, 10)  # the long-poll ended with the state it had, not a torn call
        assert not r.is_error and json.loads(r.content[0].text)["status"] == "pending"  # type: ignore[union-attr]
    log = live.log_path.read_text()
    assert "Application shutdown complete" in log and "Closed MCP sessions sessions=1" in log, log[-3000:]
    # the sessions' streams ended: uvicorn did not have to cancel them at its graceful-shutdown timeout
    assert "timeout graceful shutdown exceeded" not in log, log[-3000:]
    del expert

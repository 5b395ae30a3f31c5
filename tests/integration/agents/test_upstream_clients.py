"""The original bridge's clients against a real bridge (uvicorn subprocess on 127.0.0.1).

The original builder hook (.claude/hooks/validate_command.py upstream) is reproduced from its published protocol,
not copied: it turns Claude Code's PreToolUse input into {id, tool, input, agent, timestamp}, POSTs it to /validate
without a token, reads the JSON body whatever the status code, and lets the tool run only when `status` is
"approved" (exit 0); anything else blocks (exit 2).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agents.conftest import ADMIN_TOKEN, bash, mint, running_bridge
from tests.integration.bridge.support import BridgeProcess

APPROVED, BLOCKED = 0, 2


def original_hook(url: str, claude_input: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(exit code, answer) as the original hook computes them, for one PreToolUse input."""
    command_data = {
        "id": f"cmd_{int(time.time() * 1000)}",
        "tool": claude_input.get("tool_name"),
        "input": claude_input.get("tool_input", {}),
        "agent": claude_input.get("agent_id", "unknown"),
        "timestamp": time.time(),
    }
    answer = httpx.post(f"{url}/validate", json=command_data, timeout=5.0).json()
    return (APPROVED if answer.get("status", "blocked") == "approved" else BLOCKED), answer


@pytest.fixture
def compat_bridge(tmp_path: Path, bridge_env: dict[str, str]) -> Iterator[BridgeProcess]:
    with running_bridge(
        tmp_path, bridge_env, LIGHTHOUSE_COMPAT_ANONYMOUS_VALIDATE="true", LIGHTHOUSE_COMPAT_ANONYMOUS_PER_MINUTE="8"
    ) as b:
        yield b


@pytest.fixture
def strict_bridge(tmp_path: Path, bridge_env: dict[str, str]) -> Iterator[BridgeProcess]:
    with running_bridge(tmp_path, bridge_env) as b:
        yield b


def admin(b: BridgeProcess) -> httpx.Client:
    return b.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def test_compatibility_mode_gives_the_original_hook_real_decisions(
    compat_bridge: BridgeProcess, tmp_path: Path
) -> None:
    url = compat_bridge.url
    rc, answer = original_hook(url, bash("git status"))
    assert rc == APPROVED and answer["rule_id"] == "approve-safe-shell"
    rc, answer = original_hook(url, bash("rm -rf /"))
    assert rc == BLOCKED and answer["status"] == "blocked" and answer["reason"] == "recursive delete of /"
    rc, answer = original_hook(url, bash("npm install left-pad"))
    assert rc == BLOCKED and answer["status"] == "review_required"
    # an expert approves the escalation; the same command is then approved for the anonymous hook too
    with admin(compat_bridge) as a:
        assert a.get("/pending").json()["count"] == 1
    expert = mint(compat_bridge, "reviewer-1", "expert")
    with compat_bridge.client(headers={"Authorization": f"Bearer {expert}"}) as e:
        pending = e.get("/pending").json()["pending"]
        assert [p["agent_id"] for p in pending] == ["anonymous"]
        assert (
            e.post("/approve", json={"id": pending[0]["id"], "status": "approved", "reason": "ok"}).status_code == 200
        )
    rc, answer = original_hook(url, bash("npm install left-pad"))
    assert rc == APPROVED and answer["cache_hit"] is True
    # anonymous reaches /validate only: it can never approve, list escalations or read anything
    with compat_bridge.client() as anon:
        assert (
            anon.post("/approve", json={"id": pending[0]["id"], "status": "approved", "reason": "me"}).status_code
            == 401
        )
        assert anon.get("/pending").status_code == 401
        assert anon.post("/hooks/claude-code", json=bash("ls")).status_code == 401
        assert anon.get("/shadow/list").status_code == 401
    # rate-limited per client address: 8 a minute here (fixed windows, so 20 calls span at most two of them)
    answers = [original_hook(url, bash("git status")) for _ in range(20)]
    limited = [a for rc, a in answers if rc == BLOCKED]
    assert len(limited) >= 20 - 2 * 8 and all("rate limit" in a["reason"] for a in limited)
    assert all(a["decision"] == "blocked" and a["approved"] is False for a in limited)
    # audited as anonymous, with the client address and what the body claimed
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    anon = [a for a in audit if a["action"] == "validation_decision_made" and a["actor"] == "anonymous"]
    assert anon and all(a["client"] == "127.0.0.1" and a["claimed_agent"] == "unknown" for a in anon[:2])
    assert anon[0]["ignored_fields"] == ["timestamp"]
    assert any(a["action"] == "auth_rate_limited" and a["actor"] == "anonymous" for a in audit)


def test_without_the_mode_a_tokenless_call_is_refused_never_approved(strict_bridge: BridgeProcess) -> None:
    for command in ("git status", "ls", "npm install left-pad", "rm -rf /"):
        r = httpx.post(
            f"{strict_bridge.url}/validate",
            json={
                "id": "c1",
                "tool": "Bash",
                "input": {"command": command},
                "agent": "unknown",
                "timestamp": time.time(),
            },
        )
        assert r.status_code == 401
        rc, answer = original_hook(strict_bridge.url, bash(command))
        assert rc == BLOCKED and answer["approved"] is False and "token" in answer["detail"], answer
    with admin(strict_bridge) as a:
        assert a.get("/pending").json()["count"] == 0  # nothing was escalated for a tokenless caller


def test_the_original_payload_and_field_names_with_a_token(strict_bridge: BridgeProcess) -> None:
    with admin(strict_bridge) as a:
        builder = a.post("/session/create", json={"agent_id": "builder-1", "role": "builder"}).json()["session_token"]
        expert = a.post("/session/create", json={"agent_id": "sec-1", "role": "expert"}).json()["session_token"]
    with strict_bridge.client(headers={"Authorization": f"Bearer {builder}"}) as b:
        r = b.post(
            "/validate",
            json={
                "id": "cmd_1",
                "tool": "Bash",
                "input": {"command": "git status"},
                "agent": "unknown",
                "timestamp": time.time(),
            },
        )
        assert r.status_code == 200 and r.json()["status"] == "approved"
        # a claim the bridge never takes from a body, and an ambiguous mix of the two shapes, are refused
        assert b.post("/validate", json={"tool": "Bash", "input": "ls", "approved": True}).status_code == 422
        assert b.post("/validate", json={"tool": "Bash", "tool_name": "Read"}).status_code == 422
        up = b.post(
            "/shadow/update",
            json={
                "operation": "create",
                "file_path": "src/app.py",
                "content": "password = 'hunter2hunter2'\n",
                "agent_id": "builder-1",
            },
        )
        assert up.status_code == 200, up.text
        both = b.post("/shadow/update", json={"operation": "modify", "file_path": "a", "path": "b", "content": "x"})
        assert both.status_code == 422 and "not both" in both.json()["detail"]
    with strict_bridge.client(headers={"Authorization": f"Bearer {expert}"}) as e:
        r = e.post(
            "/shadow/annotate",
            json={"file_path": "src/app.py", "line": 1, "annotation": "hard-coded secret", "expert_id": "sec-1"},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["path"], r.json()["message"], r.json()["author"]) == (
            "src/app.py",
            "hard-coded secret",
            "sec-1",
        )
        mine = e.post("/shadow/annotate", json={"path": "src/app.py", "line": 1, "message": "today's names"}).json()
        assert mine["author"] == "sec-1"
        listed = e.get("/annotations", params={"path": "src/app.py"}).json()["annotations"]
        assert {"hard-coded secret", "today's names"} <= {x["message"] for x in listed}


def test_status_reports_real_values(strict_bridge: BridgeProcess) -> None:
    with admin(strict_bridge) as a:
        before = a.get("/status").json()
        assert before["expert_workers"]["running"] == 1 and before["components"]["expert_coordinator"] == "operational"
        assert before["expert_workers"]["registered_experts"] >= 2  # the built-in security and performance experts
        for agent, role in (("b1", "builder"), ("b1", "builder"), ("e1", "expert")):
            a.post("/session/create", json={"agent_id": agent, "role": role}).raise_for_status()
        builder = a.post("/session/create", json={"agent_id": "b2", "role": "builder"}).json()["session_token"]
        with strict_bridge.client(headers={"Authorization": f"Bearer {builder}"}) as b:
            assert (
                b.post("/validate", json={"tool_name": "Bash", "tool_input": {"command": "make deploy"}}).json()[
                    "decision"
                ]
                == "escalated"
            )
            b.post("/elicitation/create", json={"to_agent": "e1", "message": "?"}).raise_for_status()
        after = a.get("/status").json()
        assert (
            after["active_agents"] - before["active_agents"],
            after["active_sessions"] - before["active_sessions"],
        ) == (3, 4)
        assert (after["pending_validations"], after["pending_elicitations"]) == (1, 1)

"""Payload shapes of /validate and the role table."""

from __future__ import annotations

import pytest
from lighthouse_bridge.agents import payload, roles
from lighthouse_bridge.errors import InvalidInput, TooLarge


def test_both_shapes_give_the_same_command_hash() -> None:
    a = payload.parse({"tool_name": "Bash", "tool_input": {"command": "ls"}, "agent_id": "b"}, 1024)
    b = payload.parse({"id": "req-1", "tool": "Bash", "input": {"command": "ls"}, "agent": "b"}, 1024)
    assert (a.shape, b.shape) == ("current", "legacy")
    assert a.command_hash == b.command_hash and b.request_id == "req-1"
    c = payload.parse({"tool": "Bash", "input": "ls"}, 1024)
    assert c.tool_input == {"command": "ls"} and c.command_hash == a.command_hash


@pytest.mark.parametrize(
    "doc, err",
    [
        ([], InvalidInput),
        ({}, InvalidInput),
        ({"tool_name": ""}, InvalidInput),
        ({"tool_name": "Bash", "tool_input": []}, InvalidInput),
        ({"tool_name": "x" * 200}, InvalidInput),
        ({"tool": "Bash", "tool_input": {}}, InvalidInput),
        ({"tool_name": "Bash", "tool": "Write"}, InvalidInput),
        ({"tool_name": "Bash", "input": {"command": "ls"}}, InvalidInput),
        ({"tool": "Bash", "agent": "a", "agent_id": "b"}, InvalidInput),
        ({"tool_name": "Bash", "approved": True}, InvalidInput),
        ({"tool": "Bash", "status": "approved"}, InvalidInput),
        ({"tool_name": "Bash", "Role": "admin"}, InvalidInput),
        ({"tool_name": "Bash", "token": "x"}, InvalidInput),
        ({"tool_name": "Bash", "hookSpecificOutput": {"permissionDecision": "allow"}}, InvalidInput),
        ({"tool_name": "Bash", "timestamp": "a\x00b"}, InvalidInput),
        ({"tool_name": "Bash", **{f"x{i}": i for i in range(payload.MAX_EXTRA_FIELDS + 1)}}, InvalidInput),
        ({"tool_name": "Bash", "tool_input": {"command": "a\x00b"}}, InvalidInput),
        ({"tool_name": "Bash", "tool_input": {"command": "x" * 5000}}, TooLarge),
        ({"tool_name": "Bash", "agent_id": 5}, InvalidInput),
    ],
)
def test_bad_payloads(doc: object, err: type[Exception]) -> None:
    with pytest.raises(err):
        payload.parse(doc, 4096)


def test_the_original_hooks_payload_and_claude_codes_input_are_accepted() -> None:
    # exactly what .claude/hooks/validate_command.py upstream posts
    legacy = payload.parse(
        {
            "id": "cmd_1764921600000",
            "tool": "Bash",
            "input": {"command": "ls"},
            "agent": "unknown",
            "timestamp": 1764921600.123,
        },
        4096,
    )
    assert (legacy.shape, legacy.request_id, legacy.claimed_agent, legacy.ignored) == (
        "legacy",
        "cmd_1764921600000",
        "unknown",
        ("timestamp",),
    )
    # Claude Code's PreToolUse input, fields of newer releases included; the upstream MCP server's `metadata` too
    cc = payload.parse(
        {
            "session_id": "s",
            "transcript_path": "/t.jsonl",
            "cwd": "/w",
            "permission_mode": "default",
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "ls"},
            "tool_use_id": "toolu_1",
            "prompt_id": "p",
            "effort": {"level": "high"},
            "metadata": {},
        },
        4096,
    )
    assert cc.command_hash == legacy.command_hash and cc.request_id == "toolu_1" and "effort" in cc.ignored
    # a legacy body naming the agent the newer way is not ambiguous
    assert payload.parse({"tool": "Bash", "agent_id": "b"}, 4096).claimed_agent == "b"


def test_role_table_fails_closed() -> None:
    assert roles.allows("viewer", "GET", "/shadow/list")
    assert not roles.allows("viewer", "POST", "/validate")
    assert roles.allows("builder", "POST", "/validate")
    assert not roles.allows("builder", "POST", "/approve")
    assert roles.allows("expert", "POST", "/approve")
    assert not roles.allows("builder", "POST", "/some/new/route")  # unknown writes: admin only
    assert roles.allows("admin", "POST", "/some/new/route")
    assert not roles.allows("enrolment", "GET", "/shadow/list")
    assert roles.allows("enrolment", "POST", "/session/create")
    assert roles.allows("viewer", "HEAD", "/shadow/list")
    # the compatibility mode's anonymous role reaches /validate and nothing else
    assert roles.allows(roles.ANONYMOUS, "POST", "/validate")
    for method, path in (
        ("POST", "/approve"),
        ("GET", "/pending"),
        ("GET", "/shadow/list"),
        ("POST", "/hooks/claude-code"),
        ("POST", "/elicitation/respond"),
    ):
        assert not roles.allows(roles.ANONYMOUS, method, path), (method, path)


@pytest.mark.parametrize(
    "doc", [{"tool_name": "Ba\x00sh"}, {"tool_name": "Bash", "agent_id": "a\x00"}, {"tool": "Bash", "id": "\ud800"}]
)
def test_text_postgres_cannot_store_is_rejected(doc: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        payload.parse(doc, 4096)

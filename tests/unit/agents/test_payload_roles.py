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
        ({"tool_name": "Bash", "bogus": 1}, InvalidInput),
        ({"tool": "Bash", "tool_input": {}}, InvalidInput),
        ({"tool_name": "Bash", "tool_input": {"command": "a\x00b"}}, InvalidInput),
        ({"tool_name": "Bash", "tool_input": {"command": "x" * 5000}}, TooLarge),
        ({"tool_name": "Bash", "agent_id": 5}, InvalidInput),
    ],
)
def test_bad_payloads(doc: object, err: type[Exception]) -> None:
    with pytest.raises(err):
        payload.parse(doc, 4096)


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


@pytest.mark.parametrize(
    "doc", [{"tool_name": "Ba\x00sh"}, {"tool_name": "Bash", "agent_id": "a\x00"}, {"tool": "Bash", "id": "\ud800"}]
)
def test_text_postgres_cannot_store_is_rejected(doc: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        payload.parse(doc, 4096)

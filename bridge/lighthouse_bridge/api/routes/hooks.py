"""Claude Code's native HTTP hook (type `http` on PreToolUse): see services/hooks.py and
docs/claude-code-settings.json."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from lighthouse_bridge.api.deps import AgentsDep, PrincipalDep
from lighthouse_bridge.api.problems import agent_responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import HookOut
from lighthouse_bridge.services import hooks

router = APIRouter(tags=["validation"])

EXAMPLE = {
    "session_id": "abc123",
    "transcript_path": "/home/me/.claude/projects/p/abc123.jsonl",
    "cwd": "/home/me/p",
    "permission_mode": "default",
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "npm test", "description": "Run the tests"},
    "tool_use_id": "toolu_01",
}


@router.post("/hooks/claude-code", response_model=HookOut, responses=agent_responses(403, 429))
async def claude_code_hook(
    agents: AgentsDep,
    p: PrincipalDep,
    body: Annotated[dict[str, Any], Body(description="Claude Code's PreToolUse hook input", examples=[EXAMPLE])],
) -> Response:
    """Decide a tool call for Claude Code's `http` PreToolUse hook: allow, deny or ask, with the reason. An
    escalation is awaited up to LIGHTHOUSE_HTTP_HOOK_WAIT seconds (keep the hook's timeout above it)."""
    return json_model(await hooks.pre_tool_use(agents, p, body))

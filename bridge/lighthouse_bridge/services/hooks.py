"""Claude Code's native HTTP hook: a PreToolUse hook's input as Claude Code POSTs it to an `http` hook, answered
with the hook's JSON decision (hookSpecificOutput.permissionDecision allow | deny | ask, with the reason).

An escalated call waits up to LIGHTHOUSE_HTTP_HOOK_WAIT seconds for an expert's decision; still undecided, a
read-only call is allowed (the fail-safe) and anything else gets LIGHTHOUSE_HTTP_HOOK_UNDECIDED (deny by default,
or ask: the person at the prompt decides). The hook's `timeout` in Claude Code's settings must exceed that wait,
and `onFailure: "block"` makes a failed or timed-out call block the tool instead of letting it through.
"""

from __future__ import annotations

from typing import Any

from lighthouse_bridge.agents import escalations, payload
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.errors import InvalidInput
from lighthouse_bridge.models import HookDecision, HookOut
from lighthouse_bridge.services.validation import decide
from lighthouse_bridge.store import db


def _out(decision: str, reason: str) -> HookOut:
    return HookOut(
        hookSpecificOutput=HookDecision(
            hookEventName="PreToolUse", permissionDecision=decision, permissionDecisionReason=f"Lighthouse: {reason}"
        )
    )


async def pre_tool_use(agents: Agents, caller: Principal, body: Any) -> HookOut:
    """The decision for one PreToolUse input ({session_id, transcript_path, cwd, hook_event_name, tool_name,
    tool_input, tool_use_id, ...})."""
    if not isinstance(body, dict):
        raise InvalidInput("body must be a JSON object (Claude Code's hook input)")
    event = body.get("hook_event_name")
    if event != "PreToolUse":
        raise InvalidInput(
            f"this hook answers PreToolUse only (hook_event_name {event!r}); register it under hooks.PreToolUse"
        )
    req = payload.parse(body, agents.settings.max_validate_bytes)
    if req.shape != "current":
        raise InvalidInput("expected Claude Code's hook input: {tool_name, tool_input, ...}")
    outcome = await decide(agents, caller, req)
    tag = f"[rule {outcome.rule_id}]"
    if outcome.decision == "approved":
        return _out("allow", f"{outcome.reason} {tag}")
    if outcome.decision == "blocked":
        return _out("deny", f"{outcome.reason} {tag}")
    assert outcome.escalation is not None
    eid = outcome.escalation["id"]
    row = await db.guard("escalation", agents.wait_decision(eid, agents.settings.http_hook_wait))
    if row["status"] != "pending":
        esc = escalations.public(row)
        verdict = "allow" if esc["decision"] == "approved" else "deny"
        return _out(verdict, f"{esc['decision_reason']} (escalation {eid}, {esc['status']} by {esc['decided_by']})")
    why = (
        "the bridge is shutting down"
        if agents.rt.draining.is_set()
        else f"no expert decision within {agents.settings.http_hook_wait:g}s"
    )
    if outcome.read_only:
        return _out("allow", f"{why} on escalation {eid}; the fail-safe allows read-only operations")
    undecided = agents.settings.http_hook_undecided
    return _out(
        undecided,
        f"{why} on escalation {eid} ({outcome.reason}); "
        + (
            "the fail-safe denies operations that are not read-only"
            if undecided == "deny"
            else "you decide: the experts have not answered"
        ),
    )

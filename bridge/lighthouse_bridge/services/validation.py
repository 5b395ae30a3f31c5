"""Command validation: decide a tool call (both upstream payload shapes), escalations and their decisions."""

from __future__ import annotations

import time
from typing import Any

from lighthouse_bridge.agents import escalations, payload, roles
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.agents.service import Agents, Outcome
from lighthouse_bridge.models import ApproveIn, ValidateOut
from lighthouse_bridge.store import db

RISK = {"approved": "low", "escalated": "medium", "blocked": "high"}
LEGACY_STATUS = {"approved": "approved", "blocked": "blocked", "escalated": "review_required"}


def _result(
    decision: str,
    reason: str,
    rule_id: str,
    cache_hit: bool,
    t0: float,
    read_only: bool,
    command_hash: str,
    request_id: str | None,
    escalation: dict[str, Any] | None,
) -> ValidateOut:
    out: dict[str, Any] = {
        "decision": decision,
        "reason": reason,
        "rule_id": rule_id,
        "cache_hit": cache_hit,
        "processing_time_ms": round((time.perf_counter() - t0) * 1000, 3),
        "read_only": read_only,
        "command_hash": command_hash,
        "approved": decision == "approved",
        "reasoning": reason,
        "confidence": 1.0 if decision != "escalated" else 0.5,
        "metadata": {
            "risk_level": RISK[decision],
            "cache_hit": cache_hit,
            "expert_required": decision == "escalated",
            "rule_id": rule_id,
        },
        "status": LEGACY_STATUS[decision],
        "id": request_id,
    }
    if escalation is not None:
        out.update(
            escalation_id=escalation["id"],
            escalation_status=escalation["status"],
            deadline=escalation["deadline"],
            votes=escalation.get("votes", []),
        )
        out["id"] = request_id or escalation["id"]
    return ValidateOut.model_validate(out)


def _from_outcome(o: Outcome, req: payload.ValidationRequest, t0: float) -> ValidateOut:
    return _result(
        o.decision, o.reason, o.rule_id, o.cache_hit, t0, o.read_only, req.command_hash, req.request_id, o.escalation
    )


def _from_row(row: Any, votes: list[dict[str, Any]], t0: float) -> ValidateOut:
    esc = escalations.public(row, votes)
    decision = "escalated" if row["status"] == "pending" else row["decision"]
    reason = row["reason"] if row["status"] == "pending" else row["decision_reason"]
    return _result(decision, reason, row["rule_id"], False, t0, row["read_only"], row["command_hash"], None, esc)


async def validate(agents: Agents, caller: Principal, body: Any, client: str | None = None) -> ValidateOut:
    """Decide whether an agent may run a tool call: approved, blocked, or escalated to an expert. `body` is either
    upstream shape ({tool_name, tool_input, agent_id} or {id, tool, input, agent}), checked here. `client` (the
    caller's address) is audited for anonymous callers."""
    t0 = time.perf_counter()
    req = payload.parse(body, agents.settings.max_validate_bytes)
    outcome = await decide(agents, caller, req, client)
    return _from_outcome(outcome, req, t0)


async def decide(
    agents: Agents, caller: Principal, req: payload.ValidationRequest, client: str | None = None
) -> Outcome:
    """The decision for a parsed request. The caller's identity is the token's; only the admin may validate on
    behalf of a named agent."""
    me = caller.agent_id or caller.name
    agent_id = (req.claimed_agent or me) if caller.admin else me
    anonymous = caller.role == roles.ANONYMOUS
    return await db.guard("validate", agents.validate(req, agent_id, client if anonymous else None))


async def escalation(agents: Agents, escalation_id: str, wait: float = 0) -> ValidateOut:
    """An escalation as a validation answer; waits up to `wait` seconds until it is decided (long-poll)."""
    t0 = time.perf_counter()
    row = await db.guard("escalation", agents.wait_decision(escalation_id, wait))
    v = await escalations.votes(agents.pool, [row["id"]])
    return _from_row(row, v[row["id"]], t0)


async def pending(agents: Agents, limit: int = 100) -> dict[str, Any]:
    """Escalations waiting for an expert or admin, oldest first, with the built-in experts' votes: {pending, count}."""
    items = await db.guard("pending", escalations.pending(agents.pool, limit))
    return {"pending": items, "count": len(items)}


async def approve(agents: Agents, caller: Principal, body: ApproveIn) -> dict[str, Any]:
    """Approve or reject an escalation (expert or admin); Conflict when it was already decided or timed out."""
    ok = body.status in ("approved", "approve")
    esc = await db.guard("approve", agents.decide(body.id, ok, body.reason, caller.agent_id or caller.name))
    return {
        "id": esc["id"],
        "status": esc["status"],
        "decision": esc["decision"],
        "reason": esc["decision_reason"],
        "decided_by": esc["decided_by"],
        "escalation": esc,
    }

"""Command validation: POST /validate (both upstream shapes), escalations (/pending, /approve, /escalations/{id})."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from lighthouse_bridge.agents import escalations, payload
from lighthouse_bridge.agents.auth import responses
from lighthouse_bridge.agents.service import Outcome
from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.models import Text

router = APIRouter(tags=["validation"])

RISK = {"approved": "low", "escalated": "medium", "blocked": "high"}
LEGACY_STATUS = {"approved": "approved", "blocked": "blocked", "escalated": "review_required"}


class ValidateMetadata(BaseModel):
    risk_level: str
    cache_hit: bool
    expert_required: bool
    rule_id: str


class ValidateOut(BaseModel):
    decision: Literal["approved", "blocked", "escalated"]
    reason: str
    rule_id: str
    cache_hit: bool
    processing_time_ms: float
    read_only: bool
    command_hash: str
    escalation_id: str | None = None
    escalation_status: str | None = None
    deadline: str | None = None
    votes: list[dict[str, Any]] = Field(default_factory=list)
    # upstream-compatible fields
    approved: bool = Field(description="True exactly when decision is approved.")
    reasoning: str
    confidence: float
    metadata: ValidateMetadata
    status: Literal["approved", "blocked", "review_required"]
    id: str | None = None


def _response(decision: str, reason: str, rule_id: str, cache_hit: bool, t0: float, read_only: bool,
              command_hash: str, request_id: str | None, escalation: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "decision": decision, "reason": reason, "rule_id": rule_id, "cache_hit": cache_hit,
        "processing_time_ms": round((time.perf_counter() - t0) * 1000, 3), "read_only": read_only,
        "command_hash": command_hash, "approved": decision == "approved", "reasoning": reason,
        "confidence": 1.0 if decision != "escalated" else 0.5,
        "metadata": {"risk_level": RISK[decision], "cache_hit": cache_hit, "expert_required": decision == "escalated",
                     "rule_id": rule_id},
        "status": LEGACY_STATUS[decision], "id": request_id,
    }
    if escalation is not None:
        out.update(escalation_id=escalation["id"], escalation_status=escalation["status"],
                   deadline=escalation["deadline"], votes=escalation.get("votes", []))
        out["id"] = request_id or escalation["id"]
    return out


def _from_outcome(o: Outcome, req: payload.ValidationRequest, t0: float) -> dict[str, Any]:
    return _response(o.decision, o.reason, o.rule_id, o.cache_hit, t0, o.read_only, req.command_hash,
                     req.request_id, o.escalation)


def _from_row(row: Any, votes: list[dict[str, Any]], t0: float) -> dict[str, Any]:
    esc = escalations.public(row, votes)
    decision = "escalated" if row["status"] == "pending" else row["decision"]
    reason = row["reason"] if row["status"] == "pending" else row["decision_reason"]
    return _response(decision, reason, row["rule_id"], False, t0, row["read_only"], row["command_hash"], None, esc)


@router.post("/validate", response_model=ValidateOut, responses=responses(403, 429))
async def validate(request: Request, rt: RuntimeDep, p: PrincipalDep,
                   body: Annotated[dict[str, Any], Body(
                       description="{tool_name, tool_input, agent_id} or the older {id, tool, input, agent}",
                       examples=[{"tool_name": "Bash", "tool_input": {"command": "ls -la"}, "agent_id": "builder-1"}],
                   )]) -> dict[str, Any]:
    """Decide whether an agent may run a tool call: approved, blocked, or escalated to an expert."""
    t0 = time.perf_counter()
    agents = request.app.state.agents
    req = payload.parse(body, rt.settings.max_validate_bytes)
    # The caller's identity is the token's; only the admin may validate on behalf of a named agent.
    agent_id = (req.claimed_agent or p.agent_id or p.name) if p.admin else (p.agent_id or p.name)
    outcome = await rt.guard("validate", agents.validate(req, agent_id))
    return _from_outcome(outcome, req, t0)


@router.get("/escalations/{escalation_id}", response_model=ValidateOut, responses=responses(404))
async def escalation(escalation_id: str, request: Request, rt: RuntimeDep, _p: PrincipalDep,
                     wait: Annotated[float, Query(ge=0, le=60)] = 0) -> dict[str, Any]:
    """An escalation as a /validate answer; `wait` seconds long-polls until it is decided (hooks use this)."""
    t0 = time.perf_counter()
    row = await rt.guard("escalation", request.app.state.agents.wait_decision(escalation_id, wait))
    v = await escalations.votes(rt.pool, [row["id"]])
    return _from_row(row, v[row["id"]], t0)


@router.get("/pending")
async def pending(rt: RuntimeDep, _p: PrincipalDep,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Escalations waiting for an expert or admin, oldest first, with the built-in experts' votes."""
    items = await rt.guard("pending", escalations.pending(rt.pool, limit))
    return {"pending": items, "count": len(items)}


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64)]
    status: Literal["approved", "approve", "rejected", "reject", "blocked"]
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]


@router.post("/approve", responses=responses(404, 409))
async def approve(body: ApproveIn, request: Request, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Approve or reject an escalation (expert or admin); 409 when it was already decided or timed out."""
    ok = body.status in ("approved", "approve")
    esc = await rt.guard("approve", request.app.state.agents.decide(body.id, ok, body.reason, p.agent_id or p.name))
    return {"id": esc["id"], "status": esc["status"], "decision": esc["decision"], "reason": esc["decision_reason"],
            "decided_by": esc["decided_by"], "escalation": esc}

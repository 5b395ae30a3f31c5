"""Command validation: POST /validate (both upstream shapes), escalations (/pending, /approve, /escalations/{id})."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from lighthouse_bridge.api.deps import AgentsDep, PrincipalDep
from lighthouse_bridge.api.problems import agent_responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import ApproveIn, ValidateOut
from lighthouse_bridge.services import validation

router = APIRouter(tags=["validation"])


@router.post("/validate", response_model=ValidateOut, responses=agent_responses(403, 429))
async def validate(
    request: Request,
    agents: AgentsDep,
    p: PrincipalDep,
    body: Annotated[
        dict[str, Any],
        Body(
            description="{tool_name, tool_input, agent_id} or the older {id, tool, input, agent}, with "
            "harmless context fields (timestamp, session_id, cwd, ...) ignored",
            examples=[{"tool_name": "Bash", "tool_input": {"command": "ls -la"}, "agent_id": "builder-1"}],
        ),
    ],
) -> Response:
    """Decide whether an agent may run a tool call: approved, blocked, or escalated to an expert."""
    client = request.client.host if request.client else None
    return json_model(await validation.validate(agents, p, body, client))


@router.get("/escalations/{escalation_id}", response_model=ValidateOut, responses=agent_responses(404))
async def escalation(
    escalation_id: str, agents: AgentsDep, _p: PrincipalDep, wait: Annotated[float, Query(ge=0, le=60)] = 0
) -> Response:
    """An escalation as a /validate answer; `wait` seconds long-polls until it is decided (hooks use this)."""
    return json_model(await validation.escalation(agents, escalation_id, wait))


@router.get("/pending")
async def pending(
    agents: AgentsDep, _p: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    """Escalations waiting for an expert or admin, oldest first, with the built-in experts' votes."""
    return await validation.pending(agents, limit)


@router.post("/approve", responses=agent_responses(404, 409))
async def approve(body: ApproveIn, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    """Approve or reject an escalation (expert or admin); 409 when it was already decided or timed out."""
    return await validation.approve(agents, p, body)

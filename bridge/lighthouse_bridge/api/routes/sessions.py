"""Sessions and tokens: upstream-shaped /session/create and /session/validate, plus admin token management."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from lighthouse_bridge.api.deps import AgentsDep, PrincipalDep
from lighthouse_bridge.api.problems import agent_responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import SessionCreateIn, SessionOut, SessionValidateIn, SessionValidateOut
from lighthouse_bridge.services import sessions

router = APIRouter(tags=["sessions"])


@router.post("/session/create", response_model=SessionOut, responses=agent_responses(403))
async def session_create(body: SessionCreateIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Mint a token for an agent (admin, or an enrolment token for the roles it allows)."""
    return json_model(await sessions.mint(agents, p, body))


@router.post("/tokens", response_model=SessionOut, responses=agent_responses(403))
async def token_create(body: SessionCreateIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Admin: mint a token (same as /session/create)."""
    return json_model(await sessions.mint(agents, p, body))


@router.post("/session/validate", response_model=SessionValidateOut)
async def session_validate(body: SessionValidateIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Check a token (the one in the body, else the caller's own): {valid, agent_id, role, expires_at}."""
    return json_model(await sessions.check(agents, p, body))


@router.get("/tokens")
async def token_list(
    agents: AgentsDep,
    _p: PrincipalDep,
    agent_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> dict[str, Any]:
    """Admin: registered tokens (never the token strings)."""
    return await sessions.list_tokens(agents, agent_id, limit)


@router.delete("/tokens/{jti}", responses=agent_responses(404, 409))
async def token_revoke(jti: str, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    """Admin: revoke a token; every replica refuses it from the next request on."""
    return await sessions.revoke(agents, p, jti)

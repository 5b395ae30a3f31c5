"""Elicitation (questions with a deadline between agents and people), tasks dispatched to a named agent, and
collaborations; the original's routes (/elicitation/create|pending|respond, /task/dispatch, /collaboration/start)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from lighthouse_bridge.api.deps import AgentsDep, PrincipalDep
from lighthouse_bridge.api.problems import agent_responses
from lighthouse_bridge.api.render import json_model
from lighthouse_bridge.models import (
    AgentId,
    CollaborationIn,
    CollaborationOut,
    ElicitationIn,
    ElicitationList,
    ElicitationOut,
    ElicitationRespondIn,
    TaskDispatchIn,
)
from lighthouse_bridge.services import elicitations as service

router = APIRouter(tags=["elicitation"])


@router.post("/elicitation/create", response_model=ElicitationOut, responses=agent_responses(403, 413))
async def create(body: ElicitationIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Ask an agent (`to_agent`), or anyone holding a role (`role:expert`), a question with a deadline."""
    return json_model(await service.ask(agents, p, body))


@router.get("/elicitation/pending", response_model=ElicitationList, responses=agent_responses(403))
async def pending(
    agents: AgentsDep,
    p: PrincipalDep,
    agent_id: AgentId | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Open questions addressed to the caller (its agent id or role), oldest first (admin: any `agent_id`)."""
    return json_model(await service.pending(agents, p, agent_id, limit))


@router.get("/elicitation/asked", response_model=ElicitationList, responses=agent_responses())
async def asked(agents: AgentsDep, p: PrincipalDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """The questions the caller asked, newest first, with their answers."""
    return json_model(await service.asked(agents, p, limit))


@router.post("/elicitation/respond", response_model=ElicitationOut, responses=agent_responses(403, 404, 409, 413))
async def respond(body: ElicitationRespondIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Accept (with `data`, checked against the schema), decline or cancel; 409 once answered or expired."""
    return json_model(await service.respond(agents, p, body))


@router.get("/elicitation/{elicitation_id}", response_model=ElicitationOut, responses=agent_responses(404))
async def get(
    elicitation_id: str,
    agents: AgentsDep,
    p: PrincipalDep,
    wait: Annotated[float, Query(ge=0, le=25, description="Long-poll seconds until answered")] = 0,
) -> Response:
    """One elicitation (asker, addressee or admin); `wait` long-polls until it is answered or expires."""
    return json_model(await service.get(agents, p, elicitation_id, wait))


@router.post("/task/dispatch", response_model=ElicitationOut, responses=agent_responses(403, 413))
async def dispatch(body: TaskDispatchIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Dispatch a task to a named agent; it answers with its result (accept) or declines. Follow it like any
    elicitation (GET /elicitation/{id}?wait=)."""
    return json_model(await service.dispatch_task(agents, p, body))


@router.post("/collaboration/start", response_model=CollaborationOut, responses=agent_responses(403, 413))
async def start(body: CollaborationIn, agents: AgentsDep, p: PrincipalDep) -> Response:
    """Invite the participants; each accepts or declines its invitation (an elicitation)."""
    return json_model(await service.start_collaboration(agents, p, body))


@router.get("/collaboration/{collaboration_id}", response_model=CollaborationOut, responses=agent_responses(404))
async def collaboration(collaboration_id: str, agents: AgentsDep, p: PrincipalDep) -> Response:
    """A collaboration and its invitations' answers (initiator, participants, admin)."""
    return json_model(await service.collaboration(agents, p, collaboration_id))

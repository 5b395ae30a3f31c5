"""Experts: registration and the delegated-task work queue (claim / complete / fail)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from lighthouse_bridge.api.deps import AgentsDep, PrincipalDep
from lighthouse_bridge.api.problems import agent_responses
from lighthouse_bridge.models import ClaimIn, CompleteIn, DelegateIn, FailIn, RegisterIn
from lighthouse_bridge.services import experts as service

router = APIRouter(tags=["experts"])


@router.post("/expert/register", responses=agent_responses(403, 409))
async def register(body: RegisterIn, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    """Register (or update) an external expert and its capabilities."""
    return await service.register(agents, p, body)


@router.get("/experts")
async def experts(agents: AgentsDep, _p: PrincipalDep) -> dict[str, Any]:
    return await service.list_experts(agents)


@router.post("/expert/delegate", responses=agent_responses())
async def delegate(body: DelegateIn, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    """Queue a task for any registered expert with `capability`."""
    return await service.delegate(agents, p, body)


@router.post("/tasks/claim", responses=agent_responses(403, 404))
async def claim(body: ClaimIn, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    """Lease the oldest pending task this expert can handle; {"task": null} when there is none."""
    return await service.claim(agents, p, body)


@router.get("/tasks/{task_id}", responses=agent_responses(404))
async def task(task_id: str, agents: AgentsDep, _p: PrincipalDep) -> dict[str, Any]:
    return await service.task(agents, task_id)


@router.post("/tasks/{task_id}/complete", responses=agent_responses(404, 409))
async def complete(task_id: str, body: CompleteIn, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    return await service.finish(agents, p, task_id, body)


@router.post("/tasks/{task_id}/fail", responses=agent_responses(404, 409))
async def fail(task_id: str, body: FailIn, agents: AgentsDep, p: PrincipalDep) -> dict[str, Any]:
    """Give a task back: retried while attempts remain (and retry is true), else failed."""
    return await service.finish(agents, p, task_id, body)

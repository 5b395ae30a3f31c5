"""Experts: registration and the delegated-task work queue (claim / complete / fail)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from lighthouse_bridge.agents import queue
from lighthouse_bridge.agents.auth import Forbidden, responses
from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.api.models import JsonObject, Text
from lighthouse_bridge.errors import NotFound

router = APIRouter(tags=["experts"])

Capability = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
AgentId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId | None = Field(None, description="Defaults to the caller; only the admin may name another.")
    agent_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    capabilities: Annotated[list[Capability], Field(min_length=1, max_length=64)]


class DelegateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capability: Capability
    payload: JsonObject = Field(default_factory=dict)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capabilities: Annotated[list[Capability], Field(min_length=1, max_length=64)] | None = Field(
        None, description="Subset of the registered capabilities to claim from (default: all of them).")
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] | None = None


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: JsonObject = Field(default_factory=dict)


class FailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: Annotated[Text, Field(min_length=1, max_length=4000)]
    retry: bool = True


@router.post("/expert/register", responses=responses(403, 409))
async def register(body: RegisterIn, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Register (or update) an external expert and its capabilities."""
    me = p.agent_id or p.name
    agent_id = body.agent_id or me
    if agent_id != me and not p.admin:
        raise Forbidden(f"an expert registers itself ({me!r}), not {agent_id!r}")
    return await rt.guard("expert_register", queue.register(rt.pool, agent_id, body.agent_type,
                                                            list(dict.fromkeys(body.capabilities)), me))


@router.get("/experts")
async def experts(rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    return {"experts": await rt.guard("experts", queue.list_experts(rt.pool))}


@router.post("/expert/delegate", responses=responses())
async def delegate(body: DelegateIn, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Queue a task for any registered expert with `capability`."""
    return await rt.guard("delegate", queue.delegate(rt.pool, body.capability, body.payload, body.max_attempts,
                                                     p.agent_id or p.name))


@router.post("/tasks/claim", responses=responses(403, 404))
async def claim(body: ClaimIn, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Lease the oldest pending task this expert can handle; {"task": null} when there is none."""
    me = p.agent_id or p.name
    caps = await rt.guard("claim", queue.expert_capabilities(rt.pool, me))
    if caps is None:
        raise NotFound(f"{me!r} is not a registered expert; POST /expert/register first")
    wanted = body.capabilities or caps
    extra = sorted(set(wanted) - set(caps))
    if extra:
        raise Forbidden(f"{me!r} is not registered for {extra}")
    lease = body.lease_seconds or rt.settings.task_lease_seconds
    return {"task": await rt.guard("claim", queue.claim(rt.pool, me, wanted, lease))}


@router.get("/tasks/{task_id}", responses=responses(404))
async def task(task_id: str, rt: RuntimeDep, _p: PrincipalDep) -> dict[str, Any]:
    return queue.task_public(await rt.guard("task", queue.get_task(rt.pool, task_id)))


@router.post("/tasks/{task_id}/complete", responses=responses(404, 409))
async def complete(task_id: str, body: CompleteIn, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    return await rt.guard("task_complete", queue.finish(rt.pool, task_id, p.agent_id or p.name, ok=True,
                                                        result=body.result, error=None, retry=False, admin=p.admin))


@router.post("/tasks/{task_id}/fail", responses=responses(404, 409))
async def fail(task_id: str, body: FailIn, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Give a task back: retried while attempts remain (and retry is true), else failed."""
    return await rt.guard("task_fail", queue.finish(rt.pool, task_id, p.agent_id or p.name, ok=False, result=None,
                                                    error=body.error, retry=body.retry, admin=p.admin))

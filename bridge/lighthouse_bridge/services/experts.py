"""Experts: registration and the delegated-task work queue (claim / complete / fail)."""

from __future__ import annotations

from typing import Any

from lighthouse_bridge.agents import queue
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.errors import Forbidden, NotFound
from lighthouse_bridge.models import ClaimIn, CompleteIn, DelegateIn, FailIn, RegisterIn
from lighthouse_bridge.store import db


async def register(agents: Agents, caller: Principal, body: RegisterIn) -> dict[str, Any]:
    """Register (or update) an external expert and its capabilities; an expert registers itself, the admin anyone."""
    me = caller.agent_id or caller.name
    agent_id = body.agent_id or me
    if agent_id != me and not caller.admin:
        raise Forbidden(f"an expert registers itself ({me!r}), not {agent_id!r}", reason="identity")
    return await db.guard(
        "expert_register",
        queue.register(agents.pool, agent_id, body.agent_type, list(dict.fromkeys(body.capabilities)), me),
    )


async def list_experts(agents: Agents) -> dict[str, Any]:
    return {"experts": await db.guard("experts", queue.list_experts(agents.pool))}


async def delegate(agents: Agents, caller: Principal, body: DelegateIn) -> dict[str, Any]:
    """Queue a task for any registered expert with `capability`."""
    return await db.guard(
        "delegate",
        queue.delegate(agents.pool, body.capability, body.payload, body.max_attempts, caller.agent_id or caller.name),
    )


async def claim(agents: Agents, caller: Principal, body: ClaimIn) -> dict[str, Any]:
    """Lease the oldest pending task this expert can handle: {"task": ...}, None when there is none."""
    me = caller.agent_id or caller.name
    caps = await db.guard("claim", queue.expert_capabilities(agents.pool, me))
    if caps is None:
        raise NotFound(f"{me!r} is not a registered expert; POST /expert/register first")
    wanted = body.capabilities or caps
    extra = sorted(set(wanted) - set(caps))
    if extra:
        raise Forbidden(f"{me!r} is not registered for {extra}", reason="capability")
    lease = body.lease_seconds or agents.settings.task_lease_seconds
    return {"task": await db.guard("claim", queue.claim(agents.pool, me, wanted, lease))}


async def task(agents: Agents, task_id: str) -> dict[str, Any]:
    return queue.task_public(await db.guard("task", queue.get_task(agents.pool, task_id)))


async def finish(agents: Agents, caller: Principal, task_id: str, body: CompleteIn | FailIn) -> dict[str, Any]:
    """Complete a claimed task (CompleteIn), or give it back (FailIn: retried while attempts remain and retry is
    true, else failed). Only its claimant, or the admin, may."""
    if isinstance(body, FailIn):
        operation, ok, result, error, retry = "task_fail", False, None, body.error, body.retry
    else:
        operation, ok, result, error, retry = "task_complete", True, body.result, None, False
    me = caller.agent_id or caller.name
    return await db.guard(
        operation,
        queue.finish(agents.pool, task_id, me, ok=ok, result=result, error=error, retry=retry, admin=caller.admin),
    )

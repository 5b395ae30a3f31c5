"""Expert registry and the delegated-task work queue (claim / complete / fail with leases).

Claims use `FOR UPDATE SKIP LOCKED`, so any number of experts on any number of replicas each get a different task.
A claim is a lease: the sweeper returns tasks whose lease ran out to the queue (or fails them after max_attempts).
Every transition is a row update and an event in one transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from lighthouse_bridge.agents.audit import event
from lighthouse_bridge.errors import Conflict
from lighthouse_bridge.store import db, events

TASK_COLUMNS = (
    "id, capability, payload, status, requested_by, claimed_by, lease_until, attempts, max_attempts, "
    "result, error, created_at, updated_at"
)


def _ts(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


def task_public(r: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "capability": r["capability"],
        "payload": r["payload"],
        "status": r["status"],
        "requested_by": r["requested_by"],
        "claimed_by": r["claimed_by"],
        "lease_until": _ts(r["lease_until"]),
        "attempts": r["attempts"],
        "max_attempts": r["max_attempts"],
        "result": r["result"],
        "error": r["error"],
        "created_at": _ts(r["created_at"]),
        "updated_at": _ts(r["updated_at"]),
    }


def expert_public(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "agent_id": r["agent_id"],
        "agent_type": r["agent_type"],
        "capabilities": list(r["capabilities"]),
        "builtin": r["builtin"],
        "registered_by": r["registered_by"],
        "registered_at": _ts(r["registered_at"]),
        "last_seen_at": _ts(r["last_seen_at"]),
    }


async def register(
    pool: asyncpg.Pool, agent_id: str, agent_type: str, capabilities: list[str], by: str
) -> dict[str, Any]:
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(
            "INSERT INTO experts (agent_id, agent_type, capabilities, registered_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (agent_id) DO UPDATE SET agent_type = $2, capabilities = $3, last_seen_at = now()"
            " WHERE NOT experts.builtin RETURNING *",
            agent_id,
            agent_type,
            capabilities,
            by,
        )
        if r is None:
            raise Conflict(f"{agent_id!r} is a built-in expert")
        row.update(dict(r))

    await events.append(
        pool,
        [
            event(
                "expert_registered",
                "expert",
                f"expert:{agent_id}",
                {"agent_id": agent_id, "agent_type": agent_type, "capabilities": capabilities},
                by,
            )
        ],
        hook=hook,
    )
    return expert_public(row)


async def list_experts(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    return [expert_public(r) for r in await pool.fetch("SELECT * FROM experts ORDER BY agent_id")]


async def expert_capabilities(pool: asyncpg.Pool, agent_id: str) -> list[str] | None:
    caps = await pool.fetchval("SELECT capabilities FROM experts WHERE agent_id = $1", agent_id)
    return list(caps) if caps is not None else None


async def delegate(
    pool: asyncpg.Pool, capability: str, payload: dict[str, Any], max_attempts: int, by: str
) -> dict[str, Any]:
    tid = uuid.uuid4()
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(
            f"INSERT INTO expert_tasks (id, capability, payload, requested_by, max_attempts) VALUES ($1, $2, $3, $4,"
            f" $5) RETURNING {TASK_COLUMNS}",
            tid,
            capability,
            payload,
            by,
            max_attempts,
        )
        row.update(dict(r))

    await events.append(
        pool,
        [
            event(
                "expert_task_created", "expert_task", f"task:{tid}", {"task_id": str(tid), "capability": capability}, by
            )
        ],
        hook=hook,
    )
    return task_public(row)


async def get_task(pool: asyncpg.Pool, task_id: str) -> asyncpg.Record:
    return await db.fetch_by_id(pool, f"SELECT {TASK_COLUMNS} FROM expert_tasks WHERE id = $1", task_id, "task")


async def claim(
    pool: asyncpg.Pool, expert: str, capabilities: list[str], lease_seconds: float
) -> dict[str, Any] | None:
    """The oldest pending task in `capabilities`, leased to `expert`; None when the queue is empty."""
    row: dict[str, Any] = {}
    # The event goes to the expert's stream: the task id is only known inside the transaction.
    ev = event("expert_task_claimed", "expert", f"expert:{expert}", {"expert": expert}, expert)

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        got = await conn.fetchrow(
            "UPDATE expert_tasks SET status = 'claimed', claimed_by = $2, attempts = attempts + 1,"
            " lease_until = now() + make_interval(secs => $3), updated_at = now()"
            " WHERE id = (SELECT id FROM expert_tasks WHERE status = 'pending' AND capability = ANY($1::text[])"
            "             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {TASK_COLUMNS}",
            capabilities,
            expert,
            lease_seconds,
        )
        if got is None:
            raise _Taken
        row.update(dict(got))
        ev.data.update(task_id=str(got["id"]), capability=got["capability"], attempt=got["attempts"])

    try:
        await events.append(pool, [ev], hook=hook)
    except _Taken:
        return None
    return task_public(row)


class _Taken(Exception):
    pass


async def finish(
    pool: asyncpg.Pool,
    task_id: str,
    expert: str,
    *,
    ok: bool,
    result: dict[str, Any] | None,
    error: str | None,
    retry: bool,
    admin: bool,
) -> dict[str, Any]:
    current = await get_task(pool, task_id)
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(f"SELECT {TASK_COLUMNS} FROM expert_tasks WHERE id = $1 FOR UPDATE", current["id"])
        if r["status"] != "claimed":
            raise Conflict(f"task {task_id} is {r['status']}, not claimed", current_status=r["status"])
        if r["claimed_by"] != expert and not admin:
            raise Conflict(f"task {task_id} is claimed by {r['claimed_by']!r}")
        if ok:
            status = "completed"
        else:
            status = "pending" if retry and r["attempts"] < r["max_attempts"] else "failed"
        got = await conn.fetchrow(
            "UPDATE expert_tasks SET status = $2, result = $3, error = $4, updated_at = now(),"
            " claimed_by = CASE WHEN $2 = 'pending' THEN NULL ELSE claimed_by END,"
            f" lease_until = NULL WHERE id = $1 RETURNING {TASK_COLUMNS}",
            current["id"],
            status,
            result,
            error,
        )
        row.update(dict(got))
        ev.data["status"] = status

    ev = event(
        "expert_task_completed" if ok else "expert_task_failed",
        "expert_task",
        f"task:{current['id']}",
        {"task_id": str(current["id"]), "expert": expert, "error": error},
        expert,
    )
    await events.append(pool, [ev], hook=hook)
    return task_public(row)


async def reclaim_expired(pool: asyncpg.Pool) -> int:
    """Tasks whose lease ran out go back to pending (or fail after max_attempts)."""
    due = await pool.fetch("SELECT id FROM expert_tasks WHERE status = 'claimed' AND lease_until <= now() LIMIT 100")
    n = 0
    for d in due:
        ev = event("expert_task_lease_expired", "expert_task", f"task:{d['id']}", {"task_id": str(d["id"])}, "timeout")

        async def hook(
            conn: asyncpg.Connection, _r: list[events.AppendResult], tid: uuid.UUID = d["id"], ev: events.NewEvent = ev
        ) -> None:
            r = await conn.fetchrow(
                "UPDATE expert_tasks SET status = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'failed' END,"
                " error = 'lease expired', claimed_by = NULL, lease_until = NULL, updated_at = now()"
                " WHERE id = $1 AND status = 'claimed' AND lease_until <= now() RETURNING status",
                tid,
            )
            if r is None:
                raise _Taken
            ev.data["status"] = r["status"]

        try:
            await events.append(pool, [ev], hook=hook)
            n += 1
        except _Taken:
            continue
    return n

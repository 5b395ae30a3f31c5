"""Escalations: persisted in PostgreSQL, decided by an expert/admin or by the timeout fail-safe.

Every state change is one transaction holding both the row update and its event (via the event store's
transaction hook), so the table and the event history never disagree. Decisions race safely: each one updates only
`WHERE status = 'pending'`, and the row lock makes exactly one winner (the loser gets 409, or skips for timeouts).
Timeout events use a deterministic event_id, so two replicas sweeping at once store one event.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from lighthouse_bridge.agents.audit import event
from lighthouse_bridge.errors import Conflict
from lighthouse_bridge.store import db, events

COLUMNS = (
    "id, command_hash, policy_hash, tool_name, tool_input, agent_id, rule_id, reason, read_only, status, "
    "decision, decision_reason, decided_by, created_at, deadline, decided_at"
)


class _Skip(Exception):
    """Roll the append back without an error (the row was decided meanwhile)."""


def public(row: asyncpg.Record | dict[str, Any], votes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    def ts(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {
        "id": str(row["id"]),
        "command_hash": row["command_hash"],
        "tool_name": row["tool_name"],
        "tool_input": row["tool_input"],
        "agent_id": row["agent_id"],
        "rule_id": row["rule_id"],
        "reason": row["reason"],
        "read_only": row["read_only"],
        "status": row["status"],
        "decision": row["decision"],
        "decision_reason": row["decision_reason"],
        "decided_by": row["decided_by"],
        "created_at": ts(row["created_at"]),
        "deadline": ts(row["deadline"]),
        "decided_at": ts(row["decided_at"]),
        "votes": votes if votes is not None else [],
    }


def _aggregate(eid: uuid.UUID | str) -> str:
    return f"escalation:{eid}"


def _decision_event(
    esc: asyncpg.Record, decision: str, status: str, reason: str, by: str, source: str
) -> events.NewEvent:
    data = {
        "escalation_id": str(esc["id"]),
        "decision": decision,
        "status": status,
        "reason": reason,
        "decided_by": by,
        "source": source,
        "command_hash": esc["command_hash"],
        "tool_name": esc["tool_name"],
    }
    return event("validation_decision_made", "validation", _aggregate(esc["id"]), data, by)


async def find_pending(pool: asyncpg.Pool, command_hash: str, policy_hash: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"SELECT {COLUMNS} FROM escalations WHERE status = 'pending' AND command_hash = $1 AND policy_hash = $2",
        command_hash,
        policy_hash,
    )


async def create(
    pool: asyncpg.Pool,
    *,
    command_hash: str,
    policy_hash: str,
    tool_name: str,
    tool_input: dict[str, Any],
    agent_id: str,
    rule_id: str,
    reason: str,
    read_only: bool,
    timeout_seconds: float,
) -> tuple[asyncpg.Record, bool]:
    """(row, created). An identical command already pending is joined instead of asked twice."""
    existing = await find_pending(pool, command_hash, policy_hash)
    if existing is not None:
        return existing, False
    eid = uuid.uuid4()
    deadline = datetime.now(UTC) + timedelta(seconds=timeout_seconds)
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(
            "INSERT INTO escalations (id, command_hash, policy_hash, tool_name, tool_input, agent_id, rule_id, reason,"
            f" read_only, deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}",
            eid,
            command_hash,
            policy_hash,
            tool_name,
            tool_input,
            agent_id,
            rule_id,
            reason,
            read_only,
            deadline,
        )
        row.update(dict(r))

    ev = event(
        "validation_request_submitted",
        "validation",
        _aggregate(eid),
        {
            "escalation_id": str(eid),
            "status": "escalated",
            "tool_name": tool_name,
            "tool_input": tool_input,
            "command_hash": command_hash,
            "rule_id": rule_id,
            "reason": reason,
            "read_only": read_only,
            "deadline": deadline.isoformat(),
        },
        agent_id,
    )
    try:
        await events.append(pool, [ev], hook=hook)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "escalations_one_pending":
            raise
        existing = await find_pending(pool, command_hash, policy_hash)
        if existing is None:  # decided in between: ask again
            return await create(
                pool,
                command_hash=command_hash,
                policy_hash=policy_hash,
                tool_name=tool_name,
                tool_input=tool_input,
                agent_id=agent_id,
                rule_id=rule_id,
                reason=reason,
                read_only=read_only,
                timeout_seconds=timeout_seconds,
            )
        return existing, False
    return row, True


async def get(pool: asyncpg.Pool, escalation_id: str) -> asyncpg.Record:
    return await db.fetch_by_id(pool, f"SELECT {COLUMNS} FROM escalations WHERE id = $1", escalation_id, "escalation")


async def votes(pool: asyncpg.Pool, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    out: dict[uuid.UUID, list[dict[str, Any]]] = {i: [] for i in ids}
    for r in await pool.fetch(
        "SELECT escalation_id, expert, vote, confidence, reason FROM escalation_votes"
        " WHERE escalation_id = ANY($1::uuid[]) ORDER BY created_at",
        ids,
    ):
        out[r["escalation_id"]].append(
            {
                "expert": r["expert"],
                "vote": r["vote"],
                "confidence": round(float(r["confidence"]), 3),
                "reason": r["reason"],
            }
        )
    return out


async def pending(pool: asyncpg.Pool, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM escalations WHERE status = 'pending' ORDER BY created_at LIMIT $1", limit
    )
    v = await votes(pool, [r["id"] for r in rows])
    return [public(r, v[r["id"]]) for r in rows]


async def decide(pool: asyncpg.Pool, escalation_id: str, *, approve: bool, reason: str, by: str) -> asyncpg.Record:
    """Record an expert/admin decision; 404 unknown, 409 already decided. Row and event commit together."""
    current = await get(pool, escalation_id)
    status, decision = ("approved", "approved") if approve else ("rejected", "blocked")
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(
            "UPDATE escalations SET status = $2, decision = $3, decision_reason = $4, decided_by = $5,"
            f" decided_at = now() WHERE id = $1 AND status = 'pending' RETURNING {COLUMNS}",
            current["id"],
            status,
            decision,
            reason,
            by,
        )
        if r is None:
            now = await conn.fetchval("SELECT status FROM escalations WHERE id = $1", current["id"])
            raise Conflict(f"escalation {escalation_id} is already {now}", current_status=now)
        row.update(dict(r))

    ev = _decision_event(current, decision, status, reason, by, source="expert")
    await events.append(pool, [ev], hook=hook)
    return row


async def expire_due(pool: asyncpg.Pool, limit: int = 100) -> list[asyncpg.Record]:
    """Apply the fail-safe to escalations past their deadline: read-only approved, everything else blocked."""
    due = await pool.fetch(
        "SELECT id, read_only, command_hash, tool_name, agent_id FROM escalations"
        " WHERE status = 'pending' AND deadline <= now() ORDER BY deadline LIMIT $1",
        limit,
    )
    done: list[asyncpg.Record] = []
    for d in due:
        decision = "approved" if d["read_only"] else "blocked"
        reason = (
            "escalation timed out; fail-safe approves read-only operations"
            if d["read_only"]
            else "escalation timed out; fail-safe blocks operations that are not read-only"
        )
        row: dict[str, Any] = {}

        async def hook(
            conn: asyncpg.Connection,
            _r: list[events.AppendResult],
            d: asyncpg.Record = d,
            decision: str = decision,
            reason: str = reason,
            row: dict[str, Any] = row,
        ) -> None:
            r = await conn.fetchrow(
                "UPDATE escalations SET status = 'timed_out', decision = $2, decision_reason = $3,"
                f" decided_by = 'timeout', decided_at = now() WHERE id = $1 AND status = 'pending' RETURNING {COLUMNS}",
                d["id"],
                decision,
                reason,
            )
            if r is None:
                raise _Skip
            row.update(dict(r))

        ev = _decision_event(d, decision, "timed_out", reason, "timeout", source="timeout")
        ev.event_id = f"escalation-timeout-{d['id']}"
        try:
            results = await events.append(pool, [ev], hook=hook)
        except _Skip:
            continue
        if not results[0].duplicate and row:
            done.append(row)
    return done


async def add_vote(
    pool: asyncpg.Pool, escalation_id: uuid.UUID, expert: str, vote: str, confidence: float, reason: str
) -> None:
    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        await conn.execute(
            "INSERT INTO escalation_votes (escalation_id, expert, vote, confidence, reason) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (escalation_id, expert) DO UPDATE SET vote = $3, confidence = $4, reason = $5",
            escalation_id,
            expert,
            vote,
            confidence,
            reason,
        )

    ev = event(
        "expert_vote_recorded",
        "validation",
        _aggregate(escalation_id),
        {
            "escalation_id": str(escalation_id),
            "expert": expert,
            "vote": vote,
            "confidence": confidence,
            "reason": reason,
        },
        expert,
    )
    await events.append(pool, [ev], hook=hook)

"""Elicitations: questions with a deadline from one agent to another agent, a role or a person, in PostgreSQL.

Each state change is one transaction holding the row change and its event (the event store's transaction hook),
like escalations. Answers race safely: an answer updates only `WHERE status = 'pending' AND deadline > now()`, so
exactly one answer wins and none lands after the deadline (the loser gets Conflict). Expiry is level-based: every
read reports a pending row past its deadline as `expired`, whether or not the sweeper (`expire_due`) has written its
`elicitation_expired` event yet; that event has a deterministic id, so replicas sweeping at once store one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from lighthouse_bridge.agents.audit import event
from lighthouse_bridge.errors import Conflict
from lighthouse_bridge.store import db, events

KINDS = ("question", "task", "collaboration")
STATUS_OF = {"accept": "accepted", "decline": "declined", "cancel": "cancelled"}
# The stored status, except that a pending row past its deadline reads as expired.
COLUMNS = (
    "id, kind, from_agent, to_agent, message, schema, metadata, group_id,"
    " CASE WHEN status = 'pending' AND deadline <= now() THEN 'expired' ELSE status END AS status,"
    " response, responded_by, created_at, deadline, responded_at"
)


class _Skip(Exception):
    """Roll the append back without an error (the row was answered meanwhile)."""


def aggregate(eid: uuid.UUID | str) -> str:
    return f"elicitation:{eid}"


def _ts(v: datetime | None) -> str | None:
    return v.isoformat() if v else None


def _question(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The question as asked: what the request event carries, and the start of the public view."""
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "from_agent": row["from_agent"],
        "to_agent": row["to_agent"],
        "message": row["message"],
        "schema": row["schema"],
        "metadata": row["metadata"],
        "group_id": str(row["group_id"]) if row["group_id"] else None,
        "deadline": _ts(row["deadline"]),
    }


def public(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    return {
        **_question(row),
        "status": row["status"],
        "response": row["response"],
        "responded_by": row["responded_by"],
        "created_at": _ts(row["created_at"]),
        "responded_at": _ts(row["responded_at"]),
    }


def requested_event(row: dict[str, Any]) -> events.NewEvent:
    return event("elicitation_requested", "elicitation", aggregate(row["id"]), _question(row), row["from_agent"])


def new_row(
    kind: str,
    from_agent: str,
    to_agent: str,
    message: str,
    schema: dict[str, Any] | None,
    metadata: dict[str, Any],
    timeout_seconds: float,
    group_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "kind": kind,
        "from_agent": from_agent,
        "to_agent": to_agent,
        "message": message,
        "schema": schema,
        "metadata": metadata,
        "group_id": group_id,
        "deadline": datetime.now(UTC) + timedelta(seconds=timeout_seconds),
    }


async def insert(conn: asyncpg.Connection, row: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO elicitations (id, kind, from_agent, to_agent, message, schema, metadata, group_id, deadline)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}",
        row["id"],
        row["kind"],
        row["from_agent"],
        row["to_agent"],
        row["message"],
        row["schema"],
        row["metadata"],
        row["group_id"],
        row["deadline"],
    )


async def create(
    pool: asyncpg.Pool,
    rows: list[dict[str, Any]],
    extra: list[events.NewEvent] | None = None,
) -> list[asyncpg.Record]:
    """Insert the rows with their elicitation_requested events (and `extra` events) in one transaction."""
    out: list[asyncpg.Record] = []

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        for row in rows:
            out.append(await insert(conn, row))

    await events.append(pool, [*(extra or []), *(requested_event(r) for r in rows)], hook=hook)
    return out


async def get(conn: asyncpg.Pool | asyncpg.Connection, elicitation_id: str) -> asyncpg.Record:
    return await db.fetch_by_id(
        conn, f"SELECT {COLUMNS} FROM elicitations WHERE id = $1", elicitation_id, "elicitation"
    )


async def pending_for(pool: asyncpg.Pool, addressees: list[str], limit: int) -> list[asyncpg.Record]:
    """Open questions addressed to any of `addressees` (agent ids and 'role:<role>' names), oldest first."""
    return await pool.fetch(
        f"SELECT {COLUMNS} FROM elicitations WHERE status = 'pending' AND deadline > now()"
        " AND to_agent = ANY($1::text[]) ORDER BY created_at LIMIT $2",
        addressees,
        limit,
    )


async def asked_by(pool: asyncpg.Pool, agent_id: str, limit: int) -> list[asyncpg.Record]:
    """Questions `agent_id` asked, newest first (any status)."""
    return await pool.fetch(
        f"SELECT {COLUMNS} FROM elicitations WHERE from_agent = $1 ORDER BY created_at DESC LIMIT $2", agent_id, limit
    )


async def of_group(pool: asyncpg.Pool, group_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT {COLUMNS} FROM elicitations WHERE group_id = $1 ORDER BY to_agent", group_id)


async def respond(pool: asyncpg.Pool, elicitation_id: str, response_type: str, data: Any, by: str) -> asyncpg.Record:
    """Record the one answer (accept | decline | cancel); Conflict when it was answered already or has expired."""
    current = await get(pool, elicitation_id)
    status = STATUS_OF[response_type]
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow(
            "UPDATE elicitations SET status = $2, response = $3, responded_by = $4, responded_at = now()"
            f" WHERE id = $1 AND status = 'pending' AND deadline > now() RETURNING {COLUMNS}",
            current["id"],
            status,
            data,
            by,
        )
        if r is None:
            now = await conn.fetchval(
                f"SELECT status FROM (SELECT {COLUMNS} FROM elicitations WHERE id = $1) s", current["id"]
            )
            raise Conflict(f"elicitation {elicitation_id} is already {now}", current_status=now)
        row.update(dict(r))

    ev = event(
        "elicitation_answered",
        "elicitation",
        aggregate(current["id"]),
        {
            "id": str(current["id"]),
            "response_type": response_type,
            "status": status,
            "data": data,
            "responded_by": by,
            "from_agent": current["from_agent"],
            "to_agent": current["to_agent"],
            "kind": current["kind"],
        },
        by,
    )
    await events.append(pool, [ev], hook=hook)
    return row


async def expire_due(pool: asyncpg.Pool, limit: int = 100) -> list[asyncpg.Record]:
    """Mark pending rows past their deadline expired, each with its elicitation_expired event; returns those this
    call expired (a row another replica expired first is skipped)."""
    due = await pool.fetch(
        "SELECT id FROM elicitations WHERE status = 'pending' AND deadline <= now() ORDER BY deadline LIMIT $1", limit
    )
    done: list[asyncpg.Record] = []
    for d in due:
        row: dict[str, Any] = {}

        async def hook(
            conn: asyncpg.Connection, _r: list[events.AppendResult], eid: uuid.UUID = d["id"], row: dict[str, Any] = row
        ) -> None:
            r = await conn.fetchrow(
                "UPDATE elicitations SET status = 'expired' WHERE id = $1 AND status = 'pending' AND deadline <= now()"
                f" RETURNING {COLUMNS}",
                eid,
            )
            if r is None:
                raise _Skip
            row.update(dict(r))

        ev = event(
            "elicitation_expired",
            "elicitation",
            aggregate(d["id"]),
            {"id": str(d["id"]), "status": "expired"},
            "timeout",
        )
        ev.event_id = f"elicitation-expired-{d['id']}"
        try:
            results = await events.append(pool, [ev], hook=hook)
        except _Skip:
            continue
        if not results[0].duplicate and row:
            done.append(row)
    return done


async def pending_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM elicitations WHERE status = 'pending' AND deadline > now()")

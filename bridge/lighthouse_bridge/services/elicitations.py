"""Elicitation: an agent asks another agent, a role or a person a question with a deadline; the addressee sees it
pending and answers; the asker gets the answer by long-poll (`get(..., wait=)`) or on the event stream
(`elicitation_answered` / `elicitation_expired` on the aggregate `elicitation:<id>`). Dispatching a task to a named
agent and inviting the participants of a collaboration are elicitations too (kinds `task` and `collaboration`).

Who may do what: anyone with a write role asks; the addressee (the agent id, or any holder of the role in
`role:<role>`) answers; the asker may cancel its own question; the admin may do all of it. Everything is in the
event store (agents.elicitations) and the audit log. The HTTP routes and the MCP tools both call these functions.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jsonschema

from lighthouse_bridge.agents import elicitations as store
from lighthouse_bridge.agents.audit import event
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.errors import Forbidden, InvalidInput, NotFound, TooLarge
from lighthouse_bridge.models import (
    CollaborationIn,
    CollaborationOut,
    ElicitationIn,
    ElicitationList,
    ElicitationOut,
    ElicitationRespondIn,
    TaskDispatchIn,
)
from lighthouse_bridge.store import db, events

TERMINAL = ("accepted", "declined", "cancelled", "expired")


def _me(caller: Principal) -> str:
    return caller.agent_id or caller.name


def _addressees(caller: Principal) -> list[str]:
    return [_me(caller), f"role:{caller.role}"]


def _out(row: Any) -> ElicitationOut:
    return ElicitationOut.model_validate(store.public(row))


def _bounded(agents: Agents, what: str, value: Any) -> None:
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > agents.settings.max_elicitation_bytes:
        raise TooLarge(f"{what} is {size} bytes; the limit is {agents.settings.max_elicitation_bytes}")


def _timeout(agents: Agents, requested: float | None) -> float:
    s = agents.settings
    timeout = requested if requested is not None else s.elicitation_timeout
    if timeout > s.elicitation_max_timeout:
        raise InvalidInput(f"timeout_seconds {timeout:g} exceeds the maximum {s.elicitation_max_timeout:g}")
    return timeout


def _schema(agents: Agents, schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema is None:
        return None
    _bounded(agents, "schema", schema)
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidInput(f"schema is not a valid JSON Schema: {exc.message}") from None
    return schema


def _as_caller(caller: Principal, claimed: str | None, field: str) -> None:
    """The original's clients name themselves in the body; the token decides, so a different name is refused."""
    if claimed is not None and claimed != _me(caller) and not caller.admin:
        raise Forbidden(f"{field} {claimed!r} is not the caller ({_me(caller)!r})")


def _audit_created(agents: Agents, row: Any) -> None:
    agents.audit.write(
        "elicitation_requested",
        "pending",
        row["from_agent"],
        elicitation_id=str(row["id"]),
        kind=row["kind"],
        to_agent=row["to_agent"],
        deadline=row["deadline"].isoformat(),
        group_id=str(row["group_id"]) if row["group_id"] else None,
    )


async def ask(agents: Agents, caller: Principal, body: ElicitationIn) -> ElicitationOut:
    """Ask `to_agent` (an agent id or `role:<role>`) a question; it stays pending until answered or its deadline."""
    _as_caller(caller, body.from_agent, "from_agent")
    _bounded(agents, "message and metadata", {"m": body.message, "d": body.metadata})
    row = store.new_row(
        "question",
        _me(caller),
        body.to_agent,
        body.message,
        _schema(agents, body.schema_),
        body.metadata,
        _timeout(agents, body.timeout_seconds),
    )
    (created,) = await db.guard("elicitation_create", store.create(agents.pool, [row]))
    _audit_created(agents, created)
    return _out(created)


async def pending(agents: Agents, caller: Principal, agent_id: str | None = None, limit: int = 100) -> ElicitationList:
    """Open questions addressed to the caller (its agent id or its role), oldest first; the admin may name any
    agent (`agent_id`), others only themselves."""
    if agent_id is not None and agent_id != _me(caller) and not caller.admin:
        raise Forbidden(f"only the admin may list the questions of another agent ({agent_id!r})")
    addressees = [agent_id] if agent_id is not None and agent_id != _me(caller) else _addressees(caller)
    rows = await db.guard("elicitation_pending", store.pending_for(agents.pool, addressees, limit))
    return ElicitationList(elicitations=[_out(r) for r in rows], count=len(rows))


async def asked(agents: Agents, caller: Principal, limit: int = 100) -> ElicitationList:
    """The questions the caller asked, newest first, with their answers."""
    rows = await db.guard("elicitation_asked", store.asked_by(agents.pool, _me(caller), limit))
    return ElicitationList(elicitations=[_out(r) for r in rows], count=len(rows))


def _party(caller: Principal, row: Any) -> bool:
    return caller.admin or _me(caller) == row["from_agent"] or row["to_agent"] in _addressees(caller)


async def get(agents: Agents, caller: Principal, elicitation_id: str, wait: float = 0) -> ElicitationOut:
    """An elicitation (asker, addressee or admin); with `wait`, long-polls until it is answered or expires. Wakes on
    any new event (the projection's LISTEN), ends early when the bridge drains."""
    rt = agents.rt
    deadline = time.monotonic() + wait
    while True:
        head = rt.projection.head  # before the read: an answer committed after it still wakes the wait below
        row = await db.guard("elicitation", store.get(agents.pool, elicitation_id))
        if not _party(caller, row):
            raise NotFound(f"no elicitation {elicitation_id!r}")  # not a party: as if it did not exist
        left = deadline - time.monotonic()
        if row["status"] in TERMINAL or left <= 0 or rt.draining.is_set():
            return _out(row)
        until_expiry = max(0.01, (row["deadline"].timestamp() - time.time()) + 0.01)
        await rt.wait_beyond(head, min(left, until_expiry, 5.0))


async def respond(agents: Agents, caller: Principal, body: ElicitationRespondIn) -> ElicitationOut:
    """Answer: accept (with `data`, checked against the schema), decline or cancel. The addressee answers; the
    asker may only cancel; Conflict when it was answered already or its deadline passed."""
    _as_caller(caller, body.responding_agent, "responding_agent")
    row = await db.guard("elicitation", store.get(agents.pool, body.elicitation_id))
    me = _me(caller)
    addressee = caller.admin or row["to_agent"] in _addressees(caller)
    if not addressee and not (body.response_type == "cancel" and row["from_agent"] == me):
        if not _party(caller, row):
            raise NotFound(f"no elicitation {body.elicitation_id!r}")
        raise Forbidden(
            f"elicitation {body.elicitation_id} is addressed to {row['to_agent']!r}; its asker may only cancel it"
        )
    if body.response_type == "accept":
        if body.data is None:
            raise InvalidInput("accepting needs `data` (the answer)")
        if row["schema"] is not None:
            errors = sorted(jsonschema.Draft202012Validator(row["schema"]).iter_errors(body.data), key=str)
            if errors:
                where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
                raise InvalidInput(f"data does not match the schema at {where}: {errors[0].message}")
    if body.data is not None:
        _bounded(agents, "data", body.data)
    answered = await db.guard(
        "elicitation_respond", store.respond(agents.pool, body.elicitation_id, body.response_type, body.data, me)
    )
    agents.audit.write(
        "elicitation_" + answered["status"],
        answered["status"],
        me,
        elicitation_id=str(answered["id"]),
        kind=answered["kind"],
        from_agent=answered["from_agent"],
        to_agent=answered["to_agent"],
    )
    return _out(answered)


async def dispatch_task(agents: Agents, caller: Principal, body: TaskDispatchIn) -> ElicitationOut:
    """A task for a named agent (or role): pending until it accepts with its result or declines."""
    _bounded(agents, "task", {"t": body.task_description, "m": body.metadata})
    row = store.new_row(
        "task",
        _me(caller),
        body.target_agent,
        body.task_description,
        _schema(agents, body.result_schema),
        {**body.metadata, "priority": body.priority},
        _timeout(agents, body.timeout_seconds),
    )
    (created,) = await db.guard("task_dispatch", store.create(agents.pool, [row]))
    _audit_created(agents, created)
    return _out(created)


def _collaboration_status(invitations: list[ElicitationOut]) -> str:
    states = {i.status for i in invitations}
    if "pending" in states:
        return "inviting"
    if "accepted" in states:
        return "active"
    return "declined" if "declined" in states else "ended"


async def start_collaboration(agents: Agents, caller: Principal, body: CollaborationIn) -> CollaborationOut:
    """Invite each participant (one elicitation of kind `collaboration` each, in the same transaction as the
    collaboration_started event); the collaboration's own stream is `collaboration:<id>`."""
    participants = list(dict.fromkeys(body.participants))
    _bounded(agents, "collaboration", {"o": body.objective, "m": body.metadata})
    gid = uuid.uuid4()
    timeout = _timeout(agents, body.timeout_seconds)
    meta = {**body.metadata, "collaboration_type": body.collaboration_type, "participants": participants}
    rows = [
        store.new_row("collaboration", _me(caller), p, body.objective, None, meta, timeout, gid) for p in participants
    ]
    started = event(
        "collaboration_started",
        "collaboration",
        f"collaboration:{gid}",
        {
            "collaboration_id": str(gid),
            "collaboration_type": body.collaboration_type,
            "objective": body.objective,
            "participants": participants,
            "initiator": _me(caller),
            "invitations": [str(r["id"]) for r in rows],
            "metadata": body.metadata,
        },
        _me(caller),
    )
    created = await db.guard("collaboration_start", store.create(agents.pool, rows, extra=[started]))
    for r in created:
        _audit_created(agents, r)
    invitations = [_out(r) for r in created]
    return CollaborationOut(
        collaboration_id=str(gid),
        collaboration_type=body.collaboration_type,
        objective=body.objective,
        initiator=_me(caller),
        participants=participants,
        invitations=invitations,
        status=_collaboration_status(invitations),
    )


async def collaboration(agents: Agents, caller: Principal, collaboration_id: str) -> CollaborationOut:
    """A collaboration with its invitations' answers (initiator, participants or admin)."""
    gid = db.parse_id(collaboration_id, "collaboration")
    rows = await db.guard("collaboration", store.of_group(agents.pool, gid))
    if not rows or not any(_party(caller, r) for r in rows):
        raise NotFound(f"no collaboration {collaboration_id!r}")
    found = await db.guard(
        "collaboration",
        events.query(
            agents.pool,
            events.EventFilter(event_type="collaboration_started", aggregate_id=f"collaboration:{gid}", limit=1),
        ),
    )
    if not found:
        raise NotFound(f"no collaboration {collaboration_id!r}")
    data = found[0]["data"]
    invitations = [_out(r) for r in rows]
    return CollaborationOut(
        collaboration_id=str(gid),
        collaboration_type=data["collaboration_type"],
        objective=data["objective"],
        initiator=data["initiator"],
        participants=data["participants"],
        invitations=invitations,
        status=_collaboration_status(invitations),
    )

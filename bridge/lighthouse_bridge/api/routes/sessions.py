"""Sessions and tokens: upstream-shaped /session/create and /session/validate, plus admin token management.

Minting needs the admin token or an enrolment token (which may only mint the roles it was issued for, never admin).
The registry row and its `token_minted` event commit together; the token itself is never stored or logged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from lighthouse_bridge.agents import tokens
from lighthouse_bridge.agents.audit import event
from lighthouse_bridge.agents.auth import Forbidden, responses
from lighthouse_bridge.api.deps import PrincipalDep, RuntimeDep
from lighthouse_bridge.errors import InvalidInput, NotFound
from lighthouse_bridge.store import events

router = APIRouter(tags=["sessions"])

AgentId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]
Role = Literal["builder", "expert", "viewer", "admin", "enrolment"]


class SessionCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId
    role: Role = "builder"
    ttl_seconds: Annotated[int, Field(ge=60, le=366 * 86400)] | None = None
    enrol_roles: list[Literal["builder", "expert", "viewer"]] = Field(
        default_factory=list, description="For role=enrolment: the roles this enrolment token may mint.")
    # accepted for upstream compatibility (its clients send them); recorded in the audit line, not in the token
    metadata: dict[str, Any] | None = Field(None, description="Accepted for upstream compatibility; not stored.")
    ip_address: Annotated[str, Field(max_length=64)] | None = None
    user_agent: Annotated[str, Field(max_length=512)] | None = None


class SessionOut(BaseModel):
    session_id: str
    session_token: str
    expires_at: str
    agent_id: str
    role: str


class SessionValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    session_id: str | None = None
    agent_id: str | None = None


class SessionValidateOut(BaseModel):
    valid: bool
    session_id: str | None = None
    agent_id: str | None = None
    role: str | None = None
    expires_at: str | None = None
    reason: str | None = None


async def _mint(request: Request, rt: Any, principal: Any, body: SessionCreateIn) -> dict[str, Any]:
    agents = request.app.state.agents
    settings = rt.settings
    if agents.key is None:
        raise InvalidInput("agent tokens need LIGHTHOUSE_ADMIN_TOKEN or LIGHTHOUSE_TOKEN_SECRET to be set")
    if principal.role == "enrolment":
        allowed = await rt.pool.fetchval("SELECT enrol_roles FROM agent_tokens WHERE jti = $1",
                                         uuid.UUID(principal.jti))
        if body.role not in (allowed or []):
            raise Forbidden(f"this enrolment token may mint {sorted(allowed or [])}, not {body.role!r}")
    elif not principal.admin:
        raise Forbidden("minting tokens needs the admin token or an enrolment token")
    if body.role == "enrolment" and not body.enrol_roles:
        raise InvalidInput("role=enrolment needs enrol_roles")
    if body.role != "enrolment" and body.enrol_roles:
        raise InvalidInput("enrol_roles is only valid with role=enrolment")
    ttl = body.ttl_seconds or settings.token_default_ttl
    if ttl > settings.token_max_ttl:
        raise InvalidInput(f"ttl_seconds {ttl} exceeds the maximum {settings.token_max_ttl}")
    claims = tokens.new_claims(body.agent_id, body.role, ttl)
    issued_by = principal.agent_id or principal.name

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        await tokens.insert(conn, claims, issued_by, list(body.enrol_roles))

    expires = datetime.fromtimestamp(claims.expires_at, UTC).isoformat()
    details = {"jti": claims.jti, "agent_id": body.agent_id, "role": body.role, "expires_at": expires,
               "enrol_roles": list(body.enrol_roles)}
    await rt.guard("token_mint", events.append(
        rt.pool, [event("token_minted", "token", f"token:{claims.jti}", {**details, "issued_by": issued_by},
                        issued_by)], hook=hook))
    agents.audit.write("token_minted", "ok", issued_by, **details, client_ip=body.ip_address,
                       client_user_agent=body.user_agent)
    return {"session_id": claims.jti, "session_token": tokens.sign(agents.key, claims), "expires_at": expires,
            "agent_id": body.agent_id, "role": body.role}


@router.post("/session/create", response_model=SessionOut, responses=responses(403))
async def session_create(body: SessionCreateIn, request: Request, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Mint a token for an agent (admin, or an enrolment token for the roles it allows)."""
    return await _mint(request, rt, p, body)


@router.post("/tokens", response_model=SessionOut, responses=responses(403))
async def token_create(body: SessionCreateIn, request: Request, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Admin: mint a token (same as /session/create)."""
    return await _mint(request, rt, p, body)


@router.post("/session/validate", response_model=SessionValidateOut)
async def session_validate(body: SessionValidateIn, request: Request, rt: RuntimeDep,
                           p: PrincipalDep) -> dict[str, Any]:
    """Check a token (the one in the body, else the caller's own): {valid, agent_id, role, expires_at}."""
    agents = request.app.state.agents
    if body.session_token is None:
        exp = None
        if p.jti is not None:
            e = await rt.pool.fetchval("SELECT expires_at FROM agent_tokens WHERE jti = $1", uuid.UUID(p.jti))
            exp = e.isoformat() if e else None
        return {"valid": True, "session_id": p.jti, "agent_id": p.agent_id or p.name, "role": p.role,
                "expires_at": exp}
    if agents.key is None:
        return {"valid": False, "reason": "agent tokens are disabled"}
    try:
        claims = tokens.verify_signature(agents.key, body.session_token)
        await rt.guard("token_check", tokens.check_registry(rt.pool, claims))
    except tokens.TokenError as exc:
        return {"valid": False, "reason": str(exc)}
    return {"valid": True, "session_id": claims.jti, "agent_id": claims.agent_id, "role": claims.role,
            "expires_at": datetime.fromtimestamp(claims.expires_at, UTC).isoformat()}


@router.get("/tokens")
async def token_list(rt: RuntimeDep, _p: PrincipalDep,
                     agent_id: Annotated[str | None, Query(max_length=128)] = None,
                     limit: Annotated[int, Query(ge=1, le=10000)] = 1000) -> dict[str, Any]:
    """Admin: registered tokens (never the token strings)."""
    rows = await rt.guard("tokens", rt.pool.fetch(
        "SELECT * FROM agent_tokens WHERE $1::text IS NULL OR agent_id = $1 ORDER BY issued_at DESC LIMIT $2",
        agent_id, limit))
    return {"tokens": [tokens.row_public(r) for r in rows]}


@router.delete("/tokens/{jti}", responses=responses(404, 409))
async def token_revoke(jti: str, request: Request, rt: RuntimeDep, p: PrincipalDep) -> dict[str, Any]:
    """Admin: revoke a token; every replica refuses it from the next request on."""
    try:
        tid = uuid.UUID(jti)
    except ValueError:
        raise NotFound(f"no token {jti!r}") from None
    by = p.agent_id or p.name
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await conn.fetchrow("UPDATE agent_tokens SET revoked_at = coalesce(revoked_at, now()),"
                                " revoked_by = coalesce(revoked_by, $2) WHERE jti = $1 RETURNING *", tid, by)
        if r is None:
            raise NotFound(f"no token {jti!r}")
        row.update(dict(r))

    await rt.guard("token_revoke", events.append(
        rt.pool, [event("token_revoked", "token", f"token:{tid}", {"jti": str(tid), "revoked_by": by}, by)],
        hook=hook))
    request.app.state.agents.audit.write("token_revoked", "ok", by, jti=str(tid), agent_id=row["agent_id"],
                                         role=row["role"])
    return tokens.row_public(row)

"""Sessions and tokens: mint (upstream /session/create), check, list and revoke agent tokens.

Minting needs the admin token or an enrolment token (which may only mint the roles it was issued for, never admin).
The registry row and its `token_minted` event commit together; the token itself is never stored or logged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from lighthouse_bridge.agents import tokens
from lighthouse_bridge.agents.audit import event
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.errors import Forbidden, InvalidInput, NotFound
from lighthouse_bridge.models import SessionCreateIn, SessionOut, SessionValidateIn, SessionValidateOut
from lighthouse_bridge.store import db, events


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


async def mint(agents: Agents, caller: Principal, body: SessionCreateIn) -> SessionOut:
    """A token for an agent (admin, or an enrolment token for the roles it allows)."""
    settings = agents.settings
    if agents.key is None:
        raise InvalidInput("agent tokens need LIGHTHOUSE_ADMIN_TOKEN or LIGHTHOUSE_TOKEN_SECRET to be set")
    if caller.role == "enrolment":
        assert caller.jti is not None  # an enrolment principal always comes from a registered token
        allowed = await tokens.enrol_roles(agents.pool, caller.jti)
        if body.role not in allowed:
            raise Forbidden(
                f"this enrolment token may mint {sorted(allowed)}, not {body.role!r}", reason="enrolment_scope"
            )
    elif not caller.admin:
        raise Forbidden("minting tokens needs the admin token or an enrolment token", reason="mint")
    if body.role == "enrolment" and not body.enrol_roles:
        raise InvalidInput("role=enrolment needs enrol_roles")
    if body.role != "enrolment" and body.enrol_roles:
        raise InvalidInput("enrol_roles is only valid with role=enrolment")
    ttl = body.ttl_seconds or settings.token_default_ttl
    if ttl > settings.token_max_ttl:
        raise InvalidInput(f"ttl_seconds {ttl} exceeds the maximum {settings.token_max_ttl}")
    claims = tokens.new_claims(body.agent_id, body.role, ttl)
    issued_by = caller.agent_id or caller.name

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        await tokens.insert(conn, claims, issued_by, list(body.enrol_roles))

    expires = _iso(claims.expires_at)
    details = {
        "jti": claims.jti,
        "agent_id": body.agent_id,
        "role": body.role,
        "expires_at": expires,
        "enrol_roles": list(body.enrol_roles),
    }
    await db.guard(
        "token_mint",
        events.append(
            agents.pool,
            [event("token_minted", "token", f"token:{claims.jti}", {**details, "issued_by": issued_by}, issued_by)],
            hook=hook,
        ),
    )
    agents.audit.write(
        "token_minted", "ok", issued_by, **details, client_ip=body.ip_address, client_user_agent=body.user_agent
    )
    return SessionOut(
        session_id=claims.jti,
        session_token=tokens.sign(agents.key, claims),
        expires_at=expires,
        agent_id=body.agent_id,
        role=body.role,
    )


async def check(agents: Agents, caller: Principal, body: SessionValidateIn) -> SessionValidateOut:
    """Check a token (the one in the body, else the caller's own): {valid, agent_id, role, expires_at}."""
    if body.session_token is None:
        exp = None
        if caller.jti is not None:
            e = await tokens.expires_at(agents.pool, caller.jti)
            exp = e.isoformat() if e else None
        return SessionValidateOut(
            valid=True, session_id=caller.jti, agent_id=caller.agent_id or caller.name, role=caller.role, expires_at=exp
        )
    if agents.key is None:
        return SessionValidateOut(valid=False, reason="agent tokens are disabled")
    try:
        claims = tokens.verify_signature(agents.key, body.session_token)
        await db.guard("token_check", tokens.check_registry(agents.pool, claims))
    except tokens.TokenError as exc:
        return SessionValidateOut(valid=False, reason=str(exc))
    return SessionValidateOut(
        valid=True,
        session_id=claims.jti,
        agent_id=claims.agent_id,
        role=claims.role,
        expires_at=_iso(claims.expires_at),
    )


async def list_tokens(agents: Agents, agent_id: str | None = None, limit: int = 1000) -> dict[str, Any]:
    """Registered tokens (never the token strings): {tokens}."""
    rows = await db.guard("tokens", tokens.registered(agents.pool, agent_id, limit))
    return {"tokens": [tokens.row_public(r) for r in rows]}


async def revoke(agents: Agents, caller: Principal, jti: str) -> dict[str, Any]:
    """Revoke a token; every replica refuses it from the next request on."""
    tid = db.parse_id(jti, "token")
    by = caller.agent_id or caller.name
    row: dict[str, Any] = {}

    async def hook(conn: asyncpg.Connection, _r: list[events.AppendResult]) -> None:
        r = await tokens.revoke(conn, tid, by)
        if r is None:
            raise NotFound(f"no token {jti!r}")
        row.update(r)

    await db.guard(
        "token_revoke",
        events.append(
            agents.pool,
            [event("token_revoked", "token", f"token:{tid}", {"jti": str(tid), "revoked_by": by}, by)],
            hook=hook,
        ),
    )
    agents.audit.write("token_revoked", "ok", by, jti=str(tid), agent_id=row["agent_id"], role=row["role"])
    return tokens.row_public(row)

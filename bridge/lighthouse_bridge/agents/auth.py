"""Who is calling: bearer credentials -> Principal, role check, per-agent rate limit. No web framework here: a front
end (api/deps.py for HTTP) hands over the Authorization header, the method and the route template.

Credentials, in order: the admin token (LIGHTHOUSE_ADMIN_TOKEN, compared in constant time), then an agent token
(signature, expiry, registry row: see tokens.py). Without LIGHTHOUSE_ADMIN_TOKEN the bridge runs open (development
only; a warning is logged at start). Every refusal is audited.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lighthouse_bridge.agents import roles, tokens
from lighthouse_bridge.errors import Forbidden, RateLimited, Unauthorized
from lighthouse_bridge.store import db

if TYPE_CHECKING:
    from lighthouse_bridge.agents.service import Agents


@dataclass(frozen=True)
class Principal:
    """Who is calling; routes and services depend on this type only."""

    name: str
    admin: bool
    role: str = "admin"  # builder | expert | viewer | admin | enrolment (| public on the open health routes)
    agent_id: str | None = None
    jti: str | None = None  # agent token id; None for the admin token


PUBLIC = Principal("anonymous", admin=False, role="public")
ANONYMOUS_ADMIN = Principal("anonymous", admin=True, role="admin", agent_id="anonymous")
ADMIN = Principal("admin", admin=True, role="admin", agent_id="admin")


@dataclass(frozen=True)
class Request:
    """What the front end saw: the Authorization header (or ""), the method and route template, the client."""

    authorization: str
    method: str
    path: str
    client: str | None = None


def _fail(agents: Agents | None, req: Request, message: str, reason: str) -> Unauthorized:
    if agents is not None:
        agents.auth_failed(message, req.path, req.client)
    return Unauthorized(message, reason=reason)


async def authenticate(agents: Agents | None, admin_token: str | None, req: Request) -> Principal:
    """The one authentication gate: every route except /livez, /readyz, /health and /metrics needs a valid bearer
    token whose role may call it (agents.roles). `agents` is None before the agents runtime started."""
    if req.path in roles.OPEN_PATHS:
        return PUBLIC
    if not admin_token:
        return ANONYMOUS_ADMIN
    scheme, _, presented = req.authorization.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise _fail(agents, req, "missing bearer token", "missing_token")
    if hmac.compare_digest(presented.encode(), admin_token.encode()):
        return ADMIN
    if agents is None or agents.key is None:
        raise _fail(agents, req, "wrong bearer token", "wrong_token")
    try:
        claims = tokens.verify_signature(agents.key, presented)
        await db.guard("token_check", tokens.check_registry(agents.pool, claims))
    except tokens.TokenError as exc:
        raise _fail(agents, req, str(exc), exc.reason) from None
    principal = Principal(
        claims.agent_id, admin=claims.role == "admin", role=claims.role, agent_id=claims.agent_id, jti=claims.jti
    )
    if not roles.allows(claims.role, req.method, req.path):
        agents.record(
            "auth_forbidden",
            "denied",
            claims.agent_id,
            "auth",
            "auth",
            role=claims.role,
            method=req.method,
            path=req.path,
        )
        raise Forbidden(
            f"role {claims.role!r} may not {req.method} {req.path}",
            reason="role",
            allowed_roles=sorted(roles.allowed_roles(req.method, req.path)),
        )
    if claims.role != "admin":
        allowed, retry_after = await agents.limiter.hit(claims.agent_id)
        if not allowed:
            raise RateLimited(
                f"agent {claims.agent_id!r} exceeded {agents.limiter.per_minute} requests per minute",
                retry_after=retry_after,
            )
    return principal

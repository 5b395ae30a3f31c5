"""Who is calling: bearer credentials -> Principal, role check, per-agent rate limit. No web framework here: a front
end (api/deps.py for HTTP) hands over the Authorization header, the method and the route template.

Credentials, in order: the admin token (LIGHTHOUSE_ADMIN_TOKEN, compared in constant time), then an agent token
(signature, expiry, registry row: see tokens.py). Without LIGHTHOUSE_ADMIN_TOKEN the bridge runs open (development
only; a warning is logged at start). Every refusal is audited.

The compatibility mode (LIGHTHOUSE_COMPAT_ANONYMOUS_VALIDATE, off by default) lets a call without credentials reach
the routes in roles.ANONYMOUS_ROUTES (POST /validate) as the `anonymous` principal: only from the configured client
networks, under its own per-address rate limit that fails closed, and with a role no other route admits.
"""

from __future__ import annotations

import hmac
import ipaddress
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
ANONYMOUS = Principal("anonymous", admin=False, role=roles.ANONYMOUS, agent_id="anonymous")
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
    """`message` for people and the audit, `reason` a fixed word (the auth-failure metric's label)."""
    if agents is not None:
        agents.auth_failed(message, req.path, req.client)
    if (req.method, req.path) in roles.ANONYMOUS_ROUTES:
        # The original builder hook reads `status` from any answer it can parse: this one reads as a refusal.
        return Unauthorized(
            f"{message}; send an agent token as `Authorization: Bearer <token>`",
            reason=reason,
            approved=False,
            decision="blocked",
        )
    return Unauthorized(message, reason=reason)


def _anonymous_allowed(agents: Agents | None, req: Request) -> str | None:
    """None when the compatibility mode admits this tokenless call, else why not."""
    if agents is None or not agents.settings.compat_anonymous_validate:
        return "missing bearer token"
    if (req.method, req.path) not in roles.ANONYMOUS_ROUTES:
        return "missing bearer token (the compatibility mode covers only POST /validate)"
    try:
        client = ipaddress.ip_address(req.client or "")
    except ValueError:
        return "missing bearer token (anonymous caller without a client address)"
    if not any(client in net for net in agents.anonymous_networks):
        nets = ", ".join(agents.settings.compat_anonymous_networks)
        return f"missing bearer token (anonymous calls are accepted only from {nets})"
    return None


async def _anonymous(agents: Agents, req: Request) -> Principal:
    allowed, retry_after = await agents.anonymous_limiter.hit(f"anonymous:{req.client}")
    if not allowed:
        agents.record("auth_rate_limited", "denied", ANONYMOUS.name, "auth", "auth", path=req.path, client=req.client)
        raise RateLimited(
            f"anonymous calls from {req.client} exceeded {agents.anonymous_limiter.per_minute} per minute",
            retry_after=retry_after,
            approved=False,
            decision="blocked",
            reason="rate limit of the anonymous compatibility mode exceeded",
        )
    return ANONYMOUS


def authorize(agents: Agents, principal: Principal, method: str, path: str) -> None:
    """Forbidden unless the principal's role may call (method, route template); the refusal is audited. For front
    ends that authenticate once per connection or request and then check each operation (the MCP tools)."""
    if principal.admin or roles.allows(principal.role, method, path):
        return
    agents.record(
        "auth_forbidden",
        "denied",
        principal.agent_id or principal.name,
        "auth",
        "auth",
        role=principal.role,
        method=method,
        path=path,
    )
    raise Forbidden(
        f"role {principal.role!r} may not {method} {path}",
        reason="role",
        allowed_roles=sorted(roles.allowed_roles(method, path)),
    )


async def authenticate(agents: Agents | None, admin_token: str | None, req: Request) -> Principal:
    """The one authentication gate: every route except /livez, /readyz, /health and /metrics needs a valid bearer
    token whose role may call it (agents.roles). `agents` is None before the agents runtime started."""
    if req.path in roles.OPEN_PATHS:
        return PUBLIC
    if not admin_token:
        return ANONYMOUS_ADMIN
    scheme, _, presented = req.authorization.partition(" ")
    presented = presented.strip()
    if not req.authorization.strip():
        refusal = _anonymous_allowed(agents, req)
        if refusal is not None:
            raise _fail(agents, req, refusal, "missing_token")
        assert agents is not None
        return await _anonymous(agents, req)
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
    authorize(agents, principal, req.method, req.path)
    if claims.role != "admin":
        allowed, retry_after = await agents.limiter.hit(claims.agent_id)
        if not allowed:
            raise RateLimited(
                f"agent {claims.agent_id!r} exceeded {agents.limiter.per_minute} requests per minute",
                retry_after=retry_after,
            )
    return principal

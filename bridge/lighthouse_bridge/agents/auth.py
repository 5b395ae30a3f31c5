"""The body of `require_principal`: bearer credentials -> Principal, role check, per-agent rate limit.

Credentials, in order: the admin token (LIGHTHOUSE_ADMIN_TOKEN, compared in constant time), then an agent token
(signature, expiry, registry row: see tokens.py). Without LIGHTHOUSE_ADMIN_TOKEN the bridge runs open (development
only; a warning is logged at start). Every refusal is audited.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request

from lighthouse_bridge.agents import roles, tokens
from lighthouse_bridge.api.deps import Principal
from lighthouse_bridge.errors import BridgeError, Unauthorized


class Forbidden(BridgeError):
    status, kind, title = 403, "forbidden", "Forbidden"


class RateLimited(BridgeError):
    status, kind, title = 429, "rate-limited", "Too many requests"


PUBLIC = Principal("anonymous", admin=False, role="public")
ANONYMOUS_ADMIN = Principal("anonymous", admin=True, role="admin", agent_id="anonymous")
ADMIN = Principal("admin", admin=True, role="admin", agent_id="admin")


def _route(request: Request) -> tuple[str, str]:
    route: Any = request.scope.get("route")
    return request.method, getattr(route, "path", request.url.path)


def _fail(request: Request, reason: str, path: str) -> Unauthorized:
    agents = getattr(request.app.state, "agents", None)
    if agents is not None:
        client = request.client.host if request.client else None
        agents.auth_failed(reason, path, client)
    return Unauthorized(reason)


async def authenticate(request: Request) -> Principal:
    method, path = _route(request)
    if path in roles.OPEN_PATHS:
        return PUBLIC
    settings = request.app.state.settings
    if not settings.admin_token:
        return ANONYMOUS_ADMIN
    header = request.headers.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise _fail(request, "missing bearer token", path)
    if hmac.compare_digest(presented.encode(), settings.admin_token.encode()):
        return ADMIN
    agents = getattr(request.app.state, "agents", None)
    if agents is None or agents.key is None:
        raise _fail(request, "wrong bearer token", path)
    try:
        claims = tokens.verify_signature(agents.key, presented)
        await agents.rt.guard("token_check", tokens.check_registry(agents.pool, claims))
    except tokens.TokenError as exc:
        raise _fail(request, str(exc), path) from None
    principal = Principal(claims.agent_id, admin=claims.role == "admin", role=claims.role, agent_id=claims.agent_id,
                          jti=claims.jti)
    if not roles.allows(claims.role, method, path):
        agents.record("auth_forbidden", "denied", claims.agent_id, "auth", "auth", role=claims.role, method=method,
                      path=path)
        raise Forbidden(f"role {claims.role!r} may not {method} {path}",
                        allowed_roles=sorted(roles.allowed_roles(method, path)))
    if claims.role != "admin":
        allowed, retry_after = await agents.limiter.hit(claims.agent_id)
        if not allowed:
            raise RateLimited(f"agent {claims.agent_id!r} exceeded {agents.limiter.per_minute} requests per minute",
                              retry_after=retry_after)
    return principal


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """errors.responses plus the auth layer's own problems (403 role, 429 rate limit) for OpenAPI."""
    from lighthouse_bridge import errors

    out = errors.responses(*[c for c in codes if c not in (403, 429)])
    schema = {"schema": {"type": "object", "required": ["type", "title", "status", "detail"]}}
    out[403] = {"description": "The token's role may not call this route", "content": {errors.PROBLEM_JSON: schema}}
    out[429] = {"description": "Per-agent rate limit exceeded (retry_after seconds in the body)",
                "content": {errors.PROBLEM_JSON: schema}}
    return out


class DocsGuard:
    """Pure ASGI middleware: /openapi.json and /docs* are plain Starlette routes that FastAPI's app-wide
    dependencies do not reach, so the same gate is applied here (any valid token may read the API schema)."""

    PATHS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in self.PATHS:
            from lighthouse_bridge.errors import problem

            request = Request(scope, receive)
            try:
                await authenticate(request)
            except BridgeError as exc:
                await problem(exc.status, exc.kind, exc.title, exc.detail, **exc.extra)(scope, receive, send)
                return
        await self.app(scope, receive, send)

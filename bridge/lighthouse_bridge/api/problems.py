"""Errors as HTTP problems (RFC 9457): the one place where the bridge's framework-free errors get HTTP statuses.

Every error the API returns is an `application/problem+json` body, never a bare 500 page. The services and the store
raise `lighthouse_bridge.errors` types; a PostgreSQL connection failure that no service translated is turned into the
same `StoreUnavailable` here, by the store's own translation (store.db.unavailable).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lighthouse_bridge import errors, metrics
from lighthouse_bridge.store import db

log = logging.getLogger(__name__)

TYPE_BASE = "https://lighthouse.dev/problems/"
PROBLEM_JSON = "application/problem+json"

STATUS: dict[type[errors.BridgeError], int] = {
    errors.BridgeError: 400,
    errors.InvalidInput: 422,
    errors.InvalidPath: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooLarge: 413,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.RateLimited: 429,
    errors.StoreUnavailable: 503,
}


def status_of(exc: errors.BridgeError) -> int:
    return next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: errors.BridgeError) -> JSONResponse:
    status = status_of(exc)
    if isinstance(exc, errors.Unauthorized | errors.Forbidden):
        metrics.AUTH_FAILURES.labels(str(status), exc.reason).inc()  # every 401 and 403 the API sends
    return problem(status, exc.kind, exc.title, exc.detail, **exc.extra)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.BridgeError)
    async def _bridge(_: Request, exc: errors.BridgeError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "invalid-input", "Invalid input", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, kind, str(exc.detail) or "HTTP error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        unavailable = db.unavailable(exc, "request")
        if unavailable is not None:
            return error_response(unavailable)
        log.exception("Unhandled error")
        return problem(500, "internal", "Internal error", "unexpected error; see the bridge log")


# ---------------------------------------------------------------- OpenAPI documentation of the problems
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}
_DESCRIPTIONS = {
    400: "Malformed request (unparseable body, body not matching its hash)",
    401: "Missing or wrong bearer token",
    404: "Not found",
    409: "Conflict (expected_version, existing path or name)",
    413: "Request or result too large",
    422: "Invalid input (validation, bad path, bad pattern)",
    503: "PostgreSQL unavailable; nothing was acknowledged, retry with the same event_id",
}
_AUTH_DESCRIPTIONS = {
    403: "The token's role may not call this route",
    429: "Per-agent rate limit exceeded (retry_after seconds in the body)",
}
COMMON = (400, 401, 413, 422, 503)


def _doc(code: int) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI docs for the problem responses a route may return: the common ones plus `codes`."""
    return {c: _doc(c) for c in sorted({*COMMON, *codes})}


def agent_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses` for the agents' routes, which also document the auth layer's own problems (403 role, 429 rate
    limit)."""
    out = responses(*[c for c in codes if c not in _AUTH_DESCRIPTIONS])
    schema = {"schema": {"type": "object", "required": ["type", "title", "status", "detail"]}}
    for code, description in _AUTH_DESCRIPTIONS.items():
        out[code] = {"description": description, "content": {PROBLEM_JSON: schema}}
    return out


def document_problems(app: FastAPI, open_paths: frozenset[str] = frozenset()) -> None:
    """Make the OpenAPI document match what the handlers above really send, for every route (including routes
    added by other packages): error responses are application/problem+json, and the errors any request can meet
    (malformed body 400, auth 401, size 413, validation 422, PostgreSQL down 503) are documented everywhere."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        for path, item in schema.get("paths", {}).items():
            for op in item.values():
                if not isinstance(op, dict) or "responses" not in op or path in open_paths:
                    continue  # the open health routes document their own (JSON) 503 bodies
                resp = op["responses"]
                for code in [c for c in resp if c.isdigit() and int(c) >= 400]:
                    resp[code]["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}
                for code in COMMON:
                    resp.setdefault(str(code), _doc(code))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

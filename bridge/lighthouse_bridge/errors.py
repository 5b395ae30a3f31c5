"""RFC 9457 problem bodies: every error the API returns is one of these, never a bare 500 page."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

TYPE_BASE = "https://lighthouse.dev/problems/"
PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str


class BridgeError(Exception):
    """A domain error carrying its HTTP status and problem type."""

    status = 400
    kind = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(BridgeError):
    status, kind, title = 422, "invalid-input", "Invalid input"


class InvalidPath(BridgeError):
    status, kind, title = 422, "invalid-path", "Invalid path"


class NotFound(BridgeError):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(BridgeError):
    status, kind, title = 409, "conflict", "Conflict"


class TooLarge(BridgeError):
    status, kind, title = 413, "too-large", "Too large"


class Unauthorized(BridgeError):
    status, kind, title = 401, "unauthorized", "Unauthorized"


class StoreUnavailable(BridgeError):
    """PostgreSQL cannot be reached: nothing was acknowledged, the client may retry (with the same event_id)."""

    status, kind, title = 503, "postgres-unavailable", "Event store unavailable"


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + kind, "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(BridgeError)
    async def _bridge(_: Request, exc: BridgeError) -> JSONResponse:
        return problem(exc.status, exc.kind, exc.title, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "invalid-input", "Invalid input", _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, kind, str(exc.detail) or "HTTP error", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        from lighthouse_bridge.store.db import is_connection_error

        if is_connection_error(exc):
            return problem(503, StoreUnavailable.kind, StoreUnavailable.title, f"PostgreSQL unavailable: {exc!r}")
        log.exception("Unhandled error")
        return problem(500, "internal", "Internal error", "unexpected error; see the bridge log")


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
COMMON = (400, 401, 413, 422, 503)


def _doc(code: int) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[code], "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI docs for the problem responses a route may return: the common ones plus `codes`."""
    return {c: _doc(c) for c in sorted({*COMMON, *codes})}


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

"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request metrics, the request-size limit, and the auth gate
for the API documents."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lighthouse_bridge import metrics
from lighthouse_bridge.api.deps import require_principal
from lighthouse_bridge.api.problems import error_response, problem
from lighthouse_bridge.errors import BridgeError, TooLarge


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics.ACTIVE_CONNECTIONS.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.ACTIVE_CONNECTIONS.dec()
            route: Any = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.REQUESTS.labels(method, label, str(status)).inc()
            histogram = (
                metrics.LONG_DURATION
                if metrics.is_long_request(label, scope.get("query_string", b""))
                else metrics.DURATION
            )
            histogram.labels(method, label).observe(time.perf_counter() - start)
            if status >= 400:
                metrics.ERRORS.labels(label, str(status)).inc()
            metrics.RECENT.record(status >= 400)


class BodyLimitMiddleware:
    """413 problem for bodies above the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    resp = problem(
                        413, "too-large", "Request too large", f"request body exceeds {self.max_bytes} bytes"
                    )
                    await resp(scope, receive, send)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge(f"request body exceeds {self.max_bytes} bytes")
            return message

        await self.app(scope, limited, send)


class DocsGuard:
    """/openapi.json and /docs* are plain Starlette routes that FastAPI's app-wide dependencies do not reach, so the
    same gate is applied here (any valid token may read the API schema)."""

    PATHS = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.PATHS:
            try:
                await require_principal(Request(scope, receive))
            except BridgeError as exc:
                await error_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)

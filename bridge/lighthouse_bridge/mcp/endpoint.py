"""/mcp as an ASGI endpoint: the bearer-token gate in front of the SDK's streamable HTTP session manager.

Process model: the session manager's task group runs inside the app's lifespan (`run`), so sessions live in the
bridge's one event loop. On SIGTERM (`Runtime.draining`) tools that long-poll return what they have; once the
requests in flight have answered (bounded by DRAIN_GRACE), every open session is terminated, which ends its SSE
streams, so uvicorn's graceful shutdown does not wait on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from lighthouse_bridge.agents import auth
from lighthouse_bridge.errors import BridgeError

log = logging.getLogger(__name__)

PATH = "/mcp"
PRINCIPAL_KEY = "lighthouse.principal"
# Renders a refused credential as an HTTP answer; main.py passes the API's problem renderer (one status mapping).
ErrorRenderer = Callable[[BridgeError], Any]
DRAIN_GRACE = 3.0  # seconds in-flight calls get to answer before the sessions close (uvicorn waits 5)


class McpEndpoint:
    def __init__(self, server: MCPServer, state: Any, render_error: ErrorRenderer, idle_timeout: float) -> None:
        self.state = state  # the app's state: .agents, .runtime, .settings once the lifespan started
        self.render_error = render_error
        # Bearer tokens (never cookies) authenticate every request, so a DNS-rebinding page gains nothing the
        # token does not already give; the Host check would only refuse clients that reach the pod by Service name.
        server.streamable_http_app(
            streamable_http_path=PATH,
            session_idle_timeout=idle_timeout,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager: StreamableHTTPSessionManager = server.session_manager
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def run(self, draining: asyncio.Event) -> AsyncIterator[None]:
        """The session manager's task group, for the app's lifespan. It is entered and left in a task of its own:
        anyio requires one task to do both, and a lifespan may start and stop in different tasks (tests do)."""
        stop = asyncio.Event()
        started = asyncio.Event()

        async def serve() -> None:
            async with self.manager.run():
                watcher = asyncio.create_task(self._close_on_drain(draining), name="mcp-drain")
                started.set()
                try:
                    await stop.wait()
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher

        task = asyncio.create_task(serve(), name="mcp-sessions")
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            ready.cancel()
            await task  # raises why the session manager did not start
        try:
            yield
        finally:
            stop.set()
            await task

    async def _close_on_drain(self, draining: asyncio.Event) -> None:
        await draining.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), DRAIN_GRACE)
        # The SDK keeps no public list of its sessions; terminating a transport is what a client's DELETE does.
        sessions = dict(getattr(self.manager, "_server_instances", {}))
        for transport in sessions.values():
            with contextlib.suppress(Exception):
                await transport.terminate()
        log.info("Closed MCP sessions sessions=%d (draining)", len(sessions))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        client = scope.get("client")
        req = auth.Request(
            authorization=headers.get("authorization", ""),
            method=scope.get("method", "POST"),
            path=PATH,
            client=client[0] if client else None,
        )
        try:
            principal = await auth.authenticate(
                getattr(self.state, "agents", None), self.state.settings.admin_token, req
            )
        except BridgeError as exc:
            await self.render_error(exc)(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        # The SDK binds a session to the credential that opened it: another token gets 404 for that session.
        scope["user"] = AuthenticatedUser(
            AccessToken(
                token="-",
                client_id=principal.agent_id or principal.name,
                scopes=[principal.role],
                subject=principal.jti or principal.name,
            )
        )
        # A GET is the session's open-ended event stream, not a call: only POSTs count as in flight.
        counted = scope.get("method") == "POST"
        if counted:
            self._in_flight += 1
            self._idle.clear()
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            if counted:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()

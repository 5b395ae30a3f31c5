"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.routing import Route

from lighthouse_bridge import __version__
from lighthouse_bridge.agents.roles import OPEN_PATHS
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.api import problems
from lighthouse_bridge.api.deps import require_principal
from lighthouse_bridge.api.middleware import BodyLimitMiddleware, DocsGuard, MetricsMiddleware
from lighthouse_bridge.api.routes import annotations as annotation_routes
from lighthouse_bridge.api.routes import (
    audit,
    elicitations,
    events,
    experts,
    health,
    history,
    hooks,
    sessions,
    shadow,
    snapshots,
    validate,
)
from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.mcp import tools as mcp_tools
from lighthouse_bridge.mcp.endpoint import PATH as MCP_PATH
from lighthouse_bridge.mcp.endpoint import McpEndpoint

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await Runtime.start(settings)
        try:
            app.state.agents = await Agents.start(settings, app.state.runtime)
        except BaseException:
            await app.state.runtime.stop()
            raise
        log.info(
            "Bridge started position=%d redis=%s fuse_mode=%s",
            app.state.runtime.projection.position,
            app.state.runtime.cache.status,
            settings.fuse_mode,
        )
        try:
            # the MCP session manager's task group lives in this lifespan, in the one event loop
            async with mcp.run(app.state.runtime.draining):
                yield
        finally:
            await app.state.agents.stop()
            await app.state.runtime.stop()
            log.info("Bridge stopped")

    app = FastAPI(
        title="Lighthouse Bridge",
        version=__version__,
        description="Event-sourced shadow of a software project: events, shadow tree, history, annotations.",
        lifespan=lifespan,
        # Fail closed: every route, including ones added later, passes the auth gate; it lets only the open
        # health routes (agents.roles.OPEN_PATHS) through without a token.
        dependencies=[Depends(require_principal)],
    )
    app.state.settings = settings
    problems.install(app)
    app.include_router(health.router)
    protected = [Depends(require_principal)]
    for module in (events, shadow, history, annotation_routes, snapshots):
        app.include_router(module.router, dependencies=protected)
    for module in (sessions, validate, hooks, experts, elicitations, audit):
        app.include_router(module.router, dependencies=protected)
    # MCP over streamable HTTP: a plain Starlette route (not in the OpenAPI document); its own gate authenticates.
    mcp = McpEndpoint(mcp_tools.build(app.state), app.state, problems.error_response, settings.mcp_session_idle_timeout)
    app.router.routes.append(Route(MCP_PATH, endpoint=mcp, methods=["GET", "POST", "DELETE"]))
    problems.document_problems(app, OPEN_PATHS)
    app.add_middleware(DocsGuard)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware)
    return app

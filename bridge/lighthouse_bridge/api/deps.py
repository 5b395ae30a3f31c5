"""Dependencies shared by the routes, as Annotated aliases (FastAPI template style)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from lighthouse_bridge.agents import auth
from lighthouse_bridge.agents.auth import Principal
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.core.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: a sync dependency costs a thread hop
    return request.app.state.runtime


async def get_agents(request: Request) -> Agents:
    return request.app.state.agents


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def auth_request(request: Request) -> auth.Request:
    """The credentials and the route template (the role table is keyed by templates, not by concrete paths)."""
    route: Any = request.scope.get("route")
    return auth.Request(
        authorization=request.headers.get("authorization", ""),
        method=request.method,
        path=getattr(route, "path", request.url.path),
        client=request.client.host if request.client else None,
    )


async def require_principal(request: Request) -> Principal:
    """The authentication gate, installed app-wide (main.py): see agents.auth.authenticate."""
    return await auth.authenticate(
        getattr(request.app.state, "agents", None), request.app.state.settings.admin_token, auth_request(request)
    )


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
AgentsDep = Annotated[Agents, Depends(get_agents)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]

"""Dependencies shared by the routes, as Annotated aliases (FastAPI template style)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.core.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:  # async: a sync dependency costs a thread hop
    return request.app.state.runtime


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


@dataclass(frozen=True)
class Principal:
    """Who is calling. The agents/auth issue replaces require_principal's body; routes only depend on this type."""

    name: str
    admin: bool
    role: str = "admin"  # builder | expert | viewer | admin | enrolment (| public on the open health routes)
    agent_id: str | None = None
    jti: str | None = None  # agent token id; None for the admin token


async def require_principal(request: Request) -> Principal:
    """The one authentication gate, installed app-wide: every route except /livez, /readyz, /health and /metrics
    needs a valid bearer token whose role may call it (see lighthouse_bridge.agents.auth and agents.roles)."""
    from lighthouse_bridge.agents.auth import authenticate

    return await authenticate(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]

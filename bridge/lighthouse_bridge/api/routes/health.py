"""Health, readiness, status and metrics. /livez, /readyz, /health and /metrics are open (no token); /status and
/health/{detailed,dependencies} pass the auth gate like every other route. All cheap except /readyz."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lighthouse_bridge import metrics
from lighthouse_bridge.api.deps import AgentsDep, RuntimeDep
from lighthouse_bridge.models import Health, Livez, Readyz
from lighthouse_bridge.services import health as service

router = APIRouter(tags=["health"])

_DOC_503: dict[int | str, dict[str, Any]] = {503: {"description": "Not ready / unhealthy", "model": Readyz}}


@router.get("/livez", response_model=Livez)
async def livez() -> dict[str, str]:
    """Liveness: the event loop answers. No dependency is touched."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readyz, responses=_DOC_503)
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Readiness for the operator's health gate: PostgreSQL, Redis and the FUSE mount are really checked."""
    ready, body = await service.readiness(rt)
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/health", response_model=Health, responses={503: {"description": "Unhealthy", "model": Health}})
async def health(rt: RuntimeDep) -> JSONResponse:
    """Overall status from the background probes (no I/O per request)."""
    body = service.health(rt)
    return JSONResponse(body, status_code=503 if body["status"] == "unhealthy" else 200)


@router.get("/health/detailed")
async def health_detailed(rt: RuntimeDep) -> dict[str, Any]:
    """Every component with its last probe, the projection lag and cache statistics."""
    return service.detailed(rt)


@router.get("/health/dependencies")
async def health_dependencies(rt: RuntimeDep) -> dict[str, Any]:
    """Live probe of PostgreSQL and Redis: {"postgres": {"status": "connected"|...}, "redis": {...}}."""
    return await service.dependencies(rt)


@router.get("/status")
async def status(rt: RuntimeDep, agents: AgentsDep) -> dict[str, Any]:
    """Upstream-compatible status document with live counts: agents holding a live token, escalations and
    elicitations waiting, expert workers."""
    return await service.status(rt, agents)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics_endpoint() -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

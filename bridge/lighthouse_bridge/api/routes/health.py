"""Health, readiness, status and metrics. /livez, /readyz, /health and /metrics are open (no token); /status and
/health/{detailed,dependencies} pass the auth gate like every other route. All cheap except /readyz."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from lighthouse_bridge import __version__, metrics
from lighthouse_bridge.api.deps import RuntimeDep
from lighthouse_bridge.api.models import Health, Livez, Readyz

router = APIRouter(tags=["health"])

_DOC_503: dict[int | str, dict[str, Any]] = {503: {"description": "Not ready / unhealthy", "model": Readyz}}


@router.get("/livez", response_model=Livez)
async def livez() -> dict[str, str]:
    """Liveness: the event loop answers. No dependency is touched."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readyz, responses=_DOC_503)
async def readyz(rt: RuntimeDep) -> JSONResponse:
    """Readiness for the operator's health gate: PostgreSQL, Redis and the FUSE mount are really checked."""
    pg, redis = await asyncio.gather(rt.check_postgres(), rt.check_redis())
    fuse = rt.check_fuse()
    ready = pg.status == "connected" and fuse.status in ("mounted", "disabled")
    if rt.settings.redis_required and redis.status != "connected":
        ready = False
    status = "not_ready" if not ready else ("degraded" if redis.status == "disconnected" else "ready")
    checks = {
        "postgres": pg.public(),
        "redis": {**redis.public(), "status": "down" if redis.status == "disconnected" else redis.status},
        "fuse": fuse.public(),
        "projection": {"status": "following", "position": rt.projection.position, "head": rt.projection.head,
                       "listening": rt.projection.listening},
    }
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ready else 503)


@router.get("/health", response_model=Health, responses={503: {"description": "Unhealthy", "model": Health}})
async def health(rt: RuntimeDep) -> JSONResponse:
    """Overall status from the background probes (no I/O per request)."""
    status = rt.overall()
    body = {"status": status, "version": __version__, "position": rt.projection.position,
            "uptime_seconds": round(time.monotonic() - rt.started, 3)}
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)


@router.get("/health/detailed")
async def health_detailed(rt: RuntimeDep) -> dict[str, Any]:
    """Every component with its last probe, the projection lag and cache statistics."""
    p = rt.projection
    return {
        "status": rt.overall(),
        "version": __version__,
        "uptime_seconds": round(time.monotonic() - rt.started, 3),
        "components": {
            "postgres": {**rt.postgres.public(), "pool_size": rt.pool.get_size(), "pool_idle": rt.pool.get_idle_size()},
            "redis": rt.redis.public(),
            "fuse": rt.fuse.public(),
            "projection": {"position": p.position, "head": p.head, "lag_events": max(0, p.head - p.position),
                           "files": len(p.tree.files), "listening": p.listening,
                           "last_snapshot_position": p.last_snapshot_position},
        },
        "cache": rt.cache.stats(),
    }


@router.get("/health/dependencies")
async def health_dependencies(rt: RuntimeDep) -> dict[str, Any]:
    """Live probe of PostgreSQL and Redis: {"postgres": {"status": "connected"|...}, "redis": {...}}."""
    pg, redis = await asyncio.gather(rt.check_postgres(), rt.check_redis())
    return {"postgres": pg.public(), "redis": redis.public()}


@router.get("/status")
async def status(rt: RuntimeDep) -> dict[str, Any]:
    """Upstream-compatible status document."""
    fuse_ok = rt.fuse.status == "mounted"
    return {
        "status": rt.overall(),
        "mode": "normal" if fuse_ok or rt.fuse.status == "disabled" else "degraded_no_fuse",
        "components": {
            "event_store": "operational" if rt.postgres.status == "connected" else "unavailable",
            "speed_layer": "operational" if rt.redis.status == "connected" else "unavailable",
            "expert_coordinator": "unavailable",
            "fuse_mount": "operational" if fuse_ok else "unavailable",
        },
        "active_agents": 0,
        "pending_validations": 0,
        "uptime_seconds": round(time.monotonic() - rt.started, 3),
        "position": rt.projection.position,
        "head": rt.projection.head,
    }


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics_endpoint() -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

"""Health, readiness and status documents. All cheap (the background probes' last results) except `readiness`
and `dependencies`, which really touch PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lighthouse_bridge import __version__
from lighthouse_bridge.agents.service import Agents
from lighthouse_bridge.core.runtime import Runtime
from lighthouse_bridge.store import db


def _uptime(rt: Runtime) -> float:
    return round(time.monotonic() - rt.started, 3)


async def readiness(rt: Runtime) -> tuple[bool, dict[str, Any]]:
    """(ready, {status, checks}) for the operator's health gate: PostgreSQL, Redis and the FUSE mount are checked.
    The FUSE mount is optional (the API serves without it): its absence makes the bridge degraded, never unready."""
    pg, redis = await asyncio.gather(rt.check_postgres(), rt.check_redis())
    fuse = rt.check_fuse()
    ready = pg.status == "connected"
    if rt.settings.redis_required and redis.status != "connected":
        ready = False
    degraded = redis.status == "disconnected" or fuse.status not in ("mounted", "disabled")
    status = "not_ready" if not ready else ("degraded" if degraded else "ready")
    checks = {
        "postgres": pg.public(),
        "redis": {**redis.public(), "status": "down" if redis.status == "disconnected" else redis.status},
        "fuse": fuse.public(),
        "projection": {
            "status": "following",
            "position": rt.projection.position,
            "head": rt.projection.head,
            "listening": rt.projection.listening,
        },
    }
    return ready, {"status": status, "checks": checks}


def health(rt: Runtime) -> dict[str, Any]:
    """Overall status from the background probes (no I/O)."""
    return {
        "status": rt.overall(),
        "version": __version__,
        "position": rt.projection.position,
        "uptime_seconds": _uptime(rt),
        "fuse": {"status": rt.fuse.status, "error": rt.fuse.error},
    }


def detailed(rt: Runtime) -> dict[str, Any]:
    """Every component with its last probe, the projection lag and cache statistics."""
    p = rt.projection
    return {
        "status": rt.overall(),
        "version": __version__,
        "uptime_seconds": _uptime(rt),
        "components": {
            "postgres": {**rt.postgres.public(), "pool_size": rt.pool.get_size(), "pool_idle": rt.pool.get_idle_size()},
            "redis": rt.redis.public(),
            "fuse": rt.fuse.public(),
            "projection": {
                "position": p.position,
                "head": p.head,
                "lag_events": max(0, p.head - p.position),
                "files": len(p.tree.files),
                "listening": p.listening,
                "last_snapshot_position": p.last_snapshot_position,
            },
        },
        "cache": rt.cache.stats(),
    }


async def dependencies(rt: Runtime) -> dict[str, Any]:
    """Live probe of PostgreSQL and Redis: {"postgres": {"status": "connected"|...}, "redis": {...}}."""
    pg, redis = await asyncio.gather(rt.check_postgres(), rt.check_redis())
    return {"postgres": pg.public(), "redis": redis.public()}


async def status(rt: Runtime, agents: Agents) -> dict[str, Any]:
    """The upstream-compatible status document, with live counts from PostgreSQL (agents holding a live token,
    escalations and elicitations waiting, registered experts) and this replica's expert worker."""
    fuse_ok = rt.fuse.status == "mounted"
    counts = await db.guard("status", agents.counts())
    worker = agents.expert_worker_state()
    coordinator = "disabled" if not worker["enabled"] else ("operational" if worker["running"] else "unavailable")
    return {
        "status": rt.overall(),
        "mode": "normal" if fuse_ok or rt.fuse.status == "disabled" else "degraded_no_fuse",
        "components": {
            "event_store": "operational" if rt.postgres.status == "connected" else "unavailable",
            "speed_layer": "operational" if rt.redis.status == "connected" else "unavailable",
            "expert_coordinator": coordinator,
            "fuse_mount": "operational" if fuse_ok else "unavailable",
        },
        "active_agents": counts["active_agents"],
        "active_sessions": counts["active_sessions"],
        "pending_validations": counts["pending_validations"],
        "pending_elicitations": counts["pending_elicitations"],
        "expert_workers": {
            "running": 1 if worker["running"] else 0,
            "leader": worker["leader"],
            "files_processed": worker["processed"],
            "registered_experts": counts["registered_experts"],
            "external_experts": counts["external_experts"],
        },
        "uptime_seconds": _uptime(rt),
        "position": rt.projection.position,
        "head": rt.projection.head,
    }

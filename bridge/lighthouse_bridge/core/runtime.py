"""The per-process runtime: pool, cache, projection and the dependency monitor, created by the app lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from lighthouse_bridge import metrics
from lighthouse_bridge.cache.redis_cache import Cache
from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.errors import InvalidInput
from lighthouse_bridge.store import blobs, db, events, ingest, projection
from lighthouse_bridge.store.group_commit import GroupCommitter
from lighthouse_bridge.store.tree import Tree

log = logging.getLogger(__name__)


@dataclass
class DependencyState:
    status: str = "unknown"  # connected | disconnected | disabled | mounted | not_mounted | unknown
    latency_ms: float | None = None
    error: str | None = None
    checked_at: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {"status": self.status, "latency_ms": self.latency_ms, "error": self.error, **self.detail}


class Runtime:
    def __init__(self, settings: Settings, pool: asyncpg.Pool, cache: Cache, proj: projection.Projection) -> None:
        self.settings = settings
        self.pool = pool
        self.cache = cache
        self.projection = proj
        self.appender = GroupCommitter(
            pool, max_path_bytes=settings.max_path_bytes, max_group_events=max(settings.max_batch_events, 1)
        )
        self.started = time.monotonic()
        self.postgres = DependencyState()
        self.redis = DependencyState(status=cache.status)
        self.fuse = DependencyState(status="disabled")
        self._monitor: asyncio.Task[None] | None = None
        # Set on SIGTERM (before uvicorn waits for open responses): event streams end with a complete response, so
        # followers see a clean end and reconnect elsewhere instead of a torn chunked body.
        self.draining = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def drain(self) -> None:
        """Safe from a signal handler or another thread."""
        self.loop.call_soon_threadsafe(self.draining.set)

    async def wait_beyond(self, position: int, wait_seconds: float) -> bool:
        """The projection's wait_beyond, cut short by draining: True only when the head moved beyond `position`."""
        if self.draining.is_set():
            return False
        advanced = asyncio.ensure_future(self.projection.wait_beyond(position, wait_seconds))
        drained = asyncio.ensure_future(self.draining.wait())
        try:
            done, _ = await asyncio.wait({advanced, drained}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (advanced, drained):
                task.cancel()
        return advanced in done and advanced.result()

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    async def start(cls, settings: Settings) -> Runtime:
        pool = await db.connect_with_retry(
            settings.database_url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            op_timeout=settings.database_timeout,
            deadline=settings.database_connect_timeout,
        )
        try:
            await db.migrate(pool)
            cache = Cache(
                settings.redis_url,
                prefix=settings.redis_prefix,
                timeout=settings.redis_timeout,
                ttl=settings.cache_ttl_seconds,
                max_blob_bytes=settings.cache_max_blob_bytes,
            )
            if settings.project_path is not None:
                await ingest.ingest_once(
                    pool,
                    settings.project_path,
                    exclude=settings.ingest_exclude,
                    max_file_bytes=settings.max_file_bytes,
                    max_path_bytes=settings.max_path_bytes,
                )
            proj = projection.Projection(
                pool,
                settings.database_url,
                poll_interval=settings.projection_poll_interval,
                snapshot_interval=settings.snapshot_interval,
                snapshot_keep=settings.snapshot_keep,
            )
            await proj.start()
        except BaseException:
            await pool.close()
            raise
        rt = cls(settings, pool, cache, proj)
        await rt.check_dependencies()
        rt._monitor = asyncio.create_task(rt._monitor_loop(), name="dependency-monitor")
        return rt

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await self.appender.stop()
        await self.projection.stop()
        await self.cache.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(), 5)

    # ---------------------------------------------------------------- dependency checks
    async def check_postgres(self) -> DependencyState:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(min(self.settings.database_timeout, 2.0)):
                await self.pool.fetchval("SELECT 1")
            self.postgres = DependencyState(
                "connected", round((time.perf_counter() - t0) * 1000, 3), checked_at=time.monotonic()
            )
        except Exception as exc:
            if self.postgres.status == "connected":
                log.warning("PostgreSQL unavailable error=%r", exc)
            self.postgres = DependencyState("disconnected", None, repr(exc), time.monotonic())
        metrics.POSTGRES_UP.set(1 if self.postgres.status == "connected" else 0)
        return self.postgres

    async def check_redis(self) -> DependencyState:
        if not self.cache.enabled:
            self.redis = DependencyState("disabled", checked_at=time.monotonic())
            return self.redis
        t0 = time.perf_counter()
        ok = await self.cache.ping()
        self.redis = DependencyState(
            "connected" if ok else "disconnected",
            round((time.perf_counter() - t0) * 1000, 3) if ok else None,
            None if ok else self.cache.last_error,
            time.monotonic(),
        )
        return self.redis

    def check_fuse(self) -> DependencyState:
        s = self.settings
        if s.fuse_mode == "disabled":
            self.fuse = DependencyState("disabled", checked_at=time.monotonic())
        else:
            try:
                doc = json.loads(s.fuse_status_file.read_text(encoding="utf-8"))
                mounted = doc.get("mounted") is True
                self.fuse = DependencyState(
                    "mounted" if mounted else "not_mounted",
                    None,
                    doc.get("error"),
                    time.monotonic(),
                    {"mountpoint": doc.get("mountpoint")},
                )
            except (OSError, ValueError, AttributeError) as exc:
                self.fuse = DependencyState(
                    "not_mounted", None, f"status file {s.fuse_status_file}: {exc}", time.monotonic()
                )
        metrics.FUSE_MOUNTED.set(1 if self.fuse.status == "mounted" else 0)
        return self.fuse

    async def check_dependencies(self) -> None:
        await asyncio.gather(self.check_postgres(), self.check_redis())
        self.check_fuse()

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval)
            try:
                await self.check_dependencies()
            except Exception:
                log.exception("Dependency check failed")

    def overall(self) -> str:
        """healthy | degraded | unhealthy, from the last background probes (cheap; no I/O). Without its FUSE mount
        the bridge still serves its API: degraded."""
        if self.postgres.status != "connected":
            return "unhealthy"
        if (
            self.redis.status == "disconnected"
            or self.fuse.status == "not_mounted"
            or self.projection.head - self.projection.position > 1000
        ):
            return "degraded"
        return "healthy"

    # ---------------------------------------------------------------- data helpers
    async def read_blob(self, sha: str) -> bytes | None:
        cached = await self.cache.get("blob", sha)
        if cached is not None:
            return cached
        content = await db.guard("read_blob", blobs.get(self.pool, sha))
        if content is not None:
            await self.cache.set("blob", sha, content)
        return content

    async def resolve_at(self, at: str | None) -> int:
        """`at` as a position (digits) or an ISO-8601 time -> position; None -> the replica's current position."""
        if at is None or at == "":
            return self.projection.position
        if at.isdigit():
            return int(at)
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"at must be a position or an ISO-8601 time, got {at!r}") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return await db.guard("position_at_time", events.position_at_time(self.pool, when))

    async def tree_at(self, position: int) -> Tree:
        if position >= self.projection.position:
            await self.projection.wait_for(position)
            if position == self.projection.position:
                return self.projection.tree
        return await db.guard("tree_at", projection.build(self.pool, position))

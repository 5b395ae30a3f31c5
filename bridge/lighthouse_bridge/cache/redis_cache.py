"""Redis speed layer for hot blobs and listings.

Every key is immutable by construction - blobs by sha256, listings by (position, prefix) - so the cache can never
serve stale data, and nothing needs to be invalidated or replayed when Redis comes back after an outage.
Redis being down is never an error for a request: lookups count as bypassed, the bridge reads PostgreSQL, health
reports "degraded", and the background probe switches the cache back on when Redis answers again.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from lighthouse_bridge import metrics

log = logging.getLogger(__name__)


class Cache:
    def __init__(self, url: str | None, *, prefix: str, timeout: float, ttl: int, max_blob_bytes: int) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.max_blob_bytes = max_blob_bytes
        self.enabled = url is not None
        self.available = False
        self.last_error: str | None = None
        self.hits = 0
        self.requests = 0
        self._retry_at = 0.0
        self._client: aioredis.Redis | None = None
        if url is not None:
            self._client = aioredis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry_on_timeout=False,
                health_check_interval=0,
                max_connections=64,
            )

    @property
    def status(self) -> str:
        if not self.enabled:
            return "disabled"
        return "connected" if self.available else "disconnected"

    async def ping(self) -> bool:
        """Probe Redis; flips `available` and logs transitions. Used at start and by the health monitor."""
        if self._client is None:
            return False
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return False
        if not self.available:
            log.info("Redis connected url=%s", _redact(self.url))
        self.available = True
        self.last_error = None
        metrics.REDIS_UP.set(1)
        return True

    def _mark_down(self, exc: BaseException) -> None:
        metrics.CACHE_ERRORS.inc()
        if self.available or self.last_error is None:
            log.warning("Redis unavailable; serving without cache error=%r", exc)
        self.available = False
        self.last_error = repr(exc)
        self._retry_at = time.monotonic() + 1.0
        metrics.REDIS_UP.set(0)

    def _usable(self) -> bool:
        return self._client is not None and (self.available or time.monotonic() >= self._retry_at)

    async def get(self, kind: str, key: str) -> bytes | None:
        if not self._usable():
            return None
        assert self._client is not None
        try:
            value = await self._client.get(f"{self.prefix}{kind}:{key}")
        except (RedisError, OSError) as exc:
            self._mark_down(exc)
            return None
        if not self.available:
            self.available = True
            metrics.REDIS_UP.set(1)
        self.requests += 1
        metrics.CACHE_REQUESTS.labels(kind).inc()
        if value is not None:
            self.hits += 1
            metrics.CACHE_HITS.labels(kind).inc()
        return value if isinstance(value, bytes | None) else value.encode()

    async def set(self, kind: str, key: str, value: bytes) -> None:
        if not self._usable() or (kind == "blob" and len(value) > self.max_blob_bytes):
            return
        assert self._client is not None
        try:
            await self._client.set(f"{self.prefix}{kind}:{key}", value, ex=self.ttl)
        except (RedisError, OSError) as exc:
            self._mark_down(exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def stats(self) -> dict[str, object]:
        rate = self.hits / self.requests if self.requests else None
        return {
            "status": self.status,
            "hits": self.hits,
            "requests": self.requests,
            "hit_rate": rate,
            "error": self.last_error,
        }


def _redact(url: str | None) -> str:
    if not url or "@" not in url:
        return url or ""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"

"""Per-agent rate limits in Redis: a fixed one-minute window per agent, shared by every replica.

INCR + EXPIRE in one pipeline round trip. When Redis is unavailable the limiter fails open (counted and logged):
refusing every agent because the speed layer is down would turn a cache outage into a full outage.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError

from lighthouse_bridge.metrics import REGISTRY

log = logging.getLogger(__name__)
LIMITED = Counter(
    "lighthouse_bridge_rate_limited_total", "Requests refused by the per-agent rate limit", registry=REGISTRY
)
BYPASSED = Counter(
    "lighthouse_bridge_rate_limit_bypassed_total", "Requests let through because Redis was down", registry=REGISTRY
)


class RateLimiter:
    def __init__(self, client: aioredis.Redis | None, prefix: str, per_minute: int) -> None:
        self.client = client
        self.prefix = prefix
        self.per_minute = per_minute
        self._warned = False

    async def hit(self, agent_id: str) -> tuple[bool, int]:
        """(allowed, seconds until the window resets)."""
        if self.client is None or self.per_minute <= 0:
            return True, 0
        now = time.time()
        window = int(now // 60)
        retry_after = max(1, int((window + 1) * 60 - now))
        key = f"{self.prefix}rl:{agent_id}:{window}"
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.expire(key, 120)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            BYPASSED.inc()
            if not self._warned:
                log.warning("Rate limit not enforced: Redis unavailable error=%r", exc)
                self._warned = True
            return True, 0
        self._warned = False
        if int(count) > self.per_minute:
            LIMITED.inc()
            return False, retry_after
        return True, 0

"""Per-agent rate limits in Redis: a fixed one-minute window per agent, shared by every replica.

INCR + EXPIRE in one pipeline round trip. When Redis is unavailable the agents' limiter fails open (counted and
logged): refusing every agent because the speed layer is down would turn a cache outage into a full outage. The
limiter of anonymous callers (the compatibility mode) fails closed instead: without Redis it counts in this
process's memory, and while Redis errors it refuses.
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
    def __init__(self, client: aioredis.Redis | None, prefix: str, per_minute: int, fail_open: bool = True) -> None:
        self.client = client
        self.prefix = prefix
        self.per_minute = per_minute
        self.fail_open = fail_open
        self._warned = False
        self._local: dict[str, tuple[int, int]] = {}  # key -> (window, count), when there is no Redis

    def _hit_locally(self, key: str, window: int) -> int:
        if len(self._local) > 10_000:  # drop windows that ended
            self._local = {k: v for k, v in self._local.items() if v[0] == window}
        w, n = self._local.get(key, (window, 0))
        n = n + 1 if w == window else 1
        self._local[key] = (window, n)
        return n

    async def hit(self, agent_id: str) -> tuple[bool, int]:
        """(allowed, seconds until the window resets)."""
        if self.per_minute <= 0 or (self.client is None and self.fail_open):
            return True, 0
        now = time.time()
        window = int(now // 60)
        retry_after = max(1, int((window + 1) * 60 - now))
        key = f"{self.prefix}rl:{agent_id}:{window}"
        if self.client is None:
            count: int = self._hit_locally(key, window)
        else:
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, 120)
                    count, _ = await pipe.execute()
            except (RedisError, OSError) as exc:
                if not self._warned:
                    log.warning("Rate limit not enforced: Redis unavailable error=%r fail_open=%s", exc, self.fail_open)
                    self._warned = True
                if not self.fail_open:
                    LIMITED.inc()
                    return False, retry_after
                BYPASSED.inc()
                return True, 0
        self._warned = False
        if int(count) > self.per_minute:
            LIMITED.inc()
            return False, retry_after
        return True, 0

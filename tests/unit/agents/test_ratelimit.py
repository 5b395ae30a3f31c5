"""The per-agent limiter fails open without Redis; the anonymous one (compatibility mode) fails closed."""

from __future__ import annotations

from typing import Any

import pytest
from lighthouse_bridge.agents import ratelimit
from lighthouse_bridge.agents.ratelimit import RateLimiter
from redis.exceptions import ConnectionError as RedisConnectionError


class DownRedis:
    """A Redis client whose every pipeline fails, as when the server is unreachable."""

    def pipeline(self, transaction: bool = False) -> Any:
        return self

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def incr(self, key: str) -> None:
        pass

    def expire(self, key: str, seconds: int) -> None:
        pass

    async def execute(self) -> list[int]:
        raise RedisConnectionError("connection refused")


async def test_agents_fail_open_and_anonymous_fails_closed_when_redis_is_down() -> None:
    agents = RateLimiter(DownRedis(), "p:", per_minute=5)  # type: ignore[arg-type]
    anonymous = RateLimiter(DownRedis(), "p:", per_minute=5, fail_open=False)  # type: ignore[arg-type]
    assert (await agents.hit("builder-1"))[0] is True
    allowed, retry_after = await anonymous.hit("anonymous:127.0.0.1")
    assert allowed is False and 1 <= retry_after <= 60


async def test_without_redis_the_anonymous_limit_counts_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_000_000.0]  # inside one one-minute window
    monkeypatch.setattr(ratelimit.time, "time", lambda: now[0])
    limiter = RateLimiter(None, "p:", per_minute=3, fail_open=False)
    assert [(await limiter.hit("anonymous:127.0.0.1"))[0] for _ in range(5)] == [True, True, True, False, False]
    assert (await limiter.hit("anonymous:10.0.0.9"))[0] is True  # per address
    now[0] += 60  # the next window
    assert (await limiter.hit("anonymous:127.0.0.1"))[0] is True
    assert (await RateLimiter(None, "p:", per_minute=3).hit("builder-1"))[0] is True  # agents: no Redis, no limit

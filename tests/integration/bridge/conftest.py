"""Bridge integration fixtures: an in-process app (ASGI, lifespan run) and settings on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.main import create_app


@pytest.fixture
def bridge_env(postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a bridge subprocess on this test's database and Redis prefix."""
    return {
        "LIGHTHOUSE_DATABASE_URL": postgres_url,
        "LIGHTHOUSE_REDIS_URL": redis_url,
        "LIGHTHOUSE_REDIS_PREFIX": redis_prefix,
        "LIGHTHOUSE_LOG_LEVEL": "info",
        "LIGHTHOUSE_HEALTH_INTERVAL": "0.5",
        "LIGHTHOUSE_PROJECTION_POLL_INTERVAL": "0.5",
        "LIGHTHOUSE_AUDIT_LOG": str(tmp_path / "audit.log"),
    }


@pytest.fixture
def settings(postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        health_interval=0.5,
        stream_heartbeat=0.5,
        snapshot_interval=50,
        audit_log=tmp_path / "audit.log",
    )


@asynccontextmanager
async def app_client(settings: Settings, **headers: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bridge", headers=headers, timeout=30
        ) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as c:
        yield c

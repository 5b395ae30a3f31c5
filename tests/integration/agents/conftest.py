"""Agents integration fixtures: an in-process bridge with an admin token, and clients per role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from lighthouse_bridge.core.config import Settings
from lighthouse_bridge.main import create_app

from tests.integration.bridge.support import BridgeProcess

ADMIN_TOKEN = "admin-secret-for-tests"


@pytest.fixture
def bridge_env(postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a bridge subprocess on this test's database and Redis prefix."""
    return {
        "LIGHTHOUSE_DATABASE_URL": postgres_url,
        "LIGHTHOUSE_REDIS_URL": redis_url,
        "LIGHTHOUSE_REDIS_PREFIX": redis_prefix,
        "LIGHTHOUSE_AUDIT_LOG": str(tmp_path / "audit.log"),
        "LIGHTHOUSE_HEALTH_INTERVAL": "0.5",
    }


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text("{}\n")
    return p


@pytest.fixture
def agent_settings(postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path, policy_file: Path) -> Settings:
    return Settings(
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        admin_token=ADMIN_TOKEN,
        audit_log=tmp_path / "audit.log",
        policy_file=policy_file,
        policy_reload_interval=0.2,
        escalation_timeout=30,
        health_interval=0.5,
        rate_limit_per_minute=1000,
    )


class Bridge:
    """One in-process app (lifespan running) and a factory for clients with a given bearer token."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.transport = httpx.ASGITransport(app=app)
        self._clients: list[httpx.AsyncClient] = []

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.AsyncClient(transport=self.transport, base_url="http://bridge", headers=headers, timeout=30)
        self._clients.append(c)
        return c

    @property
    def admin(self) -> httpx.AsyncClient:
        return self.client(ADMIN_TOKEN)

    async def mint(self, agent_id: str, role: str, **extra: Any) -> str:
        r = await self.admin.post("/session/create", json={"agent_id": agent_id, "role": role, **extra})
        assert r.status_code == 200, r.text
        return r.json()["session_token"]

    async def as_role(self, agent_id: str, role: str) -> httpx.AsyncClient:
        return self.client(await self.mint(agent_id, role))

    @property
    def agents(self) -> Any:
        return self.app.state.agents

    async def close(self) -> None:
        for c in self._clients:
            await c.aclose()


@asynccontextmanager
async def start_bridge(settings: Settings) -> AsyncIterator[Bridge]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        b = Bridge(app)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def bridge(agent_settings: Settings) -> AsyncIterator[Bridge]:
    async with start_bridge(agent_settings) as b:
        yield b


async def wait_for(check: Callable[[], Any], within: float = 20.0, interval: float = 0.1, what: str = "") -> Any:
    import asyncio
    import time

    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


def audit_lines(settings: Settings) -> list[dict[str, Any]]:
    import json

    path = settings.audit_log
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@contextmanager
def running_bridge(tmp_path: Path, bridge_env: dict[str, str], **env: str) -> Iterator[BridgeProcess]:
    """`lighthouse-bridge serve` (uvicorn on 127.0.0.1) with the admin token, on this test's database."""
    b = BridgeProcess({**bridge_env, "LIGHTHOUSE_ADMIN_TOKEN": ADMIN_TOKEN, **env}, tmp_path / "bridge.log").start()
    try:
        yield b
    finally:
        b.stop()


def mint(b: BridgeProcess, agent_id: str, role: str) -> str:
    """A token for `agent_id` minted by the admin on a running bridge."""
    with b.client(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        r = c.post("/session/create", json={"agent_id": agent_id, "role": role})
        assert r.status_code == 200, r.text
        return str(r.json()["session_token"])


def pre_tool_use(tool_name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    """A PreToolUse hook input as Claude Code sends it (fields of recent releases included)."""
    return {
        "session_id": "eb5b0174-0555-4601-804e-672d68069c89",
        "prompt_id": "0c7f8e0e-4c41-4e0a-9a1b-2f0d6a1c1f00",
        "transcript_path": "/home/dev/.claude/projects/-home-dev-app/eb5b0174.jsonl",
        "cwd": "/home/dev/app",
        "permission_mode": "default",
        "effort": {"level": "high"},
        "hook_event_name": "PreToolUse",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01ABCDEF",
    }


def bash(command: str) -> dict[str, Any]:
    """Claude Code's PreToolUse input for a Bash command."""
    return pre_tool_use("Bash", {"command": command, "description": "test"})

"""`lighthouse-bridge health` against real bridge subprocesses (real PostgreSQL and Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.bridge.support import BridgeProcess, free_port, wait_until

TOKEN = "health-check-admin-token"


def run_health(url: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LIGHTHOUSE_TOKEN", "LIGHTHOUSE_ADMIN_TOKEN")}
    if token:
        env["LIGHTHOUSE_ADMIN_TOKEN"] = token  # the env fallback the command documents
    return subprocess.run(
        [sys.executable, "-m", "lighthouse_bridge.cli", "health", "--url", url, "--timeout", "10", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def start_bridge(env: dict[str, str], tmp_path: Path) -> BridgeProcess:
    return BridgeProcess({**env, "LIGHTHOUSE_ADMIN_TOKEN": TOKEN}, tmp_path / "bridge.log").start()


def test_healthy_bridge(bridge_env: dict[str, str], tmp_path: Path) -> None:
    bridge = start_bridge(bridge_env, tmp_path)
    try:
        wait_until(
            lambda: httpx.get(bridge.url + "/health", timeout=2).json()["status"] == "healthy",
            what="bridge reports healthy",
        )
        res = run_health(bridge.url, "--json")
        assert res.returncode == 0, res.stdout + res.stderr
        doc = json.loads(res.stdout)
        assert doc["status"] == "healthy"
        names = [c["name"] for c in doc["checks"]]
        assert names == ["bridge", "postgres", "redis", "memory", "error_rate", "cache_hit_rate", "fuse"]
        for check in doc["checks"]:
            assert set(check) == {"name", "status", "detail"}
            assert check["status"] == "healthy", check

        verbose = run_health(bridge.url, "--verbose")
        assert verbose.returncode == 0
        assert len(verbose.stdout.strip().splitlines()) == len(names) + 1

        summary = run_health(bridge.url)
        assert summary.returncode == 0
        assert summary.stdout.strip().startswith("healthy:")

        # A wrong token: the authenticated endpoints refuse, every check still runs and is reported.
        denied = run_health(bridge.url, "--json", token="wrong")
        assert denied.returncode == 2
        checks = {c["name"]: c for c in json.loads(denied.stdout)["checks"]}
        assert len(checks) == len(names)
        assert checks["bridge"]["status"] == "unhealthy" and "HTTP 401" in checks["bridge"]["detail"]
        assert checks["memory"]["status"] == "healthy"  # /metrics is open
    finally:
        bridge.stop()


def test_redis_down_is_degraded(bridge_env: dict[str, str], tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    bridge = start_bridge({**bridge_env, "LIGHTHOUSE_REDIS_URL": f"redis://127.0.0.1:{closed}/0"}, tmp_path)
    try:
        wait_until(
            lambda: httpx.get(bridge.url + "/health", timeout=2).json()["status"] == "degraded",
            what="bridge reports degraded",
        )
        res = run_health(bridge.url, "--json")
        assert res.returncode == 1, res.stdout + res.stderr
        checks = {c["name"]: c["status"] for c in json.loads(res.stdout)["checks"]}
        assert checks["redis"] == "degraded" and checks["postgres"] == "healthy"
    finally:
        bridge.stop()


def test_unreachable_bridge_is_unhealthy() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # a closed port
    res = run_health(url, "--json")
    assert res.returncode == 2, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "unhealthy"
    assert len(doc["checks"]) == 7 and all(c["status"] == "unhealthy" for c in doc["checks"])
    summary = run_health(url)
    assert summary.returncode == 2 and summary.stdout.startswith("unhealthy:")

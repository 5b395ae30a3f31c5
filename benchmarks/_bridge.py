"""Shared helpers of the bridge benchmarks: a fresh database, bridge subprocesses, load generators, RESULTS.md."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"


def services_env() -> dict[str, str]:
    """The exports of `hack/services.sh env` (starting the services if needed)."""
    if "LIGHTHOUSE_DATABASE_URL" not in os.environ:
        subprocess.run([str(REPO / "hack" / "services.sh"), "up"], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([str(REPO / "hack" / "services.sh"), "env"], check=True, capture_output=True, text=True)
    env = {}
    for line in out.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            k, _, v = words[1].partition("=")
            env[k] = v
    return env


@contextlib.contextmanager
def fresh_database(env: dict[str, str]) -> Iterator[str]:
    base = env["LIGHTHOUSE_DATABASE_URL"]
    admin = base.rsplit("/", 1)[0] + "/postgres"
    name = f"bench_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    try:
        yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def bridge(env: dict[str, str], log: Path) -> Iterator[str]:
    """One bridge (`lighthouse-bridge serve`, one uvicorn worker) on 127.0.0.1; yields its base URL."""
    port = free_port()
    full = {
        **os.environ,
        **env,
        "LIGHTHOUSE_HOST": "127.0.0.1",
        "LIGHTHOUSE_PORT": str(port),
        "LIGHTHOUSE_LOG_LEVEL": "warning",
    }
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lighthouse_bridge.cli", "serve"],
            env=full,
            stdout=fh,
            stderr=fh,
            cwd=REPO,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bridge exited: {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("bridge did not become ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def ensure_wrk() -> str | None:
    """wrk via the project's apt helper; None when it cannot be installed (then only the paced generator runs)."""
    proc = subprocess.run(
        ["bash", "-c", f"source {REPO}/hack/lib/common.sh && apt_install wrk && command -v wrk"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip().splitlines()[-1] if proc.returncode == 0 and proc.stdout.strip() else None


def wrk(binary: str, url: str, seconds: int = 10, connections: int = 16) -> dict[str, float]:
    """Closed-loop maximum throughput: requests/s and latency percentiles (ms) from `wrk --latency`."""
    out = subprocess.run(
        [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m is not None, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "non2xx": float(non2xx.group(1)) if non2xx else 0}


async def _paced(host: str, port: int, path: str, rate: float, seconds: float, conns: int) -> dict[str, float]:
    """Open-loop load at a fixed rate; latency is measured from the *scheduled* send time (no coordinated
    omission), so a stalled server shows up in the percentiles instead of silently lowering the rate."""
    interval = conns / rate
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    end = start + seconds
    latencies: list[float] = []
    errors = 0

    async def worker(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        t = start + k * interval / conns
        while t < end:
            delay = t - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"content-length: (\d+)", head, re.I)
            if m:
                await reader.readexactly(int(m.group(1)))
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            latencies.append(loop.time() - t)
            t += interval
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(conns)))
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "rate": rate,
        "achieved_rps": len(latencies) / seconds,
        "p50_ms": q(0.50),
        "p99_ms": q(0.99),
        "max_ms": latencies[-1] * 1000,
        "requests": len(latencies),
        "errors": errors,
    }


def paced(url: str, path: str, rate: float = 1000, seconds: float = 10, conns: int = 10) -> dict[str, float]:
    host, port = url.removeprefix("http://").split(":")
    return asyncio.run(_paced(host, int(port), path, rate, seconds, conns))


def agents_env(services: dict[str, str], dsn: str, tmp: str, name: str, admin: str) -> dict[str, str]:
    """A bridge for the agents' benchmarks: the admin token, no rate limit, no built-in experts."""
    return {
        "LIGHTHOUSE_DATABASE_URL": dsn,
        "LIGHTHOUSE_REDIS_URL": services["LIGHTHOUSE_REDIS_URL"],
        "LIGHTHOUSE_REDIS_PREFIX": f"bench-{name}-{time.time_ns()}:",
        "LIGHTHOUSE_ADMIN_TOKEN": admin,
        "LIGHTHOUSE_AUDIT_LOG": f"{tmp}/audit.log",
        "LIGHTHOUSE_RATE_LIMIT_PER_MINUTE": "0",
        "LIGHTHOUSE_EXPERTS": "false",
    }


def mint(url: str, admin: str, agent_id: str, role: str) -> str:
    r = httpx.post(
        url + "/session/create", json={"agent_id": agent_id, "role": role}, headers={"Authorization": f"Bearer {admin}"}
    )
    r.raise_for_status()
    return str(r.json()["session_token"])


def append_results(title: str, command: str, lines: list[str]) -> None:
    text = [
        f"## {title} ({datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')})",
        "",
        f"Command: `{command}`",
        f"Machine: {os.cpu_count()} CPUs (shared with other work), Python {sys.version.split()[0]}",
        "",
        *lines,
        "",
    ]
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nFigures appended by the scripts in benchmarks/.\n\n")
    with RESULTS.open("a") as fh:
        fh.write("\n".join(text) + "\n")
    print("\n".join(text))

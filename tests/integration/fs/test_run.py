"""`lighthouse-bridge run`, the container entrypoint: API + FUSE supervised together, against real PostgreSQL/Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.fs.harness import FUSE_SKIP_REASON, REPO, free_port, is_mounted, wait_until


def start_run(tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, mode: str,
              token: str | None = None) -> tuple[subprocess.Popen[bytes], str, Path, Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    status, mnt = tmp_path / "status.json", tmp_path / "mnt"
    env = dict(os.environ, LIGHTHOUSE_DATABASE_URL=postgres_url, LIGHTHOUSE_REDIS_URL=redis_url,
               LIGHTHOUSE_REDIS_PREFIX=redis_prefix, LIGHTHOUSE_HOST="127.0.0.1", LIGHTHOUSE_PORT=str(port),
               LIGHTHOUSE_FUSE_STATUS_FILE=str(status), PYTHONPATH=str(REPO))
    env.pop("LIGHTHOUSE_ADMIN_TOKEN", None)
    env.pop("LIGHTHOUSE_TOKEN", None)
    if token:
        env["LIGHTHOUSE_ADMIN_TOKEN"] = token  # as in the pod: the API requires it, FUSE uses it too
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "lighthouse_bridge.cli", "run", "--fuse-mode", mode,
                             "--mountpoint", str(mnt), "--bridge-url", url],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    return proc, url, status, mnt


def readyz(url: str) -> dict[str, object] | None:
    r = httpx.get(f"{url}/readyz", timeout=5)
    return dict(r.json()) if r.status_code == 200 else None


def test_run_without_fuse_keeps_the_api_up(tmp_path: Path, postgres_url: str, redis_url: str,
                                           redis_prefix: str) -> None:
    proc, url, status, mnt = start_run(tmp_path, postgres_url, redis_url, redis_prefix, "disabled")
    try:
        body = wait_until(lambda: readyz(url), 60, 0.2, "the API behind `run`")
        assert body["checks"]["fuse"]["status"] == "disabled"  # type: ignore[index]
        doc = json.loads(status.read_text())
        assert doc["mounted"] is False and "disabled" in doc["error"]
        assert not is_mounted(mnt)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/livez", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_mounts_and_sigterm_stops_both(tmp_path: Path, postgres_url: str, redis_url: str,
                                           redis_prefix: str) -> None:
    if FUSE_SKIP_REASON:
        pytest.skip(FUSE_SKIP_REASON)
    proc, url, status, mnt = start_run(tmp_path, postgres_url, redis_url, redis_prefix, "enabled", token="s3cret")
    try:
        wait_until(lambda: json.loads(status.read_text()).get("mounted") is True, 60, 0.1, "the mount behind `run`")
        body = wait_until(lambda: readyz(url), 30, 0.2, "readiness with the mount")
        assert body["checks"]["fuse"]["status"] == "mounted"  # type: ignore[index]
        assert httpx.get(f"{url}/shadow/list", timeout=10).status_code == 401  # the API does require the token
        httpx.post(f"{url}/shadow/update", json={"operation": "create", "path": "x.txt", "content": "x"},
                   headers={"Authorization": "Bearer s3cret"}, timeout=10).raise_for_status()
        wait_until(lambda: (mnt / "current/x.txt").read_bytes() == b"x", 5, what="file in the supervised mount")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not is_mounted(mnt)
        assert json.loads(status.read_text())["mounted"] is False
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/livez", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)


def test_run_restarts_a_crashed_fuse_process(tmp_path: Path, postgres_url: str, redis_url: str,
                                             redis_prefix: str) -> None:
    if FUSE_SKIP_REASON:
        pytest.skip(FUSE_SKIP_REASON)
    proc, _, status, mnt = start_run(tmp_path, postgres_url, redis_url, redis_prefix, "enabled")
    try:
        wait_until(lambda: json.loads(status.read_text()).get("mounted") is True, 60, 0.1, "the mount behind `run`")
        first = json.loads((mnt / "debug/health.json").read_text())["pid"]
        os.kill(first, signal.SIGKILL)  # leaves a dead mount behind (ENOTCONN)
        wait_until(lambda: json.loads(status.read_text()).get("mounted") is False, 30, 0.1, "the crash to be seen")

        def remounted() -> bool:
            return json.loads((mnt / "debug/health.json").read_text())["pid"] != first

        wait_until(remounted, 60, 0.2, "a new FUSE process on the recovered mount point")
        assert json.loads(status.read_text())["mounted"] is True
        assert (tmp_path / "run.log").read_text().count("Recovering stale mount") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not is_mounted(mnt)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if is_mounted(mnt):
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)], check=False)

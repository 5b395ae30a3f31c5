"""Processes for the FUSE tests and benchmark: a real bridge (`lighthouse-bridge serve`) and a real mount.

Both are subprocesses on 127.0.0.1, started and stopped by their own pid. The mount point is always a temporary
directory (never /mnt).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
FUSE_SKIP_REASON = (
    "/dev/fuse is absent (or fusermount3 is missing): FUSE integration tests need the device"
    if not os.path.exists("/dev/fuse") or shutil.which("fusermount3") is None
    else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.02, what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (OSError, httpx.HTTPError, ValueError, KeyError) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})")
        time.sleep(interval)


def bridge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lighthouse_bridge.cli", *args]


class Bridge:
    """`lighthouse-bridge serve` on a free loopback port, plus a small client for the tests."""

    def __init__(self, database_url: str, redis_url: str | None, log_path: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, LIGHTHOUSE_DATABASE_URL=database_url, LIGHTHOUSE_HOST="127.0.0.1",
                   LIGHTHOUSE_PORT=str(self.port), LIGHTHOUSE_FUSE_MODE="disabled", PYTHONPATH=str(REPO))
        env.pop("LIGHTHOUSE_ADMIN_TOKEN", None)
        if redis_url:
            env["LIGHTHOUSE_REDIS_URL"] = redis_url
        env.update(settings)
        self.log_path = log_path
        self._env = env
        self._log = open(log_path, "wb")
        self.http = httpx.Client(base_url=self.url, timeout=30)
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(bridge_cmd("serve"), env=self._env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=REPO)
        try:
            wait_until(self._ready, 60, 0.1, "the bridge to answer /readyz")
        except AssertionError:
            self.stop()
            raise AssertionError(f"bridge did not start; log:\n{self.log_path.read_text()[-3000:]}") from None

    def crash_and_restart(self) -> None:
        """SIGKILL the API process and start it again on the same port and database."""
        self.proc.kill()
        self.proc.wait(20)
        self._start()

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"bridge exited with {self.proc.returncode}")
        return self.http.get("/readyz").status_code == 200

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()
        self._log.close()

    # -- API helpers
    def update(self, operation: str, path: str, content: bytes | None = None, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"operation": operation, "path": path, **extra}
        if content is not None:
            body.update(content=base64.b64encode(content).decode(), encoding="base64")
        r = self.http.post("/shadow/update", json=body)
        r.raise_for_status()
        return dict(r.json())

    def put(self, path: str, content: bytes) -> dict[str, Any]:
        exists = self.http.get(f"/shadow/read/{path}").status_code == 200
        return self.update("modify" if exists else "create", path, content)

    def batch(self, files: dict[str, bytes], chunk: int = 2000) -> int:
        """Create many files quickly: PUT each blob, then atomic POST /events batches. Returns the last position."""
        import hashlib

        shas = {}
        for content in set(files.values()):
            sha = hashlib.sha256(content).hexdigest()
            self.http.put(f"/blobs/{sha}", content=content,
                          headers={"content-type": "application/octet-stream"}).raise_for_status()
            shas[content] = sha
        position = 0
        items = list(files.items())
        for i in range(0, len(items), chunk):
            events = [{"event_type": "file_created", "aggregate_id": p, "aggregate_type": "file",
                       "data": {"path": p, "sha256": shas[c]}, "metadata": {}} for p, c in items[i : i + chunk]]
            r = self.http.post("/events", json={"events": events})
            r.raise_for_status()
            position = int(r.json()["results"][-1]["position"])
        return position

    def listing(self, at: str | int | None = None) -> dict[str, Any]:
        r = self.http.get("/shadow/list", params={} if at is None else {"at": str(at)})
        r.raise_for_status()
        return dict(r.json())

    def read(self, path: str, at: str | int | None = None) -> bytes:
        r = self.http.get(f"/shadow/read/{path}", params={} if at is None else {"at": str(at)})
        r.raise_for_status()
        body = r.json()
        return base64.b64decode(body["content"]) if body["encoding"] == "base64" else body["content"].encode()

    def export(self, dest: Path, at: str | int | None = None) -> int:
        """Write the tree at `at` into `dest` (the reference for diff -r); returns its position."""
        listing = self.listing(at)
        for f in listing["files"]:
            target = dest / f["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            r = self.http.get(f"/blobs/{f['sha256']}")
            r.raise_for_status()
            target.write_bytes(r.content)
        return int(listing["position"])


class Mount:
    """`lighthouse-bridge fuse` on a temporary mount point."""

    def __init__(self, bridge_url: str, root: Path, writable: bool = False, mountpoint: Path | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.path = mountpoint or root / "mnt"
        self.status_file = root / "fuse-status.json"
        self.log_path = root / f"fuse-{time.monotonic_ns()}.log"
        args = ["fuse", "--mountpoint", str(self.path), "--bridge-url", bridge_url]
        if writable:
            args.append("--writable")
        env = dict(os.environ, LIGHTHOUSE_FUSE_STATUS_FILE=str(self.status_file), PYTHONPATH=str(REPO))
        env.update(extra_env or {})
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(bridge_cmd(*args), env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=REPO)
        try:
            wait_until(self._mounted, 60, 0.05, "the FUSE mount")
        except AssertionError:
            self.stop()
            raise AssertionError(f"mount did not come up; log:\n{self.log()[-3000:]}") from None

    def _mounted(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"fuse process exited with {self.proc.returncode}: {self.log()[-2000:]}")
        return self.status().get("mounted") is True and is_mounted(self.path)

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            return {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if is_mounted(self.path):  # a test that killed the process leaves the mount for us to clean up
            subprocess.run(["fusermount3", "-u", "-z", str(self.path)], check=False, capture_output=True)
        self._log.close()
        return self.proc.returncode


def is_mounted(path: Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


@contextlib.contextmanager
def mounted(bridge_url: str, root: Path, **kw: Any) -> Iterator[Mount]:
    m = Mount(bridge_url, root, **kw)
    try:
        yield m
    finally:
        m.stop()

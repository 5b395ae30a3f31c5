"""Helpers for the bridge integration tests: bridge subprocesses, private Redis and PostgreSQL servers."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    check: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last!r})")


@dataclass
class BridgeProcess:
    """`lighthouse-bridge serve` as a real uvicorn subprocess on 127.0.0.1:<ephemeral port>."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout: float = 60) -> BridgeProcess:
        env = {**os.environ, **self.env, "LIGHTHOUSE_HOST": "127.0.0.1", "LIGHTHOUSE_PORT": str(self.port)}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lighthouse_bridge.cli", "serve"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO,
            start_new_session=True,
        )
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited rc={self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            return httpx.get(self.url + "/livez", timeout=1).status_code == 200

        wait_until(ready, timeout, what=f"bridge on {self.url}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)  # type: ignore[arg-type]


@contextlib.contextmanager
def bridges(tmp_path: Path, env: dict[str, str], n: int = 1, start: bool = True) -> Iterator[list[BridgeProcess]]:
    procs = [BridgeProcess(env, tmp_path / f"bridge-{i}.log") for i in range(n)]
    try:
        if start:
            for p in procs:
                p.start(wait_ready=False)
            for p in procs:
                p.wait_ready()
        yield procs
    finally:
        for p in procs:
            p.stop()


# ---------------------------------------------------------------- private Redis
@dataclass
class RedisServer:
    """A private redis-server (never the shared one) that a test may stop and start."""

    dir: Path
    port: int = field(default_factory=free_port)
    password: str = "private"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--requirepass",
                self.password,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self._ping, 15, what="private redis")

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
            return b"PONG" in s.recv(100) or b"PONG" in s.recv(100)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# ---------------------------------------------------------------- private PostgreSQL
def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not candidates:
        raise RuntimeError("PostgreSQL binaries not found under /usr/lib/postgresql")
    return candidates[-1]


def _pg_user() -> str | None:
    """PostgreSQL refuses to run as root; like hack/services.sh, run it as an unprivileged user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "lighthouse"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "lighthouse"], check=True
    )
    return "lighthouse"


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster (initdb in a temp dir) that a test may stop and restart."""

    dir: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql://lighthouse:lighthouse@127.0.0.1:{self.port}/lighthouse"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        user = _pg_user()
        cmd = list(args) if user is None else ["runuser", "-u", user, "--", *args]
        return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        user = _pg_user()
        self.dir.mkdir(parents=True, exist_ok=True)
        data, sock = self.dir / "data", self.dir / "sock"
        sock.mkdir(exist_ok=True)
        pwfile = self.dir / "pw"
        pwfile.write_text("lighthouse\n")
        if user is not None:  # self.dir must sit under world-traversable parents (use tempfile.mkdtemp in /tmp)
            for p in (self.dir, sock, pwfile):
                shutil.chown(p, user)
            os.chmod(self.dir, 0o700)
        self._run(
            str(_pg_bin() / "initdb"),
            "-D",
            str(data),
            "-U",
            "lighthouse",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        )
        with open(data / "postgresql.conf", "a") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{sock}'\n"
                "fsync = on\nmax_connections = 50\n"
            )
        self.start()
        self._run(str(_pg_bin() / "createdb"), "-h", str(sock), "-p", str(self.port), "-U", "lighthouse", "lighthouse")

    def start(self) -> None:
        self._run(
            str(_pg_bin() / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(_pg_bin() / "pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "-t", "60", "stop", check=False
        )

"""podman helpers for the e2e tier: images built by hack/images.sh, containers run with runc on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_SH = REPO_ROOT / "hack" / "images.sh"
STATE = Path(os.environ.get("LIGHTHOUSE_STATE", REPO_ROOT / ".state"))
IMAGES_DIR = STATE / "images"

# crun fails on this cgroup v1 hybrid host; rlimits above the current hard limit are denied.
RUN_FLAGS = ["--runtime", "/usr/sbin/runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000"]


@dataclass(frozen=True)
class Images:
    operator: str
    bridge: str
    operator_archive: Path
    bridge_archive: Path
    fuse_plugin: str = ""


def build_images() -> Images:
    """Runs hack/images.sh (cached by its inputs: a second run only checks stamps) and returns the references."""
    subprocess.run([str(IMAGES_SH), "all"], check=True, timeout=1800)
    refs = subprocess.run([str(IMAGES_SH), "refs"], check=True, capture_output=True, text=True).stdout.split()
    operator, bridge, fuse_plugin = refs
    return Images(operator, bridge, IMAGES_DIR / "operator.tar", IMAGES_DIR / "bridge.tar", fuse_plugin)


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    podman_bin = shutil.which("podman") or "podman"
    proc = subprocess.run([podman_bin, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_once(image: str, *args: str, flags: Sequence[str] = (), check: bool = True) -> subprocess.CompletedProcess[str]:
    """`podman run --rm` a short command and return its output."""
    return podman("run", "--rm", *RUN_FLAGS, *flags, image, *args, check=check)


def inspect_image(image: str) -> dict:
    return json.loads(podman("image", "inspect", image).stdout)[0]


@dataclass
class Container:
    name: str

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def exec(self, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        flags = ["--user", user] if user else []
        return podman("exec", *flags, self.name, *args, check=check)

    def running(self) -> bool:
        proc = podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return proc.stdout.strip() == "true"

    def stats_rss_bytes(self) -> int:
        """Resident memory of every process in the container (from /proc, independent of cgroup accounting)."""
        out = self.exec("sh", "-c", "cat /proc/[0-9]*/status 2>/dev/null | awk '/^VmRSS:/ {s+=$2} END {print s}'")
        return int(out.stdout.strip() or 0) * 1024


@contextmanager
def running_container(
    image: str, *args: str, flags: Sequence[str] = (), name_prefix: str = "lighthouse-e2e"
) -> Iterator[Container]:
    """Starts a detached container and always removes it, printing its logs when the test failed inside."""
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    podman("run", "--detach", "--name", name, *RUN_FLAGS, *flags, image, *args)
    container = Container(name)
    try:
        yield container
    except BaseException:
        print(f"--- logs of {name} ---\n{container.logs()}")
        raise
    finally:
        podman("rm", "--force", "--time", "5", name, check=False, timeout=60)


def wait_for(predicate: Callable[[], object], *, timeout: float, interval: float = 0.5, what: str = "condition"):
    """Polls until predicate returns a truthy value; bounded, so a broken component fails the test, not hangs it."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the component is still starting: keep polling until the deadline
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last error: {last_error!r}")

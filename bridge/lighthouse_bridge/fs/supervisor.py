"""`lighthouse-bridge run`: the container entrypoint. Supervises the API process and the FUSE process.

The API is the container's reason to exist: if it dies, `run` exits with its code (the kubelet restarts the pod).
The FUSE process is optional: without /dev/fuse, or with LIGHTHOUSE_FUSE_MODE=disabled, it is not started and the
status file says why; if it dies it is restarted with backoff. SIGTERM stops FUSE first (a clean unmount), then the API.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from .status import DEFAULT_STATUS_FILE, MountConfig, fusermount_unmount, usable_status_file, write_status

log = logging.getLogger(__name__)
FUSE_STOP_TIMEOUT = 10.0
API_STOP_TIMEOUT = 25.0


def bridge_command(*args: str) -> list[str]:
    exe = shutil.which("lighthouse-bridge", path=os.path.dirname(sys.executable)) or shutil.which("lighthouse-bridge")
    if exe:
        return [exe, *args]
    code = "import sys; from lighthouse_bridge.cli import main; sys.argv[0] = 'lighthouse-bridge'; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def fuse_unavailable_reason(mode: str, fd_socket: str | None = None) -> str | None:
    if mode == "disabled":
        return "FUSE disabled (LIGHTHOUSE_FUSE_MODE=disabled)"
    if fd_socket:
        # The node plugin publishes the socket before the containers start: none means no plugin volume here.
        if not os.path.exists(fd_socket):
            return f"no FUSE node plugin socket at {fd_socket} (the pod needs the fuse.lighthouse.dev CSI volume)"
        return None
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is not available (the pod needs the device and SYS_ADMIN)"
    return None


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float, what: str) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("Process did not stop in time, killing what=%s pid=%d timeout=%.0fs", what, proc.pid, timeout)
        proc.kill()
        return proc.wait()


def supervise(cfg: MountConfig, api_args: Sequence[str] = (), mode: str | None = None) -> int:
    mode = (mode or os.environ.get("LIGHTHOUSE_FUSE_MODE") or "auto").lower()
    cfg.status_file = usable_status_file(cfg.status_file or DEFAULT_STATUS_FILE)  # both children get this path
    env = dict(os.environ, LIGHTHOUSE_FUSE_STATUS_FILE=cfg.status_file, LIGHTHOUSE_FUSE_MODE=mode)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        log.info("Stopping on signal signal=%s", signal.Signals(signum).name)
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)

    reason = fuse_unavailable_reason(mode, cfg.fd_socket)
    write_status(cfg.status_file, False, cfg.mountpoint, reason or "starting")
    api = subprocess.Popen(bridge_command("serve", *api_args), env=env)
    log.info("Started API process pid=%d", api.pid)
    fuse: subprocess.Popen[bytes] | None = None
    fuse_args = ["fuse", "--mountpoint", cfg.mountpoint, "--bridge-url", cfg.bridge_url]
    if cfg.writable:
        fuse_args.append("--writable")
    if reason:
        log.warning("Shadow filesystem unavailable reason=%r (the API keeps running)", reason)
    backoff, next_start, fuse_started = 1.0, 0.0, 0.0
    code = 0
    while not stopping:
        if api.poll() is not None:
            code = api.returncode or 1
            log.error("API process exited pid=%d code=%s", api.pid, api.returncode)
            break
        if not reason and (fuse is None or fuse.poll() is not None) and time.monotonic() >= next_start:
            if fuse is not None:
                if time.monotonic() - fuse_started > 60:
                    backoff = 1.0  # it ran fine for a while: this is not a crash loop
                log.warning("FUSE process exited pid=%d code=%s restart_in=%.0fs", fuse.pid, fuse.returncode, backoff)
                write_status(cfg.status_file, False, cfg.mountpoint, f"FUSE process exited with {fuse.returncode}")
                next_start = time.monotonic() + backoff
                backoff = min(backoff * 2, 30.0)
                fuse = None
                continue
            fuse = subprocess.Popen(bridge_command(*fuse_args), env=env)
            fuse_started = time.monotonic()
            log.info("Started FUSE process pid=%d mountpoint=%s", fuse.pid, cfg.mountpoint)
        time.sleep(0.2)
    _stop(fuse, FUSE_STOP_TIMEOUT, "fuse")
    if fuse is not None and not cfg.fd_socket and os.path.ismount(cfg.mountpoint) and fuse.returncode not in (0, None):
        # Killed mid-way: do not leave a dead mount behind. (With the node plugin, the plugin owns the mount.)
        fusermount_unmount(cfg.mountpoint)
    write_status(cfg.status_file, False, cfg.mountpoint, reason)
    api_code = _stop(api, API_STOP_TIMEOUT, "api")
    log.info("Stopped processes api_code=%s", api_code)
    return code

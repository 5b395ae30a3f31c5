"""Restart the local cluster's kube-apiserver (hack/cluster.sh runs it as a plain process): the same command line,
working directory, environment and log file, its new pid in the pid file, so `hack/cluster.sh down` still finds it.
For tests of what a client does while its API server goes away and comes back (a restarted API server has a fresh
watch cache: a watch resumed from an older resourceVersion gets 410 Gone)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def restart_apiserver(
    kubeconfig: Path, ready: Callable[[], bool], while_down: Callable[[], None] | None = None, timeout: float = 120
) -> None:
    """Stop the API server of the cluster whose kubeconfig this is, run `while_down()`, start it again and wait until
    `ready()` (e.g. a kubectl get --raw /readyz) is true."""
    cluster_dir = kubeconfig.parent
    pid_file = cluster_dir / "pids" / "kube-apiserver.pid"
    pid = int(pid_file.read_text().strip())
    proc_dir = Path(f"/proc/{pid}")
    cmd = [a.decode() for a in (proc_dir / "cmdline").read_bytes().split(b"\0") if a]
    cwd = os.readlink(proc_dir / "cwd")
    env = dict(kv.decode().split("=", 1) for kv in (proc_dir / "environ").read_bytes().split(b"\0") if b"=" in kv)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    if while_down is not None:
        while_down()
    with (cluster_dir / "logs" / "kube-apiserver.log").open("ab") as log:
        started = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    pid_file.write_text(f"{started.pid}\n")
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except Exception:  # not listening yet
            pass
        if started.poll() is not None:
            raise RuntimeError(f"kube-apiserver exited with {started.returncode} (log: {cluster_dir}/logs)")
        if time.monotonic() > deadline:
            raise TimeoutError(f"kube-apiserver not ready {timeout:.0f} s after its restart")
        time.sleep(0.5)


__all__ = ["restart_apiserver"]

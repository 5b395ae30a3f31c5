"""Run a command and measure its peak resident memory (VmHWM) and that of its descendants.

Why not ``wait4()``'s ``ru_maxrss``: it also counts the parent's pages the child held between fork and exec, so a
child of a 100 MB pytest process "peaks" at 100 MB before it runs a single line. VmHWM belongs to the address space
created by exec, so it measures the program alone. It only grows, so polling it loses at most the last interval.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import dataclass

import psutil

POLL = 0.05


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int            # bytes, the command's own process
    children_peak_rss: int   # bytes, the largest descendant (e.g. pg_dump)
    seconds: float


def vm_hwm(pid: int) -> int:
    """Peak RSS in bytes of a live process, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def run_measured(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 900) -> Measured:
    t0 = time.perf_counter()
    # Files, not pipes: the output cannot fill a pipe while this thread is polling.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err)
        me = psutil.Process(proc.pid)
        peak = children = 0
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            # A zombie has no VmHWM: read before reaping.
            peak = max(peak, vm_hwm(proc.pid))
            try:
                for child in me.children(recursive=True):
                    children = max(children, vm_hwm(child.pid))
            except psutil.Error:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                break
            time.sleep(POLL)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return Measured(proc.returncode, out.read(), err.read(), peak, children, seconds)



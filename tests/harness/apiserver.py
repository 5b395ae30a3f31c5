"""A second kube-apiserver on the local cluster's etcd (hack/cluster.sh runs the first as a plain process), for one
client under test: stopping and restarting it disturbs no other test, since everything else talks to the first.

A restarted API server starts with a fresh watch cache, so a watch resumed from an older resourceVersion gets 410
Gone: what a client does then (relist, and notice what changed while it could not watch) is what the tests look at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import yaml

# Flags of the first API server that a second one must not share: its port, its audit log, and the `kubernetes`
# Service's endpoints (a second server must not advertise itself there).
REPLACED = ("--secure-port", "--audit-log-path", "--endpoint-reconciler-type")
# A server starting beside a busy first one can lose a race on a Service's IPAddress object (the first created it
# between the second's check and create) and then exits: its start-up IP repair must succeed once. Kubernetes' own
# start-up race, not the client under test: start it again, a bounded number of times.
IP_REPAIR_RACE = b'PostStartHook "start-service-ip-repair-controllers" failed'
STARTS = 3


class SecondApiserver:
    def __init__(self, kubeconfig: Path, port: int, workdir: Path):
        self.main_kubeconfig, self.port, self.workdir = kubeconfig, port, workdir
        self.kubeconfig = workdir / "apiserver-kubeconfig.yaml"
        self.log = workdir / "apiserver.log"
        self.proc: subprocess.Popen[bytes] | None = None
        pid = int((kubeconfig.parent / "pids" / "kube-apiserver.pid").read_text().strip())
        proc_dir = Path(f"/proc/{pid}")
        args = [a.decode() for a in (proc_dir / "cmdline").read_bytes().split(b"\0") if a]
        self.cmd = [a for a in args if not a.startswith(REPLACED)] + [
            f"--secure-port={port}",
            f"--audit-log-path={workdir / 'audit.log'}",
            "--endpoint-reconciler-type=none",
        ]
        self.cwd = os.readlink(proc_dir / "cwd")
        self.env = dict(
            kv.decode().split("=", 1) for kv in (proc_dir / "environ").read_bytes().split(b"\0") if b"=" in kv
        )
        config = yaml.safe_load(kubeconfig.read_text())
        for c in config["clusters"]:
            server = c["cluster"]["server"]
            c["cluster"]["server"] = f"{server.rsplit(':', 1)[0]}:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def start(self, ready: Callable[[], bool], timeout: float = 120) -> None:
        """Start it and wait for `ready` (each start within `timeout`)."""
        for attempt in range(1, STARTS + 1):
            deadline = time.monotonic() + timeout
            logged = self.log.stat().st_size if self.log.exists() else 0
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
            while True:
                try:
                    if ready():
                        return
                except Exception:  # not listening yet
                    pass
                if self.proc.poll() is not None:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the second kube-apiserver was not ready within {timeout:.0f} s ({self.log})")
                time.sleep(0.5)
            with self.log.open("rb") as log:
                log.seek(logged)
                raced = IP_REPAIR_RACE in log.read()
            if not raced or attempt == STARTS:
                break
        raise RuntimeError(f"the second kube-apiserver exited with {self.proc.returncode} (log: {self.log})")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, ready: Callable[[], bool], while_down: Callable[[], None] | None = None) -> None:
        self.stop()
        if while_down is not None:
            while_down()
        self.start(ready)


__all__ = ["SecondApiserver"]

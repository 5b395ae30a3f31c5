"""docs/runbook.md cannot rot: every block marked `bash runnable` runs, in order, as a person would paste it, against a
real bridge on the real node (with backups to this checkout's S3 server), with only NS and NAME set and the user's
tools on PATH (kubectl, and the kubectl-lighthouse plugin installed with the package). A block that fails names its
section and line.

The plugin's commands that need running pods (connect, token, logs, psql, health) run here too, in the runbook's
blocks and in the assertions below."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.runbook import blocks

from .conftest import REPO, Bridge, Kubectl, RealNode, http, node_namespace, node_operator, port_forward

YEARLY = "0 0 1 1 *"  # only on-demand backups run during the test


@pytest.fixture
def bridge(real_node: RealNode, crd: Path, s3_bucket: str, tmp_path: Path) -> Iterator[Bridge]:
    with node_namespace(real_node.cluster, "runbook") as ns, node_operator(real_node, [ns], tmp_path / "op.log"):
        k = Kubectl(real_node.cluster, ns)
        k("create", "secret", "generic", "s3", "-n", ns, "--from-literal=AWS_ACCESS_KEY_ID=lighthouse",
          "--from-literal=AWS_SECRET_ACCESS_KEY=lighthouse-secret")  # fmt: skip
        s3 = {"bucket": s3_bucket, "prefix": "runbook", "endpoint": real_node.s3_endpoint, "region": "us-east-1",
              "pathStyle": True, "credentialsSecret": "s3"}  # fmt: skip
        b = Bridge(k, "demo")
        b.apply({"backup": {"schedule": YEARLY, "s3": s3}})
        b.wait_ready()
        b.wait_fuse()  # fully up, as the runbook's health checks expect: the mount follows Ready
        wait_healthy(b)
        yield b


def wait_healthy(b: Bridge, timeout: float = 300) -> None:
    """The runbook's health check passes: Redis too (a new pod's first connections can be refused while kube-router
    admits it to the stores' NetworkPolicies; the bridge reconnects with a back-off)."""
    deadline = time.monotonic() + timeout
    while True:
        health = plugin(b, "health", b.name)
        if health.returncode == 0:
            return
        assert time.monotonic() < deadline, f"bridge not healthy after {timeout}s:\n{health.stdout}{health.stderr}"
        time.sleep(5)


def user_env(b: Bridge) -> dict[str, str]:
    """A user's shell: their kubeconfig, kubectl and the plugin on PATH, and the two variables the runbook sets."""
    env = b.k.cluster.env()
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(NS=b.ns, NAME=b.name)
    return env


def plugin(b: Bridge, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl lighthouse COMMAND -n NS ARGS...` (the namespace before ARGS: psql passes what follows `--` on)."""
    return subprocess.run(["kubectl", "lighthouse", command, "-n", b.ns, *args], env=user_env(b), capture_output=True,
                          text=True, timeout=600)  # fmt: skip


# 13 blocks, a backup and a restore drill among them: about 4 minutes alone, over 10 beside a whole `make test`.
@pytest.mark.timeout(1800)
def test_runbook_blocks_run_against_a_real_bridge(bridge: Bridge) -> None:
    # Something to count and to restore: a few files written through the API.
    with port_forward(bridge.k.cluster, bridge.ns, f"svc/{bridge.name}-bridge", 8765) as port:
        for i in range(3):
            body = {"operation": "create", "path": f"rb/f{i}.txt", "content": f"{i} {uuid.uuid4()}\n"}
            status, out = http(f"http://127.0.0.1:{port}/shadow/update", bridge.token(), body)
            assert status == 200, out
    runnable = [b for b in blocks() if b.runnable]
    assert len(runnable) >= 12
    for block in runnable:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], env=user_env(bridge), cwd=REPO,
                              capture_output=True, text=True, timeout=1800)  # fmt: skip
        assert proc.returncode == 0, (
            f"docs/runbook.md line {block.line} ({block.section}) exited {proc.returncode}:\n{block.code}\n"
            f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}\n{bridge.describe()}"
        )
    # The drill's bridge is gone again, and the live one still serves.
    assert bridge.k.get("lhb", f"{bridge.name}-drill") is None
    bridge.wait_ready()


def test_plugin_commands_that_need_running_pods(bridge: Bridge, tmp_path: Path) -> None:
    # token: minted through a port-forward with the admin Secret; the bridge accepts it.
    minted = plugin(bridge, "token", bridge.name, "--agent", "node-dev", "-o", "json")
    assert minted.returncode == 0, minted.stderr
    token: dict[str, Any] = json.loads(minted.stdout)
    assert token["agent_id"] == "node-dev" and token["role"] == "builder"
    # connect: the environment a hook needs, used by a command it runs; the token works and names its agent.
    script = (
        "import json, os, urllib.request as u\n"
        "token = os.environ['LIGHTHOUSE_TOKEN']\n"
        "r = u.Request(os.environ['LIGHTHOUSE_BRIDGE_URL'] + '/session/validate',\n"
        "              data=json.dumps({'session_token': token}).encode(),\n"
        "              headers={'Content-Type': 'application/json', 'Authorization': 'Bearer ' + token})\n"
        "print(u.urlopen(r).read().decode())\n"
    )
    cmd = ["kubectl", "lighthouse", "connect", bridge.name, "-n", bridge.ns, "--agent", "hook-1", "--"]
    ran = subprocess.run([*cmd, "python3", "-c", script], env=user_env(bridge), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer["valid"] is True and answer["agent_id"] == "hook-1"
    # health: the runbook's check inside the pod, healthy.
    health = plugin(bridge, "health", bridge.name, "-o", "json")
    assert health.returncode == 0, health.stdout + health.stderr
    assert json.loads(health.stdout)["status"] == "healthy"
    # logs: the bridge's own log lines, prefixed with the pod.
    logs = plugin(bridge, "logs", bridge.name, "--tail", "20")
    assert logs.returncode == 0 and f"[pod/{bridge.name}-bridge-" in logs.stdout, logs.stderr
    # psql: the event store answers with the rows the API wrote.
    psql = plugin(bridge, "psql", bridge.name, "--", "-Atc", "SELECT count(*) > 0 FROM events")
    assert psql.returncode == 0 and psql.stdout.strip() == "t", psql.stderr
    # report: real logs now, and still no Secret value.
    bundle = tmp_path / "bundle.tar.gz"
    made = plugin(bridge, "report", bridge.name, "-o", str(bundle))
    assert made.returncode == 0, made.stderr
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())  # type: ignore[union-attr]
    assert any(n.endswith("/bridge.log") for n in names), names
    assert bridge.token().encode() not in blob

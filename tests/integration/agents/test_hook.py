"""`lighthouse-bridge hook` as a subprocess against a real bridge (uvicorn on 127.0.0.1) and against no bridge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agents.conftest import ADMIN_TOKEN, bash, mint
from tests.integration.bridge.support import BridgeProcess, free_port

HOOK = [sys.executable, "-m", "lighthouse_bridge.cli", "hook"]


def run_hook(payload: Any, env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTHOUSE_")}
    return subprocess.run(
        [*HOOK, *args], input=text, capture_output=True, text=True, timeout=timeout, env={**clean, **env}
    )


@pytest.fixture
def live_bridge(tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str) -> Iterator[BridgeProcess]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("escalation_timeout_seconds: 30\n")
    env = {
        "LIGHTHOUSE_DATABASE_URL": postgres_url,
        "LIGHTHOUSE_REDIS_URL": redis_url,
        "LIGHTHOUSE_REDIS_PREFIX": redis_prefix,
        "LIGHTHOUSE_ADMIN_TOKEN": ADMIN_TOKEN,
        "LIGHTHOUSE_AUDIT_LOG": str(tmp_path / "audit.log"),
        "LIGHTHOUSE_POLICY_FILE": str(policy),
        "LIGHTHOUSE_LOG_LEVEL": "info",
    }
    b = BridgeProcess(env, tmp_path / "bridge.log").start()
    try:
        yield b
    finally:
        b.stop()


def test_hook_against_a_running_bridge(live_bridge: BridgeProcess, tmp_path: Path) -> None:
    env = {"LIGHTHOUSE_BRIDGE_URL": live_bridge.url, "LIGHTHOUSE_TOKEN": mint(live_bridge, "builder-1", "builder")}
    ok = run_hook(bash("git status"), env)
    assert ok.returncode == 0, ok.stderr
    no = run_hook(bash("rm -rf /"), env)
    assert no.returncode == 2 and "recursive delete of /" in no.stderr and "block-rm-rf-root" in no.stderr
    legacy = run_hook({"tool": "Read", "input": {"file_path": "README.md"}}, env)
    assert legacy.returncode == 0, legacy.stderr

    # escalation: an expert approves while the hook waits
    expert = mint(live_bridge, "reviewer-1", "expert")

    def approve_when_pending(status: str) -> None:
        with live_bridge.client(headers={"Authorization": f"Bearer {expert}"}) as c:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                pending = c.get("/pending").json()["pending"]
                if pending:
                    c.post("/approve", json={"id": pending[0]["id"], "status": status, "reason": f"{status} by test"})
                    return
                time.sleep(0.1)

    t = threading.Thread(target=approve_when_pending, args=("approved",))
    t.start()
    waited = run_hook(bash("npm install left-pad"), env, "--wait", "30")
    t.join()
    assert waited.returncode == 0, waited.stderr

    t = threading.Thread(target=approve_when_pending, args=("rejected",))
    t.start()
    rejected = run_hook(bash("make deploy"), env, "--wait", "30")
    t.join()
    assert rejected.returncode == 2 and "rejected by test" in rejected.stderr

    # nobody answers within the hook's bound: the fail-safe blocks a write
    unanswered = run_hook(bash("terraform apply"), env, "--wait", "1")
    assert unanswered.returncode == 2 and "no expert decision within 1s" in unanswered.stderr

    # credentials the bridge refuses block the tool (a broken hook must not let things through)
    bad = run_hook(bash("ls"), {**env, "LIGHTHOUSE_TOKEN": "lh1.bogus.token"})
    assert bad.returncode == 2 and "401" in bad.stderr
    garbage = run_hook("{not json", env)
    assert garbage.returncode == 2 and "unreadable" in garbage.stderr

    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    actions = {a["action"] for a in audit}
    assert {
        "validation_decision_made",
        "validation_escalated",
        "escalation_approved",
        "escalation_rejected",
        "auth_failed",
        "token_minted",
    } <= actions
    with httpx.Client(base_url=live_bridge.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        assert c.get("/audit", params={"limit": 5}).json()["records"][-1]["action"] in actions


def test_hook_without_a_bridge_uses_offline_rules(tmp_path: Path) -> None:
    env = {"LIGHTHOUSE_BRIDGE_URL": f"http://127.0.0.1:{free_port()}", "LIGHTHOUSE_TOKEN": "x"}
    assert run_hook(bash("ls -la"), env).returncode == 0
    assert run_hook({"tool_name": "Read", "tool_input": {"file_path": "/etc/hosts"}}, env).returncode == 0
    blocked = run_hook(bash("rm -rf /"), env)
    assert blocked.returncode == 2 and "offline rules" in blocked.stderr and "block-rm-rf-root" in blocked.stderr
    unknown = run_hook(bash("npm install left-pad"), env)
    assert unknown.returncode == 2 and "no expert can be asked" in unknown.stderr
    # the offline rules follow the mounted policy file too
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: [{id: allow-npm, tool: Bash, command: '^npm install\\b', action: approve}]\n")
    assert run_hook(bash("npm install left-pad"), {**env, "LIGHTHOUSE_POLICY_FILE": str(policy)}).returncode == 0
    policy.write_text("rules: [{action: bogus}]\n")
    broken = run_hook(bash("npm install left-pad"), {**env, "LIGHTHOUSE_POLICY_FILE": str(policy)})
    assert broken.returncode == 2 and "using the default rules" in broken.stderr

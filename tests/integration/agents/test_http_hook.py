"""Claude Code's native `http` PreToolUse hook against a real bridge (uvicorn on 127.0.0.1): allow, deny, and an
escalation an expert approves while the hook waits; with Claude Code's real input shape and its headers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.agents.conftest import mint, pre_tool_use, running_bridge
from tests.integration.bridge.support import BridgeProcess

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def live(tmp_path: Path, bridge_env: dict[str, str]) -> Iterator[BridgeProcess]:
    # a wait far beyond the client's 60 s timeout: a hook that did not answer on the decision fails the test
    with running_bridge(tmp_path, bridge_env, LIGHTHOUSE_HTTP_HOOK_WAIT="3600") as b:
        yield b


def hook(b: BridgeProcess, token: str, body: dict[str, Any]) -> httpx.Response:
    # what Claude Code sends for {"type": "http", "headers": {"Authorization": "Bearer $LIGHTHOUSE_TOKEN"}}
    return httpx.post(
        f"{b.url}/hooks/claude-code",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


def decision(r: httpx.Response) -> tuple[str, str]:
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"hookSpecificOutput"} and out["hookSpecificOutput"]["hookEventName"] == "PreToolUse"
    return out["hookSpecificOutput"]["permissionDecision"], out["hookSpecificOutput"]["permissionDecisionReason"]


def test_allow_deny_and_an_escalation_approved_during_the_wait(live: BridgeProcess, tmp_path: Path) -> None:
    builder = mint(live, "builder-1", "builder")
    assert decision(hook(live, builder, pre_tool_use("Read", {"file_path": "/home/dev/app/README.md"})))[0] == "allow"
    verdict, reason = decision(hook(live, builder, pre_tool_use("Bash", {"command": "rm -rf /"})))
    assert verdict == "deny" and "recursive delete of /" in reason and "block-rm-rf-root" in reason
    expert = mint(live, "reviewer-1", "expert")

    def approve_when_pending() -> None:
        with live.client(headers={"Authorization": f"Bearer {expert}"}) as c:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                pending = c.get("/pending").json()["pending"]
                if pending:
                    c.post("/approve", json={"id": pending[0]["id"], "status": "approved", "reason": "looks fine"})
                    return
                time.sleep(0.1)

    approver = threading.Thread(target=approve_when_pending)
    approver.start()
    verdict, reason = decision(
        hook(live, builder, pre_tool_use("Bash", {"command": "npm install left-pad", "description": "Install"}))
    )
    approver.join()
    assert verdict == "allow" and "looks fine" in reason and "approved by reviewer-1" in reason
    # wrong event, wrong role, no token: clear refusals that an `onFailure: "block"` hook turns into a block
    wrong = hook(live, builder, {**pre_tool_use("Bash", {"command": "ls"}), "hook_event_name": "PostToolUse"})
    assert wrong.status_code == 422 and "PreToolUse only" in wrong.json()["detail"]
    assert hook(live, mint(live, "v", "viewer"), pre_tool_use("Bash", {"command": "ls"})).status_code == 403
    assert httpx.post(f"{live.url}/hooks/claude-code", json=pre_tool_use("Bash", {"command": "ls"})).status_code == 401
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert any(a["action"] == "escalation_approved" and a["actor"] == "reviewer-1" for a in audit)


def test_an_undecided_escalation_is_denied_and_read_only_is_allowed(tmp_path: Path, bridge_env: dict[str, str]) -> None:
    with running_bridge(tmp_path, bridge_env, LIGHTHOUSE_HTTP_HOOK_WAIT="1") as b:
        builder = mint(b, "builder-1", "builder")
        verdict, reason = decision(hook(b, builder, pre_tool_use("Bash", {"command": "terraform apply"})))
        assert verdict == "deny" and "no expert decision within 1s" in reason
        verdict, _ = decision(hook(b, builder, pre_tool_use("Read", {"file_path": "/etc/hosts"})))
        assert verdict == "allow"  # escalated (a system path), but read-only: the fail-safe allows it
    # or the person at the Claude Code prompt decides
    with running_bridge(tmp_path, bridge_env, LIGHTHOUSE_HTTP_HOOK_WAIT="0", LIGHTHOUSE_HTTP_HOOK_UNDECIDED="ask") as b:
        verdict, reason = decision(hook(b, mint(b, "builder-1", "builder"), pre_tool_use("Bash", {"command": "make"})))
        assert verdict == "ask" and "you decide" in reason


def test_the_sample_settings_file_uses_the_route_and_blocks_on_failure() -> None:
    settings = json.loads((REPO / "docs" / "claude-code-settings.json").read_text())
    (group,) = settings["hooks"]["PreToolUse"]
    (h,) = group["hooks"]
    assert h["type"] == "http" and h["url"].endswith("/hooks/claude-code") and h["onFailure"] == "block"
    assert h["headers"]["Authorization"] == "Bearer $LIGHTHOUSE_TOKEN" and h["allowedEnvVars"] == ["LIGHTHOUSE_TOKEN"]
    from lighthouse_bridge.core.config import HookSettings, Settings

    wait = Settings.model_fields["http_hook_wait"].default
    assert h["timeout"] > wait + 10  # the bridge answers before Claude Code gives up on the hook
    # the command hook's default wait stays below Claude Code's default hook timeout (600 s for command hooks): a
    # hook killed by that timeout would let the tool call through
    assert HookSettings.model_fields["hook_wait"].default + HookSettings.model_fields["hook_timeout"].default < 600

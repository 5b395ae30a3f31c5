"""Policy hot reload: a good file takes effect, a bad one keeps the last good policy loudly."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.integration.agents.conftest import Bridge, audit_lines, wait_for


def write(path: Path, text: str) -> None:
    # atomic swap like a ConfigMap update, so the reloader never sees a half-written file
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


MAKE = {"tool_name": "Bash", "tool_input": {"command": "make deploy"}}


async def test_reload_good_then_bad(bridge: Bridge, policy_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    b = await bridge.as_role("builder-1", "builder")
    assert (await b.post("/validate", json=MAKE)).json()["decision"] == "escalated"
    write(
        policy_file,
        "rules:\n  - id: no-deploys\n    tool: Bash\n    command: '^make\\s+deploy\\b'\n"
        "    action: block\n    reason: deploys go through CI\n",
    )

    async def decision() -> dict[str, Any] | None:
        body = (await b.post("/validate", json=MAKE)).json()
        return body if body["rule_id"] == "no-deploys" else None

    blocked = await wait_for(decision, 15, what="policy reload")
    assert blocked["decision"] == "blocked" and blocked["reason"] == "deploys go through CI"
    good_hash = bridge.agents.policy.policy.hash

    caplog.set_level(logging.ERROR, logger="lighthouse_bridge.agents.policy")
    write(policy_file, "rules:\n  - id: broken\n    command: '(unclosed'\n    action: block\n")

    async def failed() -> bool:
        return any(a["action"] == "policy_reload_failed" for a in audit_lines(bridge.app.state.settings))

    await wait_for(failed, 15, what="failed reload audit")
    assert bridge.agents.policy.policy.hash == good_hash
    assert (await b.post("/validate", json=MAKE)).json()["rule_id"] == "no-deploys"
    assert any("keeping the last good policy" in r.getMessage() for r in caplog.records)
    await bridge.agents.sink.flush()
    evs = (await bridge.admin.get("/event/query", params={"aggregate_id": "policy"})).json()["events"]
    kinds = [e["event_type"] for e in evs]
    assert kinds[-2:] == ["policy_reloaded", "policy_reload_failed"]
    assert "invalid regex" in evs[-1]["data"]["error"]
    metrics = (await bridge.client().get("/metrics")).text
    assert 'lighthouse_bridge_policy_reloads_total{outcome="invalid"}' in metrics

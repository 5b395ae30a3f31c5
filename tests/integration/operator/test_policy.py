"""spec.bridge.policy against the real API server and operator: the CRD types it with the bridge's own model, the
API server refuses wrong types, and the operator refuses what the bridge would (unknown keys, bad regexes) instead of
handing the bridge a file it would ignore."""

from __future__ import annotations

import yaml

from tests.harness.cluster import wait_for

from .conftest import Kubectl, Operator, condition, is_ready, lhb

GOOD = "localhost/lighthouse-bridge:0.1.0"
POLICY = {
    "escalation_timeout_seconds": 60,
    "rules": [{"id": "no-force-push", "tool": "Bash", "command": "git\\s+push\\b.*--force", "action": "block"}],
}


def test_api_server_refuses_a_policy_of_the_wrong_shape(k: Kubectl, crd: object) -> None:
    for policy, needle in (
        ({"default_action": "deny"}, 'spec.bridge.policy.default_action: Unsupported value: "deny"'),
        ({"escalation_timeout_seconds": 0}, "spec.bridge.policy.escalation_timeout_seconds"),
        ({"rules": [{"tool": "Bash"}]}, "spec.bridge.policy.rules[0].action: Required value"),
        ({"rules": "block everything"}, ".spec.bridge.policy.rules: expected list"),
    ):
        proc = k.apply(lhb("bad", {"image": GOOD, "bridge": {"policy": policy}}), check=False)
        assert proc.returncode != 0 and needle in proc.stderr, (policy, proc.stderr)
    assert k.get("lhb", "bad") is None


def test_operator_refuses_what_the_bridge_would_and_applies_a_valid_policy(k: Kubectl, operator: Operator) -> None:
    # The keys examples/production.yaml used to have: the API server keeps them (so nothing is lost silently) and
    # the operator stalls with InvalidSpec naming them, before any child exists.
    k.apply(lhb("demo", {"image": GOOD, "bridge": {"policy": {"blocked": ["rm -rf /"], "escalateTimeoutSeconds": 60}}}))
    obj = wait_for(lambda: (o := k.get("lhb", "demo")) and condition(o, "Stalled") and o, timeout=60,
                   message="Stalled")  # fmt: skip
    stalled = condition(obj, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec", stalled
    assert "bridge.policy.blocked: Extra inputs are not permitted" in stalled["message"]
    assert "bridge.policy.escalateTimeoutSeconds" in stalled["message"]
    assert k.get("configmap", "demo-bridge-config") is None
    bad_regex = {"rules": [{"command": "([", "action": "block"}]}
    k.apply(lhb("demo", {"image": GOOD, "bridge": {"policy": bad_regex}}))
    wait_for(lambda: "invalid regex" in (condition(k.get("lhb", "demo"), "Stalled") or {}).get("message", ""),
             timeout=60, message="Stalled on the regex")  # fmt: skip
    # Fixed: Ready, and the bridge gets the policy exactly as written.
    k.apply(lhb("demo", {"image": GOOD, "bridge": {"policy": POLICY}}))
    wait_for(lambda: is_ready(k.get("lhb", "demo")), timeout=120, message="Ready")
    cm = k.get("configmap", "demo-bridge-config")
    assert yaml.safe_load(cm["data"]["policy.yaml"]) == POLICY

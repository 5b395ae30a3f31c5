"""The policies in examples/ mean something to the bridge: its own parser loads them and they decide as intended."""

from __future__ import annotations

from pathlib import Path

import yaml
from lighthouse_bridge.agents import policy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def example_policies() -> dict[str, dict]:
    out = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            p = ((doc or {}).get("spec") or {}).get("bridge", {}).get("policy")
            if p is not None:
                out[path.name] = p
    return out


def test_production_policy_is_loaded_by_the_bridge_and_decides() -> None:
    found = example_policies()
    assert "production.yaml" in found
    for name, doc in found.items():
        # What the operator writes into the ConfigMap (builders.bridge.config_data), read as the bridge reads it.
        pol = policy.parse(yaml.safe_dump(doc, sort_keys=True), name)
        assert pol.source == name and pol.rule_count > len(policy.DEFAULT_RULES) - 1
    pol = policy.parse(yaml.safe_dump(found["production.yaml"]), "production.yaml")
    assert pol.escalation_timeout == 60
    assert pol.decide("Bash", {"command": "git push --force origin main"}).rule_id == "no-force-push"
    assert pol.decide("Bash", {"command": "npm install left-pad"}).action == "escalate"
    assert pol.decide("Bash", {"command": "rm -rf /"}).rule_id == "block-rm-rf-root"  # the defaults still apply

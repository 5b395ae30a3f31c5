"""The generated CRD: structural, committed without drift, with the columns and rules users rely on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lighthouse_operator import crd
from lighthouse_policy import PolicySpec, RuleSpec

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "crds" / crd.CRD_FILE


def walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.get("properties", {}).items():
            yield from walk(v, f"{path}.{k}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from walk(node[key], f"{path}[{key}]")


def schema() -> dict[str, Any]:
    return crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_crd_matches_the_model() -> None:
    assert COMMITTED.read_text() == crd.render(), "run hack/update-generated.sh"


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        assert "$ref" not in node and "$defs" not in node, path
        assert "title" not in node, path
        assert "default" not in node, f"{path}: defaults belong to the operator, not the stored object"
        untyped_ok = node.get("x-kubernetes-int-or-string") or node.get("x-kubernetes-preserve-unknown-fields")
        assert "type" in node or untyped_ok, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        for k in ("oneOf", "allOf", "not"):
            assert k not in node, path
        assert node.get("additionalProperties") not in (True, False), path


def test_preserve_unknown_fields_only_where_needed() -> None:
    preserved = {p for p, n in walk(schema()) if n.get("x-kubernetes-preserve-unknown-fields")}
    assert preserved == {
        ".spec.podTemplate.affinity",
        ".spec.bridge.env[items].valueFrom",
        # The policy is typed, but its objects keep unknown keys so that the operator can refuse them instead of
        # the API server pruning them; rule.tool is a name or a list of names (no structural type for that).
        ".spec.bridge.policy",
        ".spec.bridge.policy.rules[items]",
        ".spec.bridge.policy.rules[items].tool",
    }


def test_policy_schema_is_the_bridges_policy_model() -> None:
    # One model for both: every key the bridge's policy file takes is typed in the CRD, and nothing else.
    nodes = dict(walk(schema()))
    policy, rule = nodes[".spec.bridge.policy"], nodes[".spec.bridge.policy.rules[items]"]
    assert set(policy["properties"]) == set(PolicySpec.model_fields)
    assert set(rule["properties"]) == set(RuleSpec.model_fields)
    assert rule["required"] == ["action"]
    assert policy["properties"]["default_action"]["enum"] == ["approve", "block", "escalate"]
    timeout = policy["properties"]["escalation_timeout_seconds"]
    assert (timeout["minimum"], timeout["exclusiveMinimum"], timeout["maximum"]) == (0, True, 86400)


def test_quantities_are_int_or_string() -> None:
    nodes = dict(walk(schema()))
    for p in (".spec.postgres.managed.storage.size", ".spec.resources.limits[additionalProperties]"):
        assert nodes[p]["x-kubernetes-int-or-string"] is True
        assert nodes[p]["x-kubernetes-validations"][0]["rule"] == "type(self) == int || isQuantity(self)"
        assert nodes[p]["maxLength"] <= 64  # keeps the CEL cost estimate within budget


def test_conditions_are_a_list_map_on_type() -> None:
    cond = dict(walk(schema()))[".status.conditions"]
    assert cond["x-kubernetes-list-type"] == "map"
    assert cond["x-kubernetes-list-map-keys"] == ["type"]
    assert set(cond["items"]["required"]) >= {"type", "status"}


def test_names_subresources_and_columns() -> None:
    c = crd.crd()
    names = c["spec"]["names"]
    assert names["shortNames"] == ["lhb"] and names["categories"] == ["lighthouse"]
    v = c["spec"]["versions"][0]
    assert v["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    assert "status" in v["subresources"]
    assert [col["name"] for col in v["additionalPrinterColumns"]] == [
        "Ready",
        "Phase",
        "Replicas",
        "Revision",
        "Last Backup",
        "Age",
    ]
    nodes = dict(walk(schema()))
    for col in v["additionalPrinterColumns"]:
        jp = col["jsonPath"]
        if jp.startswith(".status.") and "[" not in jp:
            assert jp in nodes, f"printer column {col['name']} points at a missing field {jp}"


def test_cel_rules_have_messages() -> None:
    rules = [r for _, n in walk(schema()) for r in n.get("x-kubernetes-validations", [])]
    assert len(rules) >= 9
    for r in rules:
        assert r["message"] and r["rule"]
    messages = " ".join(r["message"] for r in rules)
    for needle in (
        "redis.external.secretRef",
        "postgres.external.secretRef",
        "spec.replicas must be 0 or more",
        "spec.image must not be empty",
        "metadata.name",
    ):
        assert needle in messages
    # The operator's defaults can fill it in, which the API server cannot see (validation.py checks it).
    assert "devicePluginResource" not in messages


def test_committed_file_is_valid_yaml_with_header() -> None:
    text = COMMITTED.read_text()
    assert text.startswith("# Generated")
    assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"

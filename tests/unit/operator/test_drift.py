"""covers(): the decision to skip a write. A wrong True hides a hand edit; a wrong False costs idle writes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from lighthouse_operator.drift import covers, keep_immutable, parse_quantity


@pytest.mark.parametrize(
    ("q", "v"),
    [
        ("1Gi", 2**30),
        ("500m", Decimal("0.5")),
        ("2", 2),
        (3, 3),
        ("1k", 1000),
        ("1e3", 1000),
        ("1.5Mi", Decimal("1.5") * 2**20),
    ],
)
def test_parse_quantity(q, v) -> None:
    assert parse_quantity(q) == v


def test_superset_with_server_defaults_is_covered() -> None:
    desired = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    observed = {
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "template": {
                "spec": {
                    "containers": [{"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}],
                    "dnsPolicy": "ClusterFirst",
                }
            },
        }
    }
    assert covers(observed, desired)


def test_hand_edits_are_detected() -> None:
    desired = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    assert not covers({"spec": {"replicas": 3, "template": desired["spec"]["template"]}}, desired)
    edited = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "evil"}]}}}}
    assert not covers(edited, desired)
    assert not covers({"spec": {"replicas": 1}}, desired)  # a field we own was removed
    two = {"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}}}}
    assert not covers(two, desired)  # an injected container is a change to a list we own


def test_quantities_compare_by_value_only_in_resources() -> None:
    assert covers({"resources": {"limits": {"cpu": "1"}}}, {"resources": {"limits": {"cpu": "1000m"}}})
    assert not covers({"resources": {"limits": {"cpu": "2"}}}, {"resources": {"limits": {"cpu": "1000m"}}})
    assert not covers({"env": [{"value": "1"}]}, {"env": [{"value": "1000m"}]})


def test_int_or_string_and_empty_values() -> None:
    assert covers({"port": 8765}, {"port": "8765"})
    assert covers({"a": 1}, {"a": 1, "b": None, "labels": {}})
    assert not covers({"a": True}, {"a": False})


def test_zero_values_the_server_omits_are_covered_by_their_absence() -> None:
    # An env var with an empty value comes back without "value" (omitempty): seen after every operator restart.
    assert covers({"env": [{"name": "P"}]}, {"env": [{"name": "P", "value": ""}]})
    assert covers({"m": {"name": "x"}}, {"m": {"name": "x", "readOnly": False, "n": 0}})
    assert not covers({"env": [{"name": "P"}]}, {"env": [{"name": "P", "value": "x"}]})
    assert not covers({"m": {}}, {"m": {"n": 1}}) and not covers({"m": {}}, {"m": {"on": True}})


def test_immutable_fields_are_kept_and_reported() -> None:
    desired = {
        "kind": "StatefulSet",
        "metadata": {"name": "x-postgres"},
        "spec": {
            "replicas": 1,
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "20Gi"}}}}
            ],
        },
    }
    observed = {
        "spec": {
            "volumeClaimTemplates": [
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": "data"},
                    "spec": {"resources": {"requests": {"storage": "10Gi"}}},
                    "status": {"phase": "Pending"},
                }
            ]
        }
    }
    # A bigger size alone is kept quietly: the claims themselves grow (storage.py says what happens).
    out, warnings = keep_immutable(desired, observed)
    assert out["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "status" not in out["spec"]["volumeClaimTemplates"][0]
    assert warnings == []
    # Anything else in the templates (another class) is kept and reported.
    desired["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = "fast"
    out, warnings = keep_immutable(desired, observed)
    assert "storageClassName" not in out["spec"]["volumeClaimTemplates"][0]["spec"]
    assert len(warnings) == 1 and "volumeClaimTemplates" in warnings[0]
    same, none = keep_immutable(desired, {"spec": {"volumeClaimTemplates": desired["spec"]["volumeClaimTemplates"]}})
    assert same is desired and none == []
    assert keep_immutable(desired, None) == (desired, [])

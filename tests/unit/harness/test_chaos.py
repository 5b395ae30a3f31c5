"""The chaos checks themselves (tests/harness/chaos.py): they must see an orphan, a missing or duplicated child and a
revision recorded twice, and nothing wrong in a clean namespace."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lighthouse_operator import naming

from tests.harness.chaos import expected, problems

pytestmark = pytest.mark.unit

BRIDGE = {"apiVersion": "lighthouse.dev/v1alpha1", "kind": "LighthouseBridge",
          "metadata": {"name": "demo", "namespace": "ns", "uid": "u1", "generation": 1}, "spec": {}}  # fmt: skip


def child(kind: str, name: str, instance: str = "demo", uid: str = "u1", **extra: Any) -> dict[str, Any]:
    labels = {naming.L_INSTANCE: instance, naming.L_MANAGED_BY: naming.MANAGED_BY, **extra.pop("labels", {})}
    owner = {"apiVersion": "lighthouse.dev/v1alpha1", "kind": "LighthouseBridge", "name": instance, "uid": uid}
    return {"kind": kind, "metadata": {"name": name, "labels": labels, "ownerReferences": [owner]}, **extra}


def clean() -> list[dict[str, Any]]:
    return [child(kind, name) for kind, name in sorted(expected(BRIDGE))]


def test_a_complete_namespace_has_no_problem() -> None:
    assert ("Deployment", "demo-bridge") in expected(BRIDGE) and ("Secret", "demo-admin-token") in expected(BRIDGE)
    assert ("PersistentVolumeClaim", "data-demo-postgres-0") in expected(BRIDGE)
    assert problems(clean(), [BRIDGE]) == []


def test_orphans_missing_extra_and_duplicates_are_seen() -> None:
    objects = clean()
    objects = [o for o in objects if o["metadata"]["name"] != "demo-bridge-metrics"]
    objects.append(child("Deployment", "gone-bridge", instance="gone"))
    objects.append(child("Service", "demo-extra"))
    stale = copy.deepcopy(objects[0])
    stale["metadata"]["ownerReferences"][0]["uid"] = "u0"
    objects[0] = stale
    template = {"metadata": {"annotations": {naming.A_REVISION: "r1"}}}
    objects += [child("ReplicaSet", f"demo-bridge-{i}", spec={"template": template}) for i in range(2)]
    revision = {naming.L_REVISION_OF: "bridge", naming.L_REVISION: "r1"}
    objects += [child("ControllerRevision", f"demo-bridge-r1-{i}", labels=revision) for i in range(2)]
    objects.append(child("ControllerRevision", "demo-postgres-5d8", labels={"controller-revision-hash": "5d8"}))
    found = problems(objects, [BRIDGE])
    assert "missing Service/demo-bridge-metrics of demo" in found
    assert "orphan Deployment/gone-bridge: its LighthouseBridge 'gone' is gone" in found
    assert "unexpected Service/demo-extra of demo" in found
    assert any(p.startswith("orphan ") and "earlier LighthouseBridge" in p for p in found)
    assert "2 ReplicaSets of demo for revision r1" in found and "2 ControllerRevisions of demo/bridge for r1" in found
    assert len(found) == 6, found

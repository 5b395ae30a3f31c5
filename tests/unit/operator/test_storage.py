"""Growing the managed stores' volumes: the pure plan (storage.plan) from PVCs and StorageClasses, and the Event."""

from __future__ import annotations

from typing import Any

import pytest
from lighthouse_operator import events, storage
from lighthouse_operator.api import Done
from lighthouse_operator.models import LighthouseBridge

pytestmark = pytest.mark.unit

EXPANDABLE = {"metadata": {"name": "standard"}, "allowVolumeExpansion": True}
FIXED = {"metadata": {"name": "fixed"}}


def bridge(postgres: str = "1Gi", redis: str | None = "1Gi") -> LighthouseBridge:
    spec: dict[str, Any] = {"postgres": {"managed": {"storage": {"size": postgres}}}}
    if redis is None:
        spec["redis"] = {"mode": "external", "external": {"secretRef": {"name": "r", "key": "url"}}}
    else:
        spec["redis"] = {"managed": {"storage": {"size": redis}}}
    return LighthouseBridge.from_body(
        {"metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": 1}, "spec": spec}
    )


def pvc(
    name: str = "data-demo-postgres-0",
    request: str = "1Gi",
    capacity: str | None = "1Gi",
    phase: str = "Bound",
    cls: str = "standard",
    conditions: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if capacity is not None:
        status["capacity"] = {"storage": capacity}
    return {
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"storageClassName": cls, "resources": {"requests": {"storage": request}}},
        "status": status,
    }


def test_nothing_to_do_when_the_claims_have_what_the_spec_asks() -> None:
    lhb = bridge("1024Mi")  # the same quantity, written differently
    claims = [pvc(), pvc("data-demo-redis-0")]
    assert storage.classes_needed(lhb, claims) == set()
    assert storage.plan(lhb, claims, {}) == storage.Plan()
    # A claim still being provisioned (no capacity yet) is the StatefulSet's business, not a resize.
    assert storage.plan(lhb, [pvc(capacity=None, phase="Pending")], {}) == storage.Plan()


def test_a_bigger_size_patches_a_bound_claim_when_its_class_allows_it() -> None:
    lhb = bridge("2Gi")
    claims = [pvc(), pvc("data-demo-redis-0"), pvc("data-other-postgres-0"), pvc("data-demo-postgres-x")]
    assert storage.classes_needed(lhb, claims) == {"standard"}
    p = storage.plan(lhb, claims, {"standard": EXPANDABLE})
    assert [(w.kind, w.name, w.patch) for w in p.writes] == [
        ("PersistentVolumeClaim", "data-demo-postgres-0", {"spec": {"resources": {"requests": {"storage": "2Gi"}}}})
    ]
    assert p.warnings == () and "expanding PVC data-demo-postgres-0 from 1Gi to 2Gi" in p.progress["postgres"]
    assert "redis" not in p.progress
    done = [Done("Updated", "PersistentVolumeClaim", "data-demo-postgres-0")]
    assert [(e.type, e.reason, e.message) for e in events.storage(p, done)] == [
        ("Normal", "ExpandingVolume", "PVC data-demo-postgres-0: 1Gi -> 2Gi")
    ]
    assert events.storage(p, []) == []


def test_a_class_without_expansion_is_reported_and_nothing_is_written() -> None:
    lhb = bridge(redis="5Gi")
    claims = [pvc(), pvc("data-demo-redis-0", cls="fixed", phase="Pending", capacity=None)]
    p = storage.plan(lhb, claims, {"fixed": FIXED})
    assert p.writes == () and p.progress == {}
    assert p.warnings == (
        "redis: cannot grow PVC data-demo-redis-0 from 1Gi to 5Gi: StorageClass fixed does not allow volume "
        "expansion (allowVolumeExpansion is not true); it stays 1Gi",
    )
    gone = storage.plan(lhb, claims, {"fixed": None})
    assert gone.writes == () and "its StorageClass fixed does not exist" in gone.warnings[0]


def test_an_unbound_claim_waits_and_a_smaller_size_is_refused() -> None:
    p = storage.plan(bridge("2Gi"), [pvc(phase="Pending", capacity=None)], {"standard": EXPANDABLE})
    assert p.writes == () and p.warnings == ()
    assert p.progress == {"postgres": "PVC data-demo-postgres-0 grows to 2Gi once it is bound"}
    shrink = storage.plan(bridge("1Gi"), [pvc(request="2Gi", capacity="2Gi")], {"standard": EXPANDABLE})
    assert shrink.writes == () and shrink.progress == {}
    assert shrink.warnings == (
        "postgres: storage cannot shrink: PVC data-demo-postgres-0 requests 2Gi, the spec asks for 1Gi; it stays 2Gi",
    )


def test_a_claim_that_has_not_grown_yet_keeps_the_store_progressing() -> None:
    lhb = bridge("2Gi")
    p = storage.plan(lhb, [pvc(request="2Gi", capacity="1Gi")], {})
    assert p.writes == () and p.progress == {"postgres": "expanding PVC data-demo-postgres-0 from 1Gi to 2Gi"}
    pending = [{"type": "FileSystemResizePending", "status": "True", "message": "Waiting for user to (re-)start a pod"}]
    p = storage.plan(lhb, [pvc(request="2Gi", capacity="1Gi", conditions=pending)], {})
    assert "its file system grows when the pod restarts" in p.progress["postgres"]
    failed = [{"type": "ControllerResizeError", "status": "True", "message": "quota exceeded"}]
    p = storage.plan(lhb, [pvc(request="2Gi", capacity="1Gi", conditions=failed)], {})
    assert p.progress == {} and p.warnings == (
        "postgres: PVC data-demo-postgres-0 could not grow to 2Gi: ControllerResizeError: quota exceeded",
    )
    assert storage.plan(lhb, [pvc(request="2Gi", capacity="2Gi")], {}) == storage.Plan()


def test_external_stores_have_no_claims_to_grow() -> None:
    lhb = bridge(redis=None)
    assert storage.desired_sizes(lhb) == {"postgres": "1Gi"}
    assert storage.plan(lhb, [pvc("data-demo-redis-0", request="1Mi")], {}) == storage.Plan()

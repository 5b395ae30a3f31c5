"""Growing a managed store's storage on the real control plane: the claim grows when its StorageClass allows it (the
local cluster's "standard" does; a kwok stage plays the resizer), a class that does not is reported, and a smaller
size is refused. StatefulSet claim templates never change."""

from __future__ import annotations

import uuid
from typing import Any

from tests.harness.cluster import Cluster, wait_for

from .conftest import Kubectl, Operator, condition, is_ready, lhb
from .test_operator import events, wait_ready

PVC = "data-demo-postgres-0"


def size(spec_size: str) -> dict[str, Any]:
    return {"postgres": {"managed": {"storage": {"size": spec_size}}}, "deletionPolicy": "Delete"}


def claim(k: Kubectl, name: str = PVC) -> tuple[str, str | None]:
    pvc = k.get("pvc", name)
    return pvc["spec"]["resources"]["requests"]["storage"], (pvc.get("status", {}).get("capacity") or {}).get("storage")


def degraded(k: Kubectl) -> str:
    c = condition(k.get("lhb", "demo"), "Degraded") or {}
    return c.get("message", "") if c.get("status") == "True" else ""


def test_a_bigger_size_grows_the_claim_and_a_smaller_one_is_refused(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", size("1Gi")))
    wait_ready(k)
    assert claim(k) == ("1Gi", "1Gi")

    k.apply(lhb("demo", size("2Gi")))
    wait_for(lambda: claim(k) == ("2Gi", "2Gi"), timeout=60, message="the claim to grow to 2Gi")
    obj = wait_ready(k)
    assert obj["status"]["observedGeneration"] == 2 and degraded(k) == ""
    assert any(e["reason"] == "ExpandingVolume" and PVC in e["message"] for e in events(k, "demo"))
    # The StatefulSet's template keeps the size it was created with (it cannot change), without a warning.
    vct = k.get("statefulset", "demo-postgres")["spec"]["volumeClaimTemplates"][0]
    assert vct["spec"]["resources"]["requests"]["storage"] == "1Gi"

    k.apply(lhb("demo", size("1Gi")))
    message = wait_for(lambda: degraded(k), timeout=60, message="Degraded=True for the smaller size")
    assert "storage cannot shrink" in message and PVC in message and "stays 2Gi" in message
    assert claim(k) == ("2Gi", "2Gi")
    assert any(e["reason"] == "Degraded" and "cannot shrink" in e["message"] for e in events(k, "demo"))
    # Back to what the volume has: nothing to refuse any more.
    k.apply(lhb("demo", size("2Gi")))
    wait_for(lambda: is_ready(k.get("lhb", "demo")) and degraded(k) == "", timeout=60, message="healthy again")


def test_a_class_that_does_not_allow_expansion_is_reported(cluster: Cluster, k: Kubectl, operator: Operator) -> None:
    fixed = f"lh-fixed-{uuid.uuid4().hex[:6]}"
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\n"
            f"metadata: {{name: {fixed}}}\nprovisioner: kwok.x-k8s.io/volume\nallowVolumeExpansion: false\n"
        ),
    )
    try:
        spec = {"redis": {"managed": {"storage": {"size": "1Gi", "storageClassName": fixed}}}}
        k.apply(lhb("demo", {**spec, "deletionPolicy": "Delete"}))
        wait_for(lambda: k.get("pvc", "data-demo-redis-0"), timeout=60, message="the redis claim")
        spec["redis"]["managed"]["storage"]["size"] = "3Gi"
        k.apply(lhb("demo", {**spec, "deletionPolicy": "Delete"}))
        message = wait_for(lambda: degraded(k), timeout=60, message="Degraded=True for a class without expansion")
        assert f"StorageClass {fixed} does not allow volume expansion" in message and "data-demo-redis-0" in message
        assert claim(k, "data-demo-redis-0")[0] == "1Gi", "the claim must be left alone"
    finally:
        cluster.kubectl("delete", "storageclass", fixed, "--wait=false", check=False)

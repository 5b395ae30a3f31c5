"""The applier's write decisions, and whole reconciles, against an in-memory API (the real API server is exercised in
integration)."""

from __future__ import annotations

from typing import Any

from lighthouse_operator import builders, naming, observe
from lighthouse_operator.applier import Applier, ApplyReport
from lighthouse_operator.models import LighthouseBridge

from .fakes import FakeKube, reconciler
from .fakes import applier as new_applier


def make(spec: dict[str, Any] | None = None, uid: str = "cr-uid") -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {"metadata": {"name": "demo", "namespace": "ns", "uid": uid, "generation": 1}, "spec": spec or {}}
    )


async def full_pass(applier: Applier, lhb: LighthouseBridge) -> ApplyReport:
    observed = await observe.children(applier.reader, lhb)
    await applier.ensure_secrets(lhb)
    desired = builders.desired_children(lhb)
    report = await applier.apply(lhb, desired, observed)
    await applier.prune(lhb, desired, report)
    return report


async def test_second_pass_writes_nothing() -> None:
    kube = FakeKube()
    applier = new_applier(kube)
    first = await full_pass(applier, make())
    assert len(first.created) == len(builders.desired_children(make()))
    n = len(kube.writes)
    second = await full_pass(new_applier(kube), make())  # a fresh applier: no cache, e.g. after a restart
    assert second.writes == 0 and len(kube.writes) == n


async def test_hand_edit_and_deletion_are_restored() -> None:
    kube = FakeKube()
    applier = new_applier(kube)
    await full_pass(applier, make())
    kube.edit(
        "Deployment", "ns", "demo-bridge", lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="evil")
    )
    del kube.objects[("Service", "ns", "demo-bridge")]
    report = await full_pass(applier, make())
    assert report.updated == ["Deployment/demo-bridge"]
    assert report.created == ["Service/demo-bridge"]
    dep = kube.objects[("Deployment", "ns", "demo-bridge")]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] != "evil"


async def test_spec_change_updates_only_affected_children() -> None:
    kube = FakeKube()
    applier = new_applier(kube)
    await full_pass(applier, make())
    report = await full_pass(applier, make({"replicas": 3}))
    assert report.updated == ["Deployment/demo-bridge"]
    assert report.created == ["PodDisruptionBudget/demo-bridge"]
    report = await full_pass(applier, make({"replicas": 1, "networkPolicy": {"enabled": False}}))
    assert sorted(report.pruned) == [
        "NetworkPolicy/demo-postgres",
        "NetworkPolicy/demo-redis",
        "PodDisruptionBudget/demo-bridge",
    ]


async def test_generated_secrets_are_created_once_and_user_secrets_respected() -> None:
    kube = FakeKube()
    kube.objects[("Secret", "ns", "demo-admin-token")] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "demo-admin-token", "namespace": "ns", "resourceVersion": "1"},
        "data": {"token": "mine"},
    }
    applier = new_applier(kube)
    r1 = await applier.ensure_secrets(make())
    assert sorted(r1.created) == ["demo-postgres-credentials", "demo-redis-credentials"]
    assert r1.user_supplied == ["demo-admin-token"]
    pw = kube.objects[("Secret", "ns", "demo-postgres-credentials")]["data"]["password"]
    r2 = await applier.ensure_secrets(make())
    assert r2.created == [] and r2.adopted == []
    assert kube.objects[("Secret", "ns", "demo-postgres-credentials")]["data"]["password"] == pw
    assert kube.objects[("Secret", "ns", "demo-admin-token")]["data"] == {"token": "mine"}
    assert "ownerReferences" not in kube.objects[("Secret", "ns", "demo-admin-token")]["metadata"]


async def test_retain_orphans_and_a_new_bridge_adopts_with_the_same_password() -> None:
    kube = FakeKube()
    applier = new_applier(kube)
    await full_pass(applier, make(uid="old"))
    pw = kube.objects[("Secret", "ns", "demo-postgres-credentials")]["data"]["password"]
    done = await applier.release(make(uid="old"))
    assert "retained Secret/demo-postgres-credentials" in done
    sec = kube.objects[("Secret", "ns", "demo-postgres-credentials")]["metadata"]
    assert "ownerReferences" not in sec and sec["labels"][naming.L_RETAINED] == "true"
    r = await applier.ensure_secrets(make(uid="new"))
    assert "demo-postgres-credentials" in r.adopted
    sec = kube.objects[("Secret", "ns", "demo-postgres-credentials")]
    assert sec["metadata"]["ownerReferences"][0]["uid"] == "new"
    assert naming.L_RETAINED not in sec["metadata"]["labels"]
    assert sec["data"]["password"] == pw


async def test_delete_policy_removes_secrets_and_pvcs() -> None:
    kube = FakeKube()
    applier = new_applier(kube)
    await full_pass(applier, make())
    kube.objects[("PersistentVolumeClaim", "ns", "data-demo-postgres-0")] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "data-demo-postgres-0",
            "namespace": "ns",
            "uid": "pvc",
            "resourceVersion": "1",
            "labels": naming.labels("demo", "postgres"),
        },
    }
    done = await applier.release(make({"deletionPolicy": "Delete"}))
    assert "deleted PersistentVolumeClaim/data-demo-postgres-0" in done
    assert not [k for k in kube.objects if k[0] in ("Secret", "PersistentVolumeClaim")]


async def test_reconcile_twice_is_idle_and_invalid_spec_touches_nothing() -> None:
    kube = FakeKube()
    body = {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "cr", "generation": 1, "finalizers": [naming.FINALIZER]},
        "spec": {},
    }
    kube.objects[("LighthouseBridge", "ns", "demo")] = body
    r = reconciler(kube)
    out = await r.trigger("ns", "demo", "test")
    assert out is not None and out.writes > 0
    status = kube.objects[("LighthouseBridge", "ns", "demo")]["status"]
    assert status["observedGeneration"] == 1 and status["phase"] in ("Progressing", "Degraded")
    n = len(kube.writes)
    out = await r.trigger("ns", "demo", "test")
    assert out is not None and out.result == "unchanged" and len(kube.writes) == n

    bad = {
        **body,
        "metadata": {**body["metadata"], "name": "bad", "generation": 2},
        "spec": {"backup": {"schedule": "whenever", "s3": {"bucket": "bkt"}}},
    }
    kube.objects[("LighthouseBridge", "ns", "bad")] = bad
    before = {k for k in kube.objects if k[2].startswith("bad-")}
    out = await r.trigger("ns", "bad", "test")
    assert out is not None and out.result == "stalled"
    assert {k for k in kube.objects if k[2].startswith("bad-")} == before == set()
    st = kube.objects[("LighthouseBridge", "ns", "bad")]["status"]
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec" and "whenever" in stalled["message"]
    assert ("Warning", "InvalidSpec", stalled["message"]) in kube.events
    n = len(kube.writes)
    await r.trigger("ns", "bad", "test")
    assert len(kube.writes) == n  # no repeated status write, and no repeated Warning


async def test_missing_external_secret_stalls() -> None:
    kube = FakeKube()
    kube.objects[("LighthouseBridge", "ns", "demo")] = {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "cr", "generation": 1, "finalizers": [naming.FINALIZER]},
        "spec": {"redis": {"mode": "external", "external": {"secretRef": {"name": "shared"}}}},
    }
    out = await reconciler(kube).trigger("ns", "demo", "test")  # type: ignore[arg-type]
    assert out is not None and out.result == "stalled"
    st = kube.objects[("LighthouseBridge", "ns", "demo")]["status"]
    assert "Secret ns/shared not found" in next(c for c in st["conditions"] if c["type"] == "Stalled")["message"]


async def test_service_monitor_follows_the_spec_and_a_missing_crd_is_a_warning() -> None:
    from lighthouse_operator.builders import monitoring

    kube = FakeKube()
    applier = new_applier(kube)
    on = make({"monitoring": {"serviceMonitor": True}})
    report = await full_pass(applier, on)
    await applier.apply_optional(
        on, "monitoring.coreos.com/v1", "ServiceMonitor", "demo-bridge", monitoring.service_monitor(on), report
    )
    sm = kube.objects[("ServiceMonitor", "ns", "demo-bridge")]
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    off = make()
    report = await full_pass(applier, off)
    await applier.apply_optional(
        off, "monitoring.coreos.com/v1", "ServiceMonitor", "demo-bridge", monitoring.service_monitor(off), report
    )
    assert ("ServiceMonitor", "ns", "demo-bridge") not in kube.objects
    assert report.pruned == ["ServiceMonitor/demo-bridge"]
    kube.missing_kinds.add("ServiceMonitor")
    report = await full_pass(applier, on)
    await applier.apply_optional(
        on, "monitoring.coreos.com/v1", "ServiceMonitor", "demo-bridge", monitoring.service_monitor(on), report
    )
    assert report.warnings == ["ServiceMonitor requested but its CRD (monitoring.coreos.com/v1) is not installed"]


async def test_nothing_happens_before_the_finalizer_is_in_place() -> None:
    kube = FakeKube()
    kube.objects[("LighthouseBridge", "ns", "demo")] = {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "cr", "generation": 1},
        "spec": {},
    }
    out = await reconciler(kube).trigger("ns", "demo", "test")  # type: ignore[arg-type]
    assert out is not None and out.result == "waiting-for-finalizer"
    assert kube.writes == []

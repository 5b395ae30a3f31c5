"""Status: one composition of fragments, the roll-up's kstatus semantics, Ready only for the current generation (the
revision the health gate computes, revision.for_bridge), no churn when nothing changed."""

from __future__ import annotations

from typing import Any

from lighthouse_operator import naming, revision
from lighthouse_operator import status as st
from lighthouse_operator.builders import bridge
from lighthouse_operator.models import LighthouseBridge
from lighthouse_operator.reconcile import decide


def make(spec: dict[str, Any] | None = None, generation: int = 2, status: dict | None = None) -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {
            "metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": generation},
            "spec": spec or {},
            "status": status or {},
        }
    )


def rev(lhb: LighthouseBridge) -> str:
    """The bridge revision as the health gate computes it (no referenced Secret exists here)."""
    return revision.for_bridge(lhb, bridge.deployment(lhb), {})


def assess(lhb: LighthouseBridge, kids: dict) -> dict[str, st.Health]:
    return st.assess_children(lhb, kids, rev(lhb))


def build(lhb: LighthouseBridge, a: st.Assessment, when: str | None = None) -> dict:
    return st.compose(lhb.status, lhb.metadata.generation, [st.rollup(lhb, a)], when)


def deployment(
    lhb: LighthouseBridge,
    *,
    ready: int,
    revision: str | None = None,
    observed_gen: int = 5,
    gen: int = 5,
    updated: int | None = None,
    conditions: list | None = None,
) -> dict:
    replicas = lhb.spec.replicas
    return {
        "metadata": {"name": "demo-bridge", "generation": gen},
        "spec": {
            "replicas": replicas,
            "template": {"metadata": {"annotations": {naming.A_REVISION: revision or rev(lhb)}}},
        },
        "status": {
            "observedGeneration": observed_gen,
            "replicas": replicas,
            "updatedReplicas": replicas if updated is None else updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions or [],
        },
    }


def sts(ready: int = 1) -> dict:
    return {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {
            "observedGeneration": 1,
            "readyReplicas": ready,
            "updatedReplicas": 1,
            "currentRevision": "a",
            "updateRevision": "a",
        },
    }


def children(lhb: LighthouseBridge, dep: dict | None, pg: int = 1, rd: int = 1) -> dict:
    return {
        ("Deployment", "demo-bridge"): dep,
        ("StatefulSet", "demo-postgres"): sts(pg),
        ("StatefulSet", "demo-redis"): sts(rd),
    }


def cond(status: dict, t: str) -> dict:
    c = st.find(status, t)
    assert c is not None, t
    return c


def test_all_ready_means_ready_true_with_generation() -> None:
    lhb = make()
    comps = assess(lhb, children(lhb, deployment(lhb, ready=1)))
    s = build(lhb, st.Assessment(components=comps, revision=rev(lhb)), when="T0")
    assert s["observedGeneration"] == 2 and s["phase"] == "Ready"
    assert cond(s, "Ready")["status"] == "True" and cond(s, "Ready")["observedGeneration"] == 2
    assert cond(s, "Reconciling")["status"] == "False" and cond(s, "Stalled")["status"] == "False"
    assert s["replicaSummary"] == "1/1" and s["readyReplicas"] == 1
    assert (
        s["selector"] == "app.kubernetes.io/name=lighthouse,app.kubernetes.io/instance=demo,"
        "app.kubernetes.io/component=bridge"
    )
    assert s["revisions"]["desired"] == s["revisions"]["serving"] == s["revisions"]["lastGood"] == rev(lhb)
    assert s["components"]["postgres"] == {"ready": 1, "desired": 1, "message": "1/1 ready"}


def test_old_revision_is_not_ready_even_if_pods_are() -> None:
    lhb = make({"image": "new:2"})
    dep = deployment(lhb, ready=1, revision="oldrevision")
    s = build(lhb, st.Assessment(components=assess(lhb, children(lhb, dep))))
    assert cond(s, "Ready")["status"] == "False"
    assert cond(s, "Reconciling")["status"] == "True"
    assert s["phase"] == "Progressing"


def test_unobserved_deployment_generation_is_not_ready() -> None:
    lhb = make()
    s = build(
        lhb,
        st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1, observed_gen=4, gen=5)))),
    )
    assert cond(s, "Ready")["status"] == "False"


def test_missing_children_and_unready_store() -> None:
    lhb = make()
    s = build(lhb, st.Assessment(components=assess(lhb, {})))
    assert cond(s, "Ready")["status"] == "False" and "not created yet" in cond(s, "Ready")["message"]
    s2 = build(lhb, st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1), pg=0))))
    assert cond(s2, "Ready")["status"] == "False" and "postgres" in cond(s2, "Ready")["message"]
    assert s2["phase"] == "Progressing"


def test_progress_deadline_is_degraded() -> None:
    lhb = make()
    dep = deployment(
        lhb,
        ready=0,
        updated=0,
        conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
    )
    s = build(lhb, st.Assessment(components=assess(lhb, children(lhb, dep))))
    assert cond(s, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert cond(s, "Degraded")["status"] == "True" and s["phase"] == "Degraded"


def test_unchanged_inputs_give_identical_status_and_no_patch() -> None:
    lhb = make()
    a = st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1))))
    first = build(lhb, a, when="T0")
    again = build(make(status=first), a, when="T1")
    assert again == first  # lastTransitionTime kept: no status flip
    assert st.merge_patch(first, again) is None


def test_transition_time_moves_only_on_flip() -> None:
    lhb = make()
    ready = build(lhb, st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1)))), when="T0")
    notready = build(make(status=ready), st.Assessment(components=assess(lhb, {})), when="T1")
    assert cond(notready, "Ready")["lastTransitionTime"] == "T1"
    assert cond(notready, "Stalled")["lastTransitionTime"] == "T0"


def test_foreign_conditions_survive() -> None:
    lhb = make(
        status={
            "conditions": [
                {
                    "type": "BackupSucceeded",
                    "status": "True",
                    "reason": "Done",
                    "message": "",
                    "lastTransitionTime": "T",
                }
            ],
            "lastSuccessfulBackupTime": "X",
        }
    )
    s = build(lhb, st.Assessment(components=assess(lhb, {})))
    assert cond(s, "BackupSucceeded")["reason"] == "Done"
    assert s["lastSuccessfulBackupTime"] == "X"


def test_reconciling_first_marks_new_generation_not_ready() -> None:
    old = build(
        make(generation=1),
        st.Assessment(components=assess(make(generation=1), children(make(), deployment(make(), ready=1)))),
        when="T0",
    )
    assert cond(old, "Ready")["status"] == "True"
    first = st.compose(old, 2, [st.reconciling_first(2)], "T1")
    assert first["observedGeneration"] == 2
    assert cond(first, "Ready")["status"] == "False" and cond(first, "Ready")["observedGeneration"] == 2
    assert cond(first, "Reconciling")["status"] == "True"


def test_paused_and_stalled() -> None:
    lhb = make({"paused": True})
    s = build(lhb, st.Assessment(paused=True, components=assess(lhb, {})))
    assert s["phase"] == "Paused" and cond(s, "Reconciling")["reason"] == "Paused"
    stalled = st.compose({}, 4, [st.stalled("InvalidSpec", "backup.schedule bad", 4)])
    assert stalled["phase"] == "Stalled" and stalled["observedGeneration"] == 4
    assert cond(stalled, "Stalled")["status"] == "True" and cond(stalled, "Ready")["status"] == "False"


def test_merge_patch_removes_nested_keys() -> None:
    old = {"components": {"bridge": {"ready": 1}, "backup": {"ready": 1}}, "phase": "Ready", "x": 1}
    new = {"components": {"bridge": {"ready": 1}}, "phase": "Ready"}
    assert st.merge_patch(old, new) == {"x": None, "components": {"backup": None}}


def test_decide() -> None:
    assert decide(3, {"observedGeneration": 3}, [], [], False).action == "apply"
    assert decide(3, {"observedGeneration": 2}, [], [], False).mark_reconciling
    d = decide(3, {}, ["bad"], ["missing"], True)
    assert (d.action, d.reason) == ("stall", "InvalidSpec")
    assert decide(3, {}, [], ["missing"], False).reason == "MissingReference"
    assert decide(3, {"observedGeneration": 3}, [], [], True).action == "pause"


def test_scaled_to_zero_is_ready_but_not_available() -> None:
    lhb = make({"replicas": 0})
    s = build(lhb, st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=0)))))
    assert cond(s, "Ready")["status"] == "True"
    assert cond(s, "Available")["reason"] == "ScaledToZero"


def test_first_start_is_progressing_and_losing_readiness_is_degraded() -> None:
    lhb = make()
    starting = build(
        lhb, st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1), pg=0))), when="T0"
    )
    assert starting["phase"] == "Progressing" and cond(starting, "Degraded")["status"] == "False"
    ready = build(
        make(status=starting),
        st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1)))),
        when="T1",
    )
    assert ready["phase"] == "Ready"
    lost = build(
        make(status=ready),
        st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1), rd=0))),
        when="T2",
    )
    assert lost["phase"] == "Degraded" and cond(lost, "Degraded")["status"] == "True"
    assert "redis" in cond(lost, "Degraded")["message"]
    still = build(
        make(status=lost),
        st.Assessment(components=assess(lhb, children(lhb, deployment(lhb, ready=1), rd=0))),
        when="T3",
    )
    assert still["phase"] == "Degraded"


def test_compose_keeps_places_and_transition_times_and_removes_on_request() -> None:
    old = {
        "phase": "Ready",
        "lastBackup": {"name": "b1"},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "lastTransitionTime": "T0"},
            {"type": "BackupSucceeded", "status": "True", "reason": "BackupSucceeded", "lastTransitionTime": "T0"},
            {"type": "Stalled", "status": "False", "reason": "Reconciled", "lastTransitionTime": "T0"},
        ],
    }
    a = st.Fragment(conditions=(st.condition("Ready", False, "X", "x", 3), st.condition("New", True, "Y", "", 3)))
    b = st.Fragment(fields={"lastBackup": None, "extra": 1}, remove=frozenset({"BackupSucceeded"}), phase="Degraded")
    out = st.compose(old, 3, [a, None, b], "T1")
    assert [c["type"] for c in out["conditions"]] == ["Ready", "Stalled", "New"]  # in place; new ones appended
    assert cond(out, "Ready")["lastTransitionTime"] == "T1" and cond(out, "New")["lastTransitionTime"] == "T1"
    assert cond(out, "Stalled")["lastTransitionTime"] == "T0"  # nobody said anything about it: kept as it was
    assert out["phase"] == "Degraded" and out["observedGeneration"] == 3 and out["extra"] == 1
    assert "lastBackup" not in out
    # A later fragment wins per condition type; the time moves only against the old status.
    again = st.Fragment(conditions=(st.condition("Ready", True, "Ready", "", 3),))
    out = st.compose(old, 3, [a, again], "T2")
    assert cond(out, "Ready")["reason"] == "Ready" and cond(out, "Ready")["lastTransitionTime"] == "T0"


def test_roll_up_without_a_known_revision_is_not_up_to_date() -> None:
    lhb = make()
    h = st.assess_children(lhb, children(lhb, deployment(lhb, ready=1)), None)["bridge"]
    assert not h.up_to_date and not h.healthy

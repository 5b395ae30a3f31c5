"""Status roll-up: kstatus semantics, Ready only for the current generation, no churn when nothing changed."""

from __future__ import annotations

from typing import Any

from lighthouse_operator import naming
from lighthouse_operator import status as st
from lighthouse_operator.builders import bridge
from lighthouse_operator.models import LighthouseBridge
from lighthouse_operator.reconcile import decide, stalled_status


def make(spec: dict[str, Any] | None = None, generation: int = 2, status: dict | None = None) -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {
            "metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": generation},
            "spec": spec or {},
            "status": status or {},
        }
    )


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
            "template": {"metadata": {"annotations": {naming.A_REVISION: revision or bridge.revision(lhb)}}},
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
    c = st.condition(status, t)
    assert c is not None, t
    return c


def test_all_ready_means_ready_true_with_generation() -> None:
    lhb = make()
    s = st.build(
        lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1)))), when="T0"
    )
    assert s["observedGeneration"] == 2 and s["phase"] == "Ready"
    assert cond(s, "Ready")["status"] == "True" and cond(s, "Ready")["observedGeneration"] == 2
    assert cond(s, "Reconciling")["status"] == "False" and cond(s, "Stalled")["status"] == "False"
    assert s["replicaSummary"] == "1/1" and s["readyReplicas"] == 1
    assert (
        s["selector"] == "app.kubernetes.io/name=lighthouse,app.kubernetes.io/instance=demo,"
        "app.kubernetes.io/component=bridge"
    )
    assert s["revisions"]["desired"] == s["revisions"]["serving"] == s["revisions"]["lastGood"]
    assert s["components"]["postgres"] == {"ready": 1, "desired": 1, "message": "1/1 ready"}


def test_old_revision_is_not_ready_even_if_pods_are() -> None:
    lhb = make({"image": "new:2"})
    dep = deployment(lhb, ready=1, revision="oldrevision")
    s = st.build(lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, dep))))
    assert cond(s, "Ready")["status"] == "False"
    assert cond(s, "Reconciling")["status"] == "True"
    assert s["phase"] == "Progressing"


def test_unobserved_deployment_generation_is_not_ready() -> None:
    lhb = make()
    s = st.build(
        lhb,
        st.Assessment(
            components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1, observed_gen=4, gen=5)))
        ),
    )
    assert cond(s, "Ready")["status"] == "False"


def test_missing_children_and_unready_store() -> None:
    lhb = make()
    s = st.build(lhb, st.Assessment(components=st.assess_children(lhb, {})))
    assert cond(s, "Ready")["status"] == "False" and "not created yet" in cond(s, "Ready")["message"]
    s2 = st.build(lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1), pg=0))))
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
    s = st.build(lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, dep))))
    assert cond(s, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert cond(s, "Degraded")["status"] == "True" and s["phase"] == "Degraded"


def test_unchanged_inputs_give_identical_status_and_no_patch() -> None:
    lhb = make()
    a = st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1))))
    first = st.build(lhb, a, when="T0")
    again = st.build(make(status=first), a, when="T1")
    assert again == first  # lastTransitionTime kept: no status flip
    assert st.merge_patch(first, again) is None


def test_transition_time_moves_only_on_flip() -> None:
    lhb = make()
    ready = st.build(
        lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1)))), when="T0"
    )
    notready = st.build(make(status=ready), st.Assessment(components=st.assess_children(lhb, {})), when="T1")
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
    s = st.build(lhb, st.Assessment(components=st.assess_children(lhb, {})))
    assert cond(s, "BackupSucceeded")["reason"] == "Done"
    assert s["lastSuccessfulBackupTime"] == "X"


def test_reconciling_first_marks_new_generation_not_ready() -> None:
    old = st.build(
        make(generation=1),
        st.Assessment(components=st.assess_children(make(generation=1), children(make(), deployment(make(), ready=1)))),
        when="T0",
    )
    assert cond(old, "Ready")["status"] == "True"
    first = st.reconciling_first(make(generation=2, status=old), when="T1")
    assert first["observedGeneration"] == 2
    assert cond(first, "Ready")["status"] == "False" and cond(first, "Ready")["observedGeneration"] == 2
    assert cond(first, "Reconciling")["status"] == "True"


def test_paused_and_stalled() -> None:
    lhb = make({"paused": True})
    s = st.build(lhb, st.Assessment(paused=True, components=st.assess_children(lhb, {})))
    assert s["phase"] == "Paused" and cond(s, "Reconciling")["reason"] == "Paused"
    stalled = stalled_status({}, 4, "InvalidSpec", "backup.schedule bad")
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
    s = st.build(lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=0)))))
    assert cond(s, "Ready")["status"] == "True"
    assert cond(s, "Available")["reason"] == "ScaledToZero"


def test_first_start_is_progressing_and_losing_readiness_is_degraded() -> None:
    lhb = make()
    starting = st.build(
        lhb, st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1), pg=0))), when="T0"
    )
    assert starting["phase"] == "Progressing" and cond(starting, "Degraded")["status"] == "False"
    ready = st.build(
        make(status=starting),
        st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1)))),
        when="T1",
    )
    assert ready["phase"] == "Ready"
    lost = st.build(
        make(status=ready),
        st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1), rd=0))),
        when="T2",
    )
    assert lost["phase"] == "Degraded" and cond(lost, "Degraded")["status"] == "True"
    assert "redis" in cond(lost, "Degraded")["message"]
    still = st.build(
        make(status=lost),
        st.Assessment(components=st.assess_children(lhb, children(lhb, deployment(lhb, ready=1), rd=0))),
        when="T3",
    )
    assert still["phase"] == "Degraded"

"""The health gate, judged on objects captured from the real control plane (tests/unit/operator/fixtures/rollout).

The fixtures were captured on the kwok cluster (hack/cluster.sh) with a 2-replica surge-only Deployment whose pod
template carries `lighthouse.dev/revision` r1..r4, and a one-replica OrderedReady StatefulSet:
healthy (r1 serving) -> r2 with a `broken` image (broken_early: 1 restart, broken_restarts: 4, broken_deadline: the
Deployment's own ProgressDeadlineExceeded) -> restored (template back to r1: the old ReplicaSet is reused) -> r3 with
a `pullfail` image (ErrImagePull, then ImagePullBackOff) -> r4 with an impossible nodeSelector (Unschedulable);
the StatefulSet moved to a `broken` image (sts_broken), was reverted (sts_reverted_stuck: the pod stays stuck on the
broken revision), and its pod deleted (sts_after_delete); `kubectl rollout restart` midway and done.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lighthouse_operator import clock, events, gate, metrics, naming, rollout
from lighthouse_operator.models import RolloutSpec
from lighthouse_operator.rollout import Policy, Record, judge

FIXTURES = Path(__file__).parent / "fixtures" / "rollout"
T0 = datetime.datetime(2026, 11, 29, 20, 33, 10, tzinfo=datetime.UTC)
POLICY = Policy()  # Rollback, 3 restarts, 600 s


@dataclass
class Scene:
    deployment: dict[str, Any]
    replicasets: list[dict[str, Any]]
    pods: list[dict[str, Any]]  # bridge (web) pods
    sts: dict[str, Any] | None
    sts_pods: list[dict[str, Any]]

    def view(self, policy: Policy = POLICY) -> rollout.View:
        v = rollout.view_deployment(self.deployment, self.replicasets, self.pods, policy)
        assert v is not None
        return v

    def sts_view(self, revision: str, policy: Policy = POLICY) -> rollout.View:
        """The StatefulSet as the operator would have stamped it (its template carries our revision)."""
        sts = copy.deepcopy(self.sts)
        assert sts is not None
        sts["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})[naming.A_REVISION] = revision
        v = rollout.view_statefulset(sts, self.sts_pods, policy)
        assert v is not None
        return v


def scene(name: str) -> Scene:
    items = json.loads((FIXTURES / f"{name}.json").read_text())["items"]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for o in items:
        by_kind.setdefault(o["kind"], []).append(o)
    pods = by_kind.get("Pod", [])
    sts = by_kind.get("StatefulSet", [None])[0]
    return Scene(
        by_kind["Deployment"][0],
        by_kind.get("ReplicaSet", []),
        [p for p in pods if p["metadata"]["labels"].get("app") == "web"],
        sts,
        [p for p in pods if p["metadata"]["labels"].get("app") == "db"],
    )


def progressing(revision: str, last_good: str | None = "r1", started: datetime.datetime = T0) -> Record:
    return Record(revision=revision, started_at=clock.stamp(started), phase="Progressing", last_good=last_good)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


# ------------------------------------------------------------------------------------------- reading pod status


def test_healthy_deployment_view() -> None:
    v = scene("healthy").view()
    assert v.caught_up and v.revision == "r1" and v.complete
    assert (v.replicas, v.ready) == (2, 2)
    assert v.signals == () and v.controller_failure is None
    assert v.serving == "r1"


def test_crash_loop_below_the_threshold_is_not_a_failure_yet() -> None:
    v = scene("broken_early").view()
    assert v.caught_up and v.revision == "r2" and not v.complete
    assert v.signals == ()  # 1 restart < 3
    assert v.serving == "r1"  # the old pods keep serving


def test_crash_loop_at_the_threshold_is_a_failure_of_the_new_pods_only() -> None:
    v = scene("broken_restarts").view()
    assert [s.reason for s in v.signals] == ["CrashLoopBackOff"]
    assert v.signals[0].pod.startswith("web-689dbfb996-")  # the r2 ReplicaSet's pod, never an r1 pod
    assert "after 4 restarts" in v.signals[0].message
    assert scene("broken_restarts").view(Policy(crash_loop_restarts=5)).signals == ()


@pytest.mark.parametrize(
    ("name", "reason"),
    [("pullfail_early", "ErrImagePull"), ("pullfail_backoff", "ImagePullBackOff"), ("unschedulable", "Unschedulable")],
)
def test_image_pull_and_scheduling_failures_are_signals_at_once(name: str, reason: str) -> None:
    v = scene(name).view(Policy(crash_loop_restarts=100))
    assert [s.reason for s in v.signals] == [reason]
    assert v.serving == "r1"


def test_the_deployments_own_deadline_verdict_is_read_for_the_new_replicaset() -> None:
    v = scene("broken_deadline").view()
    assert v.controller_failure is not None and "web-689dbfb996" in v.controller_failure
    # A verdict about another ReplicaSet (an earlier rollout) is not this rollout's.
    s = scene("broken_deadline")
    for c in s.deployment["status"]["conditions"]:
        if c["type"] == "Progressing":
            c["message"] = 'ReplicaSet "web-5dd994f96b" has timed out progressing.'
    assert s.view().controller_failure is None


def test_restored_template_reuses_the_old_replicaset() -> None:
    v = scene("restored").view()
    assert v.revision == "r1" and v.complete and v.serving == "r1"
    rs = rollout.new_replicaset(scene("restored").deployment, scene("restored").replicasets)
    assert rs is not None and rs["metadata"]["name"] == "web-5fb654ff84"


def test_controller_not_caught_up_is_not_judged() -> None:
    s = scene("broken_restarts")
    dep = copy.deepcopy(s.deployment)
    dep["metadata"]["generation"] += 1  # the operator just applied r5; the controller has not seen it
    dep["spec"]["template"]["metadata"]["annotations"][naming.A_REVISION] = "r5"
    v = rollout.view_deployment(dep, s.replicasets, s.pods, POLICY)
    assert v is not None and not v.caught_up and v.signals == ()
    d = judge("r5", v, progressing("r5"), POLICY, at(10))
    assert d.action == "wait"


def test_pod_signals_reads_init_containers_and_ignores_other_waiting_reasons() -> None:
    pod = {
        "metadata": {"name": "p"},
        "status": {
            "initContainerStatuses": [
                {"name": "init", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
            ],
            "containerStatuses": [
                {"name": "c", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    }
    assert [s.reason for s in rollout.pod_signals(pod, POLICY)] == ["CrashLoopBackOff"]
    pod["status"]["initContainerStatuses"][0]["restartCount"] = 2
    assert rollout.pod_signals(pod, POLICY) == []
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert rollout.pod_signals(pod, POLICY) == []


# ------------------------------------------------------------------------------------------------------ judging


def test_a_new_desired_revision_starts_a_rollout_and_records_its_start() -> None:
    prev = Record(revision="r1", started_at="2026-11-29T20:00:00Z", phase="Complete", last_good="r1")
    d = judge("r2", scene("healthy").view(), prev, POLICY, T0)
    assert d.action == "proceed" and d.fresh and d.applies_desired
    assert d.record == Record(revision="r2", started_at="2026-11-29T20:33:10Z", phase="Progressing", last_good="r1")


def test_a_good_rollout_completes_and_advances_last_good() -> None:
    s = scene("kubectl_restart_done")  # any fully rolled r1 Deployment
    d = judge("r1", s.view(), progressing("r1", last_good="r0"), POLICY, at(5))
    assert d.action == "complete" and d.fresh
    assert d.record.phase == "Complete" and d.record.last_good == "r1"
    assert rollout.revisions(d, s.view()) == {"desired": "r1", "serving": "r1", "lastGood": "r1"}
    # Steady state: no new transition on the next pass.
    again = judge("r1", s.view(), d.record, POLICY, at(60))
    assert again.action == "complete" and not again.fresh and again.record == d.record


def test_in_progress_within_the_deadline_waits() -> None:
    d = judge("r2", scene("broken_early").view(), progressing("r2"), POLICY, at(20))
    assert d.action == "wait" and not d.fresh
    assert d.record == progressing("r2")
    assert "0/2 ready" in d.message


def test_crash_loop_rolls_back_to_last_good() -> None:
    d = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    assert d.action == "rollback" and d.fresh and not d.applies_desired
    assert d.reason == "CrashLoopBackOff"
    assert d.failed_revision == "r2" and d.restore == "r1"
    assert d.detected_at == "2026-11-29T20:33:29Z"
    assert d.record.phase == "Failed" and d.record.failed_revision == "r2" and d.record.last_good == "r1"
    assert "revision r2 failed" in d.message and "CrashLoopBackOff" in d.message and "r1" in d.message


@pytest.mark.parametrize(
    ("name", "reason"),
    [("pullfail_early", "ErrImagePull"), ("pullfail_backoff", "ImagePullBackOff"), ("unschedulable", "Unschedulable")],
)
def test_pull_and_scheduling_failures_do_not_wait_for_the_deadline(name: str, reason: str) -> None:
    s = scene(name)
    rev = s.view().revision
    assert rev is not None
    d = judge(rev, s.view(), progressing(rev), Policy(progress_deadline_seconds=3600), at(2))
    assert d.action == "rollback" and d.reason == reason and d.restore == "r1"


def test_deadline_counts_from_the_recorded_start() -> None:
    policy = Policy(crash_loop_restarts=100, progress_deadline_seconds=60)
    v = scene("broken_early").view(policy)
    assert judge("r2", v, progressing("r2"), policy, at(59)).action == "wait"
    d = judge("r2", v, progressing("r2"), policy, at(60))
    assert d.action == "rollback" and d.reason == "ProgressDeadlineExceeded"
    assert "0/2 pods of revision r2 Ready after 60s" in d.record.message
    assert "2026-11-29T20:33:10Z" in d.record.message


def test_a_flapping_ready_count_does_not_reset_the_deadline() -> None:
    policy = Policy(crash_loop_restarts=100, progress_deadline_seconds=60)
    s = scene("broken_early")
    flapping = [1, 0, 1, 0, 1]  # one r2 pod turns Ready and NotReady again and again
    rec = progressing("r2")
    for i, ready in enumerate(flapping):
        v = rollout.view_deployment(s.deployment, s.replicasets, [set_ready(p, ready == 1) for p in s.pods], policy)
        assert v is not None and v.ready == ready
        d = judge("r2", v, rec, policy, at(10 * i + 10))
        assert d.action == "wait"
        assert d.record.started_at == rec.started_at
        rec = d.record
    v = rollout.view_deployment(s.deployment, s.replicasets, [set_ready(p, True) for p in s.pods], policy)
    assert v is not None
    d = judge("r2", v, rec, policy, at(61))
    assert d.action == "rollback" and d.reason == "ProgressDeadlineExceeded"
    assert "1/2 pods of revision r2 Ready" in d.record.message


def set_ready(pod: dict[str, Any], ready: bool) -> dict[str, Any]:
    """A pod of the r2 ReplicaSet made Ready (or not), as kwok's pod-ready stage writes it."""
    p = copy.deepcopy(pod)
    if p["metadata"]["labels"].get("pod-template-hash") == "689dbfb996":
        for c in p["status"]["conditions"]:
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = "True" if ready else "False"
        for cs in p["status"]["containerStatuses"]:
            cs["state"] = {"running": {"startedAt": "2026-11-29T20:33:12Z"}} if ready else cs["state"]
            cs["ready"] = ready
            cs["restartCount"] = 0
    return p


def test_the_deployment_controllers_own_deadline_fails_the_rollout() -> None:
    d = judge("r2", scene("broken_deadline").view(Policy(crash_loop_restarts=100)), progressing("r2"), POLICY, at(40))
    assert d.action == "rollback" and d.reason == "ProgressDeadlineExceeded"


def test_a_failed_revision_is_not_retried_until_desired_changes() -> None:
    failed = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    # Next passes: the Deployment runs r1 again (restored); r2 is still desired and still not retried.
    for when in (30, 600, 6000):
        d = judge("r2", scene("restored").view(), failed.record, POLICY, at(when))
        assert d.action == "rollback" and not d.fresh and d.restore == "r1"
        assert d.record == failed.record
    # A new desired revision (a fixed spec, a nonce, a new Secret content) rolls out normally.
    d = judge("r5", scene("restored").view(), failed.record, POLICY, at(700))
    assert d.action == "proceed" and d.fresh
    assert d.record == Record(revision="r5", started_at=clock.stamp(at(700)), phase="Progressing", last_good="r1")


def test_going_back_to_the_last_good_spec_completes_at_once() -> None:
    failed = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    d = judge("r1", scene("restored").view(), failed.record, POLICY, at(30))
    assert d.action == "complete" and d.fresh and d.record.phase == "Complete" and d.record.last_good == "r1"
    assert d.record.failed_revision is None


def test_freeze_mode_pauses_instead_of_rolling_back() -> None:
    policy = Policy(on_failure="Freeze")
    d = judge("r2", scene("broken_restarts").view(policy), progressing("r2"), policy, at(19))
    assert d.action == "freeze" and d.fresh and d.restore is None
    assert d.failed_revision == "r2" and "Freeze" in d.message
    shaped = rollout.shape_workload(scene("broken_restarts").deployment, d, None)
    assert shaped["spec"]["paused"] is True
    assert shaped["spec"]["template"] == scene("broken_restarts").deployment["spec"]["template"]
    # Switching the policy to Rollback while frozen rolls back (still the same failed revision, no new event).
    later = judge("r2", scene("broken_restarts").view(), d.record, POLICY, at(30))
    assert later.action == "rollback" and not later.fresh


def test_a_first_rollout_that_fails_has_nothing_to_roll_back_to() -> None:
    d = judge("r2", scene("broken_restarts").view(), progressing("r2", last_good=None), POLICY, at(19))
    assert d.action == "freeze" and d.restore is None
    assert "no last-good revision" in d.message


def test_a_frozen_first_revision_that_comes_up_ready_completes() -> None:
    """Issue 17 (chaos round 73): a first revision frozen on a transient failure (a Redis pod Unschedulable until the
    provisioner created its volume) must not stay frozen once its workload is fully available."""
    stuck = scene("unschedulable").view()
    rev = stuck.revision
    assert rev is not None
    frozen = judge(rev, stuck, progressing(rev, last_good=None), POLICY, at(2))
    assert frozen.action == "freeze" and frozen.record.phase == "Failed"
    # Still failing on the next pass: still frozen, no new transition.
    again = judge(rev, stuck, frozen.record, POLICY, at(30))
    assert again.action == "freeze" and not again.fresh and again.record == frozen.record
    # Every replica of it Ready (a fully rolled Deployment, stamped with it): complete, it becomes lastGood.
    healed = scene("kubectl_restart_done")
    running = dict(healed.deployment["spec"]["template"]["metadata"]["annotations"])
    for obj in (healed.deployment, *healed.replicasets):
        annotations = obj["spec"]["template"]["metadata"]["annotations"]
        if annotations == running:
            annotations[naming.A_REVISION] = rev
    view = healed.view()
    assert view.revision == rev and view.complete
    d = judge(rev, view, frozen.record, POLICY, at(60))
    assert d.action == "complete" and d.fresh and d.applies_desired
    assert d.record == Record(revision=rev, started_at=frozen.record.started_at, phase="Complete", last_good=rev)
    assert [(c["type"], c["status"], c["reason"]) for c in rollout.conditions(d, 3)] == [
        ("RolledBack", "False", "RolloutComplete")
    ]
    shaped = rollout.shape_workload(healed.deployment, d, None)
    assert not shaped["spec"].get("paused")  # the freeze is lifted
    assert judge(rev, view, d.record, POLICY, at(90)).action == "complete"
    # The same for a StatefulSet (the Redis of the chaos run): frozen p1, then its pod Ready.
    sts_frozen = judge("p1", scene("sts_broken").sts_view("p1"), progressing("p1", last_good=None), POLICY, at(20))
    assert sts_frozen.action == "freeze"
    sts_ok = judge("p1", scene("healthy").sts_view("p1"), sts_frozen.record, POLICY, at(40))
    assert sts_ok.action == "complete" and sts_ok.record.last_good == "p1"


def test_a_rolled_back_revision_stays_rolled_back_even_if_it_could_run() -> None:
    """Rollback is sticky: the workload runs last-good until the spec changes, whatever the cluster does."""
    failed = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    assert failed.action == "rollback"
    for name in ("restored", "kubectl_restart_done"):
        d = judge("r2", scene(name).view(), failed.record, POLICY, at(600))
        assert d.action == "rollback" and not d.fresh and d.record == failed.record


def test_a_frozen_revision_with_failing_pods_stays_frozen() -> None:
    policy = Policy(on_failure="Freeze")
    frozen = judge("r2", scene("broken_restarts").view(policy), progressing("r2"), policy, at(19))
    d = judge("r2", scene("broken_restarts").view(policy), frozen.record, policy, at(6000))
    assert d.action == "freeze" and d.record == frozen.record


def test_operator_restart_judges_from_the_record_in_status() -> None:
    """The record round-trips through status; a new operator process sees the same start and the same verdict."""
    rec = progressing("r2", started=T0)
    restored = Record.from_status(json.loads(json.dumps(rec.to_status())))
    assert restored == rec
    policy = Policy(crash_loop_restarts=100, progress_deadline_seconds=30)
    d = judge("r2", scene("broken_early").view(policy), restored, policy, at(31))
    assert d.action == "rollback" and d.reason == "ProgressDeadlineExceeded"
    failed = Record.from_status(json.loads(json.dumps(d.record.to_status())))
    assert judge("r2", scene("restored").view(), failed, policy, at(90)).action == "rollback"
    assert Record.from_status(None) == Record()


def test_kubectl_rollout_restart_is_not_fought() -> None:
    """A restart keeps our revision (its annotation is not ours): nothing to judge, nothing to undo."""
    rec = Record(revision="r1", started_at="2026-11-29T20:00:00Z", phase="Complete", last_good="r1")
    for name in ("kubectl_restart_midway", "kubectl_restart_done"):
        s = scene(name)
        assert naming.A_KUBECTL_RESTARTED_AT in s.deployment["spec"]["template"]["metadata"]["annotations"]
        d = judge("r1", s.view(), rec, POLICY, at(600))
        assert d.action == "complete" and not d.fresh and d.record == rec
        assert rollout.conditions(d, 3) == [
            {
                "type": "RolledBack",
                "status": "False",
                "reason": "RolloutComplete",
                "message": "",
                "observedGeneration": 3,
            }
        ]


def test_waiting_for_a_missing_deployment() -> None:
    d = judge("r1", None, progressing("r1", last_good=None), POLICY, at(1))
    assert d.action == "wait"


# ---------------------------------------------------------------------------------------------- serving revision


def test_serving_revision_follows_the_ready_pods() -> None:
    def rs(rev: str, number: int, ready: int) -> dict[str, Any]:
        return {
            "metadata": {"annotations": {naming.A_DEPLOYMENT_REVISION: str(number)}},
            "spec": {"template": {"metadata": {"annotations": {naming.A_REVISION: rev}}}},
            "status": {"readyReplicas": ready},
        }

    assert rollout.serving_revision(2, [rs("a", 1, 2), rs("b", 2, 1)]) == "a"
    assert rollout.serving_revision(2, [rs("a", 1, 1), rs("b", 2, 2)]) == "b"
    assert rollout.serving_revision(3, [rs("a", 1, 1), rs("b", 2, 1)]) == "a"  # tie: the older was serving first
    assert rollout.serving_revision(2, [rs("a", 1, 0), rs("b", 2, 0)]) is None


# -------------------------------------------------------------------------------------------------- StatefulSets


def test_statefulset_crash_loop_is_judged_on_the_update_revision() -> None:
    v = scene("sts_broken").sts_view("p2")
    assert v.caught_up and v.revision == "p2" and not v.complete
    assert [s.reason for s in v.signals] == ["CrashLoopBackOff"] and v.signals[0].pod == "db-0"
    d = judge("p2", v, progressing("p2", last_good="p1"), POLICY, at(20))
    assert d.action == "rollback" and d.restore == "p1"
    assert d.delete_pods == ()  # the template is not reverted yet: deleting now would only recreate p2


def test_statefulset_rollback_deletes_the_stuck_pod_once_the_template_is_reverted() -> None:
    failed = judge("p2", scene("sts_broken").sts_view("p2"), progressing("p2", last_good="p1"), POLICY, at(20))
    v = scene("sts_reverted_stuck").sts_view("p1")
    assert v.stuck_pods == ("db-0",)  # on the broken revision, NotReady, never replaced by the controller
    d = judge("p2", v, failed.record, POLICY, at(30))
    assert d.action == "rollback" and d.delete_pods == ("db-0",) and not d.fresh
    after = judge("p2", scene("sts_after_delete").sts_view("p1"), failed.record, POLICY, at(40))
    assert after.action == "rollback" and after.delete_pods == ()
    v_after = scene("sts_after_delete").sts_view("p1")
    assert v_after.complete and v_after.serving == "p1"


def test_healthy_statefulset_completes() -> None:
    v = scene("healthy").sts_view("p1")
    assert v.complete and v.stuck_pods == ()
    d = judge("p1", v, progressing("p1", last_good=None), POLICY, at(5))
    assert d.action == "complete" and d.record.last_good == "p1"


# ------------------------------------------------------------------------------------- status, events, metrics


def test_conditions_after_a_rollback() -> None:
    d = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    conds = {c["type"]: c for c in rollout.conditions(d, 7)}
    assert {t: conds[t]["status"] for t in conds} == {
        "Ready": "False",
        "Stalled": "True",
        "RolledBack": "True",
        "Degraded": "True",
        "Reconciling": "False",
    }
    assert all(c["observedGeneration"] == 7 for c in conds.values())
    assert "r2" in conds["RolledBack"]["message"] and "CrashLoopBackOff" in conds["RolledBack"]["message"]
    assert conds["RolledBack"]["reason"] == "CrashLoopBackOff"
    assert rollout.phase(d) == "RolledBack"
    revs = rollout.revisions(d, scene("restored").view())
    assert revs == {"desired": "r2", "serving": "r1", "lastGood": "r1"}  # desired != serving == lastGood


def test_conditions_after_a_freeze() -> None:
    policy = Policy(on_failure="Freeze")
    d = judge("r2", scene("broken_restarts").view(policy), progressing("r2"), policy, at(19))
    conds = {c["type"]: c for c in rollout.conditions(d, 7)}
    assert conds["Stalled"]["status"] == "True" and conds["Stalled"]["reason"] == "RolloutFrozen"
    assert conds["RolledBack"]["status"] == "False" and conds["Ready"]["status"] == "False"
    assert rollout.phase(d) == "Frozen"


def judged(d: rollout.RolloutDecision) -> dict[str, rollout.Judged]:
    return {"bridge": rollout.Judged("bridge", "Deployment", "demo-bridge", d.desired, d, None)}


def test_events_are_posted_once_per_transition() -> None:
    d = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    evs = events.rollout(judged(d))
    assert [(e.type, e.reason) for e in evs] == [("Warning", "RolloutFailed"), ("Normal", "RolledBack")]
    assert "r2" in evs[0].message and "CrashLoopBackOff" in evs[0].message and "r1" in evs[1].message
    held = judge("r2", scene("restored").view(), d.record, POLICY, at(30))
    assert events.rollout(judged(held)) == []


def test_rollback_counter_counts_fresh_failures_once() -> None:
    from tests.unit.operator.fakes import FakeKube, applier

    kube = FakeKube()
    g = gate.Gate(kube, applier(kube))
    body = {"metadata": {"name": "demo", "namespace": "ns"}}
    counter = metrics.ROLLBACKS.labels(component="bridge", action="rollback", reason="CrashLoopBackOff")
    before = counter._value.get()
    d = judge("r2", scene("broken_restarts").view(), progressing("r2"), POLICY, at(19))
    asyncio.run(g.finish(body, gate.GateResult([], judged(d))))
    again = judge("r2", scene("restored").view(), d.record, POLICY, at(30))
    asyncio.run(g.finish(body, gate.GateResult([], judged(again))))
    assert counter._value.get() == before + 1
    assert [r for _, r, _ in kube.events] == ["RolloutFailed", "RolledBack"]  # posted once too


def test_shape_workload_restores_the_stored_template_and_leaves_the_rest() -> None:
    s = scene("broken_restarts")
    d = judge("r2", s.view(), progressing("r2"), POLICY, at(19))
    good = copy.deepcopy(scene("healthy").deployment["spec"]["template"])
    shaped = rollout.shape_workload(s.deployment, d, good)
    assert shaped["spec"]["template"] == good
    assert shaped["spec"]["replicas"] == s.deployment["spec"]["replicas"] and "paused" not in shaped["spec"]
    assert s.deployment["spec"]["template"] != good  # input untouched
    proceed = judge("r5", s.view(), d.record, POLICY, at(30))
    assert rollout.shape_workload(s.deployment, proceed, good) == s.deployment


def test_seconds_until_deadline() -> None:
    policy = Policy(progress_deadline_seconds=60)
    assert rollout.seconds_until_deadline(progressing("r2"), policy, at(15)) == 45
    assert rollout.seconds_until_deadline(progressing("r2"), policy, at(90)) == 0
    assert rollout.seconds_until_deadline(Record(phase="Complete"), policy, at(15)) is None


def test_policy_from_the_spec() -> None:
    spec = RolloutSpec.model_validate({"onFailure": "Freeze", "crashLoopRestarts": 5, "progressDeadlineSeconds": 90})
    assert Policy.from_spec(spec) == Policy("Freeze", 5, 90)
    assert Policy.from_spec(RolloutSpec()) == Policy("Rollback", 3, 600)


def test_unschedulable_while_a_pvc_is_being_bound_is_not_a_failure() -> None:
    """Seen on the real control plane when a StatefulSet pod is created before its PVC is bound."""
    pod = {
        "metadata": {"name": "demo-redis-0"},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found",
                }
            ],
        },
    }
    assert rollout.pod_signals(pod, POLICY) == []
    pod["status"]["conditions"][0]["message"] = (
        '0/2 nodes are available: persistentvolumeclaim "data-demo-redis-0" '
        'bound to non-existent persistentvolume "". not found'
    )
    assert rollout.pod_signals(pod, POLICY) == []
    pod["status"]["conditions"][0]["message"] = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity"
    assert [s.reason for s in rollout.pod_signals(pod, POLICY)] == ["Unschedulable"]

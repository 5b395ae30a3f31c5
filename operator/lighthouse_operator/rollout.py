"""The health gate: judge a rollout from observed state and decide to proceed, complete, roll back or freeze.

Pure functions over what the API server reports (a Deployment, its ReplicaSets, pods; or a StatefulSet and its
pods), the rollout record kept in the LighthouseBridge status, and the current time. The reconcile acts on the
returned RolloutDecision; nothing here talks to the API server.

A rollout of revision R starts when the desired revision becomes R; its start time is recorded once and never reset
(a flapping ready count does not buy more time). It fails at once on ErrImagePull/ImagePullBackOff, Unschedulable or
CrashLoopBackOff with at least `crashLoopRestarts` restarts in a pod of R, and when not every replica of R is Ready
`progressDeadlineSeconds` after the start. A failed revision is never retried until the desired revision changes
(a new spec, a new nonce, new Secret content), except that a frozen revision whose every replica later turns Ready
completes (the failure was transient; a rolled-back one stays on last-good). Rollback restores the last-good
template to the workload (the LighthouseBridge spec is never touched); Freeze pauses the Deployment where it is.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from . import clock, naming
from .models import RolloutSpec
from .revision import template_revision
from .status import Fragment, condition

Obj = Mapping[str, Any]
Action = Literal["proceed", "complete", "rollback", "freeze", "wait"]
Phase = Literal["Progressing", "Complete", "Failed"]

IMAGE_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CRASH_LOOP = "CrashLoopBackOff"
UNSCHEDULABLE = "Unschedulable"
DEADLINE = "ProgressDeadlineExceeded"

# Unschedulable for a reason that resolves by itself within seconds (a PVC the volume binder has not bound yet, seen
# as "pod has unbound immediate PersistentVolumeClaims" and "persistentvolumeclaim ... bound to non-existent
# persistentvolume"): left to the progress deadline instead of failing the rollout at once. Lower case.
TRANSIENT_UNSCHEDULABLE = ("persistentvolumeclaim", "waiting for first consumer")

# Workloads judged by the gate: component -> kind, in the order failures are reported. The bridge is a Deployment,
# the stores are StatefulSets.
WORKLOADS = {naming.BRIDGE: "Deployment", naming.POSTGRES: "StatefulSet", naming.REDIS: "StatefulSet"}


# --------------------------------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Policy:
    on_failure: Literal["Rollback", "Freeze"] = "Rollback"
    crash_loop_restarts: int = 3
    progress_deadline_seconds: int = 600

    @classmethod
    def from_spec(cls, spec: RolloutSpec) -> Policy:
        return cls(spec.on_failure, spec.crash_loop_restarts, spec.progress_deadline_seconds)


@dataclass(frozen=True)
class Record:
    """The rollout record of one workload, kept in status (status.rollout.<component>) so that an operator restart
    judges the same rollout with the same start time."""

    revision: str | None = None  # what the current (or last) rollout targets
    started_at: str | None = None
    phase: Phase | None = None
    last_good: str | None = None  # newest revision that completed healthily
    failed_revision: str | None = None
    reason: str | None = None
    message: str | None = None
    detected_at: str | None = None

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> Record:
        raw = raw or {}
        return cls(
            revision=raw.get("revision"),
            started_at=raw.get("startedAt"),
            phase=raw.get("phase"),
            last_good=raw.get("lastGood"),
            failed_revision=raw.get("failedRevision"),
            reason=raw.get("reason"),
            message=raw.get("message"),
            detected_at=raw.get("detectedAt"),
        )

    def to_status(self) -> dict[str, Any]:
        out = {
            "revision": self.revision,
            "startedAt": self.started_at,
            "phase": self.phase,
            "lastGood": self.last_good,
            "failedRevision": self.failed_revision,
            "reason": self.reason,
            "message": self.message,
            "detectedAt": self.detected_at,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class Signal:
    """One failing pod of the revision under rollout."""

    reason: str
    pod: str
    message: str

    def describe(self) -> str:
        return f"pod {self.pod}: {self.message}"


@dataclass(frozen=True)
class View:
    """A workload as the judge sees it, built by view_deployment / view_statefulset."""

    kind: str
    name: str
    caught_up: bool  # the workload controller has seen the current template
    revision: str | None  # revision annotation of the template being rolled out
    replicas: int
    ready: int  # Ready pods of that revision
    complete: bool  # every replica runs that revision and is Ready, nothing else left
    signals: tuple[Signal, ...] = ()
    controller_failure: str | None = None  # the controller's own verdict (Deployment ProgressDeadlineExceeded)
    serving: str | None = None  # revision whose Ready pods carry the traffic
    stuck_pods: tuple[str, ...] = ()  # StatefulSet pods that will not be replaced on their own
    paused: bool = False


# ------------------------------------------------------------------------------------------------------ pod facts


def _conditions(obj: Obj) -> list[Mapping[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])


def pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in _conditions(pod))


def pod_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def pod_signals(pod: Obj, policy: Policy) -> list[Signal]:
    """Why this pod dooms its revision, if it does (what the kubelet and scheduler wrote into its status)."""
    name = (pod.get("metadata") or {}).get("name", "?")
    status = pod.get("status") or {}
    out: list[Signal] = []
    for c in _conditions(pod):
        if (
            c.get("type") == "PodScheduled"
            and c.get("status") == "False"
            and c.get("reason") == UNSCHEDULABLE
            and not any(t in (c.get("message") or "").lower() for t in TRANSIENT_UNSCHEDULABLE)
        ):
            out.append(Signal(UNSCHEDULABLE, name, f"Unschedulable: {c.get('message') or 'no node fits'}"))
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        container = cs.get("name", "?")
        detail = f" ({waiting['message']})" if waiting.get("message") else ""
        if reason in IMAGE_FAILURES:
            out.append(Signal(reason, name, f"container {container}: {reason}{detail}"))
        elif reason == CRASH_LOOP and int(cs.get("restartCount") or 0) >= policy.crash_loop_restarts:
            out.append(
                Signal(
                    CRASH_LOOP,
                    name,
                    f"container {container}: CrashLoopBackOff after {cs.get('restartCount')} restarts{detail}",
                )
            )
    return out


def _owned_by(obj: Obj, uid: str | None) -> bool:
    return bool(uid) and any(r.get("uid") == uid for r in (obj.get("metadata") or {}).get("ownerReferences") or [])


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------------------------------- Deployments


def new_replicaset(deployment: Obj, replicasets: Iterable[Obj]) -> Obj | None:
    """The ReplicaSet the Deployment is rolling out: its deployment.kubernetes.io/revision equals the Deployment's
    (the controller syncs both once it has seen the current template)."""
    want = ((deployment.get("metadata") or {}).get("annotations") or {}).get(naming.A_DEPLOYMENT_REVISION)
    uid = (deployment.get("metadata") or {}).get("uid")
    if want is None:
        return None
    for rs in replicasets:
        ann = (rs.get("metadata") or {}).get("annotations") or {}
        if ann.get(naming.A_DEPLOYMENT_REVISION) == want and (uid is None or _owned_by(rs, uid)):
            return rs
    return None


def serving_revision(replicas: int, replicasets: Iterable[Obj]) -> str | None:
    """The revision carrying the traffic: the newest ReplicaSet with all replicas Ready, else the one with the most
    Ready pods (the older on a tie: it was serving first). None when nothing is Ready."""
    ranked = []
    for rs in replicasets:
        ready = _int((rs.get("status") or {}).get("readyReplicas"))
        number = _int(((rs.get("metadata") or {}).get("annotations") or {}).get(naming.A_DEPLOYMENT_REVISION))
        if ready > 0:
            ranked.append((ready, number, template_revision(rs)))
    if not ranked:
        return None
    full = [r for r in ranked if r[0] >= max(replicas, 1)]
    if full:
        return max(full, key=lambda r: r[1])[2]
    return max(ranked, key=lambda r: (r[0], -r[1]))[2]


def view_deployment(
    deployment: Obj | None, replicasets: Iterable[Obj], pods: Iterable[Obj], policy: Policy
) -> View | None:
    if deployment is None:
        return None
    md, spec, st = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    replicasets, pods = list(replicasets), list(pods)
    replicas = _int(spec.get("replicas", 1))
    caught_up = _int(st.get("observedGeneration")) >= _int(md.get("generation"))
    rs = new_replicaset(deployment, replicasets) if caught_up else None
    revision = template_revision(deployment)
    ours = [
        p
        for p in pods
        if rs is not None and _owned_by(p, (rs.get("metadata") or {}).get("uid")) and not pod_terminating(p)
    ]
    ready = sum(1 for p in ours if pod_ready(p))
    signals = tuple(s for p in ours for s in pod_signals(p, policy))
    # The same facts status.deployment_health calls healthy, so lastGood advances no later than Ready turns True.
    complete = (
        rs is not None
        and template_revision(rs) == revision
        and _int(st.get("updatedReplicas")) >= replicas
        and _int(st.get("replicas")) == replicas
        and _int(st.get("readyReplicas")) >= replicas
    )
    failure = None
    if rs is not None:
        for c in st.get("conditions") or []:
            if (
                c.get("type") == "Progressing"
                and c.get("status") == "False"
                and c.get("reason") == DEADLINE
                and f'"{rs["metadata"]["name"]}"' in (c.get("message") or "")
            ):
                failure = c.get("message") or DEADLINE
    return View(
        "Deployment",
        md.get("name", "?"),
        caught_up and rs is not None,
        revision,
        replicas,
        ready,
        complete,
        signals,
        failure,
        serving_revision(replicas, replicasets),
        (),
        bool(spec.get("paused")),
    )


# --------------------------------------------------------------------------------------------------- StatefulSets


def view_statefulset(sts: Obj | None, pods: Iterable[Obj], policy: Policy) -> View | None:
    """A StatefulSet under OrderedReady: a pod stuck NotReady on another revision than updateRevision is never
    replaced by the controller (not even after the template is reverted): it is reported as stuck."""
    if sts is None:
        return None
    md, spec, st = sts.get("metadata") or {}, sts.get("spec") or {}, sts.get("status") or {}
    replicas = _int(spec.get("replicas", 1))
    caught_up = _int(st.get("observedGeneration")) >= _int(md.get("generation"))
    update = st.get("updateRevision")
    live = [p for p in pods if not pod_terminating(p)]
    ours = [
        p
        for p in live
        if ((p.get("metadata") or {}).get("labels") or {}).get(naming.L_CONTROLLER_REVISION_HASH) == update
    ]
    others = [p for p in live if p not in ours]
    ready = sum(1 for p in ours if pod_ready(p))
    signals = tuple(s for p in ours for s in pod_signals(p, policy))
    complete = caught_up and update is not None and len(ours) == replicas and not others and ready >= replicas
    stuck = tuple(sorted(p["metadata"]["name"] for p in others if not pod_ready(p)))
    revision = template_revision(sts)
    serving = revision if ready > 0 and ready >= replicas else None
    return View(
        "StatefulSet",
        md.get("name", "?"),
        caught_up and update is not None,
        revision,
        replicas,
        ready,
        complete,
        signals,
        None,
        serving,
        stuck,
    )


# ---------------------------------------------------------------------------------------------------- the judge


@dataclass(frozen=True)
class RolloutDecision:
    action: Action
    reason: str
    message: str
    desired: str
    record: Record  # the record to keep in status
    failed_revision: str | None = None
    detected_at: str | None = None
    restore: str | None = None  # for rollback: the revision whose stored template goes back on the workload
    fresh: bool = False  # this pass made the transition (post Events and count it once, not on every resync)
    delete_pods: tuple[str, ...] = field(default_factory=tuple)  # StatefulSet rollback: pods to delete

    @property
    def applies_desired(self) -> bool:
        return self.action in ("proceed", "wait", "complete")


def _fail(
    desired: str, record: Record, policy: Policy, reason: str, message: str, now: str, view: View | None
) -> RolloutDecision:
    rec = replace(record, phase="Failed", failed_revision=desired, reason=reason, message=message, detected_at=now)
    return _hold(desired, rec, policy, view, fresh=True)


def _hold(desired: str, rec: Record, policy: Policy, view: View | None, fresh: bool) -> RolloutDecision:
    """The verdict for a failed desired revision, on every pass until the desired revision changes."""
    reason, detail = rec.reason or "RolloutFailed", rec.message or "the rollout failed"
    can_restore = bool(rec.last_good and rec.last_good != desired)
    if policy.on_failure == "Rollback" and can_restore:
        restored = view is not None and view.caught_up and view.revision == rec.last_good
        stuck = view.stuck_pods if view is not None and view.kind == "StatefulSet" and restored else ()
        msg = (
            f"revision {desired} failed ({reason}: {detail}); rolled back to revision {rec.last_good}. "
            "Change the spec (or spec.restartNonce) to try again"
        )
        return RolloutDecision(
            "rollback", reason, msg, desired, rec, desired, rec.detected_at, rec.last_good, fresh, stuck
        )
    why = "spec.rollout.onFailure is Freeze" if policy.on_failure == "Freeze" else "there is no last-good revision"
    msg = (
        f"revision {desired} failed ({reason}: {detail}); rollout frozen ({why}): the pods already running "
        "keep serving. Change the spec (or spec.restartNonce) to try again"
    )
    return RolloutDecision("freeze", reason, msg, desired, rec, desired, rec.detected_at, None, fresh)


def _healed(desired: str, view: View | None) -> bool:
    """The workload runs `desired` on every replica, all Ready, with no pod of it failing."""
    return view is not None and view.caught_up and view.revision == desired and view.complete and not view.signals


def judge(desired: str, view: View | None, previous: Record, policy: Policy, now: datetime.datetime) -> RolloutDecision:
    """What to do about the rollout of `desired` right now. Deterministic for the same inputs."""
    stamp = clock.stamp(now)
    rec = previous

    # A revision that already failed is not retried until the desired revision changes.
    if rec.phase == "Failed" and rec.failed_revision == desired:
        held = _hold(desired, rec, policy, view, fresh=False)
        if held.action == "freeze" and _healed(desired, view):
            # Frozen where it stood, yet every replica of it is Ready now (the failure was transient: a volume the
            # provisioner had not created yet, a node that came back). Judged on what runs, not on what failed.
            rec = Record(revision=desired, started_at=rec.started_at, phase="Complete", last_good=desired)
            msg = f"revision {desired} is serving: {view.ready}/{view.replicas} ready" if view else ""
            return RolloutDecision("complete", "RolloutComplete", msg, desired, rec, fresh=True)
        return held

    if rec.revision != desired:
        # A new rollout starts now (a new spec, nonce, Secret content, or a fix after a failure).
        rec = Record(revision=desired, started_at=stamp, phase="Progressing", last_good=rec.last_good)
        if view is not None and view.caught_up and view.revision == desired and view.complete:
            # Already running it (back to the last-good spec, or an operator that lost its status).
            rec = replace(rec, phase="Complete", last_good=desired)
            return RolloutDecision(
                "complete", "RolloutComplete", f"revision {desired} is serving", desired, rec, fresh=True
            )
        return RolloutDecision("proceed", "RolloutStarted", f"rolling out revision {desired}", desired, rec, fresh=True)

    if rec.phase == "Complete":
        return RolloutDecision("complete", "RolloutComplete", f"revision {desired} is serving", desired, rec)

    # In progress: judge the pods of `desired` only, once the workload controller runs that template.
    if view is None or not view.caught_up or view.revision != desired:
        return RolloutDecision(
            "wait",
            "WaitingForController",
            f"waiting for the {view.kind if view else 'workload'} controller to start revision {desired}",
            desired,
            rec,
        )
    if view.complete:
        rec = replace(rec, phase="Complete", last_good=desired)
        return RolloutDecision(
            "complete",
            "RolloutComplete",
            f"revision {desired} is serving: {view.ready}/{view.replicas} ready",
            desired,
            rec,
            fresh=True,
        )
    if view.signals:
        first = view.signals[0]
        extra = f" (and {len(view.signals) - 1} more)" if len(view.signals) > 1 else ""
        return _fail(desired, rec, policy, first.reason, first.describe() + extra, stamp, view)
    started = clock.parse(rec.started_at) or now
    elapsed = (now - started).total_seconds()
    if elapsed >= policy.progress_deadline_seconds or view.controller_failure:
        msg = (
            f"{view.ready}/{view.replicas} pods of revision {desired} Ready after {int(elapsed)}s "
            f"(progressDeadlineSeconds {policy.progress_deadline_seconds}, counted from {rec.started_at})"
        )
        return _fail(desired, rec, policy, DEADLINE, msg, stamp, view)
    return RolloutDecision(
        "wait",
        "RollingOut",
        f"rolling out revision {desired}: {view.ready}/{view.replicas} "
        f"ready, {int(policy.progress_deadline_seconds - elapsed)}s left",
        desired,
        rec,
    )


def seconds_until_deadline(record: Record, policy: Policy, now: datetime.datetime) -> float | None:
    """When the reconcile should look again at the latest, to catch the deadline on time (None: nothing pending)."""
    if record.phase != "Progressing":
        return None
    started = clock.parse(record.started_at) or now
    return max(policy.progress_deadline_seconds - (now - started).total_seconds(), 0.0)


# ----------------------------------------------------------------------------------------- applying the decision


def shape_workload(
    desired_manifest: Mapping[str, Any], decision: RolloutDecision, restore_template: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The workload manifest to server-side apply for a decision. Rollback swaps in the stored last-good template
    (the spec stays untouched); Freeze pauses a Deployment where it is (its template stays at the failed
    revision, so nothing moves). Returns a new dict."""
    out = copy.deepcopy(dict(desired_manifest))
    if decision.action == "rollback" and restore_template is not None:
        out["spec"]["template"] = copy.deepcopy(dict(restore_template))
    elif decision.action == "freeze" and out.get("kind") == "Deployment":
        out["spec"]["paused"] = True
    return out


# ----------------------------------------------------------------------------------------------------- status


def revisions(decision: RolloutDecision, view: View | None) -> dict[str, str]:
    """status.revisions: desired (from the spec), serving (from Ready pods), lastGood (from the record)."""
    out = {
        "desired": decision.desired,
        "serving": view.serving if view else None,
        "lastGood": decision.record.last_good,
    }
    return {k: v for k, v in out.items() if v}


def conditions(decision: RolloutDecision, generation: int) -> list[dict[str, Any]]:
    """Conditions the rollout imposes on top of the component roll-up. Empty while nothing failed, apart from
    RolledBack=False once there is a record (so a past rollback visibly ended)."""
    not_retried = "the failed revision is not retried until the desired revision changes"
    msg = decision.message
    if decision.action == "rollback":
        return [
            condition("Ready", False, "RolledBack", msg, generation),
            condition("Stalled", True, "RolledBack", msg, generation),
            condition("RolledBack", True, decision.reason, msg, generation),
            condition("Degraded", True, "RolledBack", msg, generation),
            condition("Reconciling", False, "RolledBack", not_retried, generation),
        ]
    if decision.action == "freeze":
        return [
            condition("Ready", False, "RolloutFrozen", msg, generation),
            condition("Stalled", True, "RolloutFrozen", msg, generation),
            condition("RolledBack", False, "RolloutFrozen", "frozen, not rolled back", generation),
            condition("Degraded", True, "RolloutFrozen", msg, generation),
            condition("Reconciling", False, "RolloutFrozen", not_retried, generation),
        ]
    # One reason per phase (not per pass), so a resync mid-rollout does not rewrite the status.
    reason = "RolloutComplete" if decision.action == "complete" else "RolloutProgressing"
    return [condition("RolledBack", False, reason, "", generation)]


def phase(decision: RolloutDecision) -> str | None:
    return {"rollback": "RolledBack", "freeze": "Frozen"}.get(decision.action)


@dataclass(frozen=True)
class Judged:
    """One workload the gate judged this pass."""

    component: str
    kind: str
    name: str
    revision: str
    decision: RolloutDecision
    view: View | None


def fragment(judged: Mapping[str, Judged], generation: int) -> Fragment:
    """The rollout's part of the status: status.rollout records, status.revisions, and after a failure Ready=False,
    Stalled=True, RolledBack (True after a rollback), Degraded=True, and the phase RolledBack or Frozen."""
    fields: dict[str, Any] = {"rollout": {c: j.decision.record.to_status() for c, j in judged.items()}}
    bridge = judged.get(naming.BRIDGE)
    if bridge is not None:
        fields["revisions"] = revisions(bridge.decision, bridge.view)
    failed = [j for j in judged.values() if j.decision.action in ("rollback", "freeze")]
    if not failed:
        main = bridge or next(iter(judged.values()), None)
        return Fragment(fields=fields, conditions=tuple(conditions(main.decision, generation) if main else []))
    first = sorted(failed, key=lambda j: list(WORKLOADS).index(j.component))[0]
    conds = conditions(first.decision, generation)
    if len(failed) > 1:
        more = "; ".join(f"{j.component}: {j.decision.message}" for j in failed if j is not first)
        conds = [
            {**c, "message": f"{c['message']}; {more}"} if c["status"] == "True" or c["type"] == "Ready" else c
            for c in conds
        ]
    conds = [{**c, "message": f"{first.component}: {c['message']}"} if c["message"] else c for c in conds]
    return Fragment(fields=fields, conditions=tuple(conds), phase=phase(first.decision))


__all__ = [
    "CRASH_LOOP",
    "DEADLINE",
    "IMAGE_FAILURES",
    "UNSCHEDULABLE",
    "WORKLOADS",
    "Judged",
    "Policy",
    "Record",
    "RolloutDecision",
    "Signal",
    "View",
    "conditions",
    "fragment",
    "judge",
    "new_replicaset",
    "phase",
    "pod_ready",
    "pod_signals",
    "revisions",
    "seconds_until_deadline",
    "serving_revision",
    "shape_workload",
    "view_deployment",
    "view_statefulset",
]

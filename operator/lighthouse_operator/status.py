"""The LighthouseBridge status: one composition of fragments, and the roll-up of the children.

Each part of the status comes from one contributor, as a Fragment: the roll-up of the children (`rollup`, here), the
health gate (rollout.fragment), the restore (restore.fragment), the backups (backup.fragment), or one of the short
verdicts below (`stalled`, `failed_pass`, `reconciling_first`). `compose` lays them onto the old status in order,
once: a later fragment wins per field and per condition type; a condition keeps its place in the list and its
lastTransitionTime unless its status differs from the old status's. Pure functions.

kstatus rules (what Flux and `kubectl wait` rely on): status.observedGeneration equals metadata.generation once the
operator has seen a spec; Reconciling and Stalled are abnormal-true; Ready is True only when every component is ready
*for the current generation* (the bridge Deployment runs the revision this spec asks for).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import clock, naming
from .api import Obj
from .builders import bridge as bridge_builder
from .models import LighthouseBridge
from .revision import template_revision

Condition = dict[str, Any]
NO_CHANGES = "no changes are applied until the spec is fixed"


# ------------------------------------------------------------------------------------------------------ composing


def condition(type_: str, status: bool | str, reason: str, message: str, generation: int) -> Condition:
    """A metav1.Condition (lastTransitionTime is compose's business)."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    return {"type": type_, "status": value, "reason": reason, "message": message, "observedGeneration": generation}


def find(status: Mapping[str, Any], type_: str) -> Condition | None:
    """The condition of that type in a status, if any."""
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


@dataclass(frozen=True)
class Fragment:
    """One contributor's part of the status."""

    fields: Mapping[str, Any] = field(default_factory=dict)  # top-level fields; None removes one
    conditions: tuple[Condition, ...] = ()
    remove: frozenset[str] = frozenset()  # condition types to drop
    phase: str | None = None  # None: no opinion


def compose(
    old: Mapping[str, Any], generation: int, fragments: Iterable[Fragment | None], when: str | None = None
) -> dict[str, Any]:
    """The new status: `old` with the fragments laid on in order. Conditions nobody mentions are kept as they are;
    a condition keeps its place in the list (new ones are appended), so the list never reorders by itself."""
    when = when or clock.stamp()
    out: dict[str, Any] = {k: v for k, v in old.items() if k != "conditions"}
    out["observedGeneration"] = generation
    asserted: dict[str, Condition] = {}
    removed: set[str] = set()
    for f in fragments:
        if f is None:
            continue
        for k, v in f.fields.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = v
        for c in f.conditions:
            asserted[c["type"]] = c
            removed.discard(c["type"])
        for t in f.remove:
            asserted.pop(t, None)
            removed.add(t)
        if f.phase:
            out["phase"] = f.phase

    def dated(c: Condition, prev: Mapping[str, Any] | None) -> Condition:
        same = prev is not None and prev.get("status") == c["status"] and prev.get("lastTransitionTime")
        return {**c, "lastTransitionTime": prev["lastTransitionTime"] if same and prev else when}

    conds: list[Condition] = []
    seen: set[str] = set()
    for prev in old.get("conditions") or []:
        t = prev.get("type")
        seen.add(t)
        if t in asserted:
            conds.append(dated(asserted[t], prev))
        elif t not in removed:
            conds.append(prev)
    conds += [dated(c, None) for t, c in asserted.items() if t not in seen]
    if conds or "conditions" in old:
        out["conditions"] = conds
    return out


def _kstatus(
    generation: int, ready: tuple[bool, str, str], reconciling: tuple[bool, str, str], stalled: tuple[bool, str, str]
) -> tuple[Condition, ...]:
    """The three kstatus conditions, each (status, reason, message)."""
    return (
        condition("Ready", *ready, generation),
        condition("Reconciling", *reconciling, generation),
        condition("Stalled", *stalled, generation),
    )


def stalled(reason: str, message: str, generation: int) -> Fragment:
    """Nothing is applied until the spec changes (an invalid spec, a missing reference, a refused child...)."""
    conds = _kstatus(generation, (False, reason, message), (False, reason, NO_CHANGES), (True, reason, message))
    return Fragment(conditions=conds, phase="Stalled")


def failed_pass(message: str, generation: int) -> Fragment:
    """A pass that failed (retried): not Ready, still Reconciling, with the API server's words."""
    return Fragment(
        conditions=(
            condition("Ready", False, "ReconcileError", message, generation),
            condition("Reconciling", True, "ReconcileError", message, generation),
        )
    )


def reconciling_first(generation: int) -> Fragment:
    """What a spec change writes before anything else: the new generation is seen, not yet ready."""
    msg = f"applying generation {generation}"
    conds = _kstatus(generation, (False, "Reconciling", msg), (True, "SpecChanged", msg), (False, "Reconciling", ""))
    return Fragment(conditions=conds, phase="Progressing")


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch turning `old` into `new` (None when they are equal)."""
    if old == new:
        return None
    if not isinstance(old, dict) or not isinstance(new, dict):
        return new
    out: dict[str, Any] = {}
    for k in old.keys() - new.keys():
        out[k] = None
    for k, v in new.items():
        if k not in old:
            out[k] = v
        elif old[k] != v:
            sub = merge_patch(old[k], v)
            out[k] = sub if isinstance(v, dict) and isinstance(old[k], dict) else v
    return out


# --------------------------------------------------------------------------------------------------- the roll-up


@dataclass(frozen=True)
class Health:
    ready: int
    desired: int
    healthy: bool  # ready and up to date
    up_to_date: bool  # runs what the current spec asks for
    message: str
    failure: str | None = None  # e.g. ProgressDeadlineExceeded
    revision: str | None = None


def deployment_health(dep: Obj | None, want_revision: str | None, want_replicas: int) -> Health:
    """The bridge Deployment against the revision the health gate computed (None: not known yet, so not up to date)."""
    if dep is None:
        return Health(0, want_replicas, False, False, "Deployment not created yet")
    md, spec, st = dep["metadata"], dep.get("spec", {}), dep.get("status", {}) or {}
    revision = template_revision(dep)
    seen = st.get("observedGeneration", 0) >= md.get("generation", 0)
    replicas = spec.get("replicas", 1)
    updated, ready = st.get("updatedReplicas", 0), st.get("readyReplicas", 0)
    available, total = st.get("availableReplicas", 0), st.get("replicas", 0)
    up_to_date = seen and want_revision is not None and revision == want_revision and replicas == want_replicas
    rolled = up_to_date and updated == replicas and total == replicas
    healthy = rolled and ready >= replicas and available >= replicas
    failure = None
    for c in st.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("status") == "False":
            failure = c.get("reason") or "ProgressFailed"
    if not seen:
        msg = "waiting for the Deployment controller"
    elif healthy:
        msg = f"{ready}/{replicas} ready"
    elif not rolled:
        msg = f"rolling out revision {want_revision}: {updated}/{replicas} updated, {ready} ready"
    else:
        msg = f"{ready}/{replicas} ready"
    if failure:
        msg += f" ({failure})"
    return Health(ready, want_replicas, healthy, up_to_date, msg, failure, revision)


def statefulset_health(sts: Obj | None) -> Health:
    if sts is None:
        return Health(0, 1, False, False, "StatefulSet not created yet")
    md, spec, st = sts["metadata"], sts.get("spec", {}), sts.get("status", {}) or {}
    seen = st.get("observedGeneration", 0) >= md.get("generation", 0)
    replicas = spec.get("replicas", 1)
    ready, updated = st.get("readyReplicas", 0), st.get("updatedReplicas", 0)
    same_rev = st.get("currentRevision") == st.get("updateRevision") or updated == replicas
    healthy = seen and same_rev and ready >= replicas
    if not seen:
        msg = "waiting for the StatefulSet controller"
    elif not same_rev:
        msg = f"rolling out: {updated}/{replicas} updated, {ready} ready"
    else:
        msg = f"{ready}/{replicas} ready"
    return Health(ready, replicas, healthy, seen and same_rev, msg)


def external_health(secret_name: str, key: str) -> Health:
    return Health(0, 0, True, True, f"external (Secret {secret_name}, key {key})")


def cronjob_health(cj: Obj | None) -> Health:
    if cj is None:
        return Health(0, 1, False, False, "CronJob not created yet")
    spec = cj.get("spec", {})
    msg = "suspended" if spec.get("suspend") else f"scheduled {spec.get('schedule')}"
    return Health(1, 1, True, True, msg)


@dataclass
class Assessment:
    """Everything the roll-up needs, gathered by reconcile.py."""

    stalled: tuple[str, str] | None = None  # (reason, message)
    paused: bool = False
    deleting: str | None = None  # message while deletion waits
    deleting_reason: str = "Deleting"  # e.g. Snapshotting while the final backup runs
    components: dict[str, Health] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    revision: str | None = None  # the bridge revision the health gate computed (gate.py); None: not known yet
    restoring: str | None = None  # message while spec.restore seeds the database (restore.py); the bridge waits


def assess_children(
    lhb: LighthouseBridge, children: Mapping[tuple[str, str], Obj], bridge_revision: str | None
) -> dict[str, Health]:
    """Each component's health; the bridge judged against the revision the health gate computed."""
    s, n = lhb.spec, naming.Names(lhb.name)
    out = {"bridge": deployment_health(children.get(("Deployment", n.bridge)), bridge_revision, s.replicas)}
    for comp, spec, sts_name in (("postgres", s.postgres, n.postgres), ("redis", s.redis, n.redis)):
        if spec.mode == "external" and spec.external and spec.external.secret_ref:
            out[comp] = external_health(spec.external.secret_ref.name, spec.external.secret_ref.key)
        else:
            out[comp] = statefulset_health(children.get(("StatefulSet", sts_name)))
    if s.backup is not None:
        out["backup"] = cronjob_health(children.get(("CronJob", n.backup)))
    return out


def rollup(lhb: LighthouseBridge, a: Assessment) -> Fragment:
    """The children's roll-up: the kstatus conditions, Available, Progressing, Degraded, the phase, replicas,
    revisions, components and endpoints. Deterministic for the same inputs."""
    old = lhb.status or {}
    gen = lhb.metadata.generation
    comps = a.components
    bridge = comps.get("bridge")
    not_ready = [f"{name}: {h.message}" for name, h in comps.items() if not h.healthy]
    all_ready = bool(comps) and not not_ready
    failures = [f"{name}: {h.failure}" for name, h in comps.items() if h.failure]
    # Degraded means "was serving, now is not" (or an explicit failure). A first start or a rollout that is still
    # within its deadline is Progressing, not Degraded; once Degraded it stays so until everything is ready again.
    old_ready, old_degraded = find(old, "Ready"), find(old, "Degraded")
    was_serving = bool(
        (old_ready and old_ready.get("status") == "True") or (old_degraded and old_degraded.get("status") == "True")
    )
    broken = [name for name, h in comps.items() if h.up_to_date and not h.healthy and name != "backup" and was_serving]

    conds: list[Condition] = []
    if a.deleting:
        phase = "Deleting"
        why = a.deleting_reason
        halted = (True, *a.stalled) if a.stalled else (False, why, "")
        conds += _kstatus(gen, (False, why, a.deleting), (True, why, a.deleting), halted)
    elif a.stalled:
        phase = "Stalled"
        conds += stalled(*a.stalled, gen).conditions
    elif a.paused:
        phase = "Paused"
        msg = "spec.paused is true: the operator does not write to children"
        ready = (True, "Ready", "All components are ready (paused)") if all_ready else (False, "Paused", msg)
        conds += _kstatus(gen, ready, (False, "Paused", msg), (False, "Paused", ""))
    elif a.restoring:
        phase = "Restoring"
        conds += _kstatus(
            gen, (False, "Restoring", a.restoring), (True, "Restoring", a.restoring), (False, "Restoring", "")
        )
    elif all_ready:
        phase = "Ready"
        conds += _kstatus(
            gen, (True, "Ready", "All components are ready"), (False, "Reconciled", ""), (False, "Reconciled", "")
        )
    else:
        phase = "Degraded" if failures or broken else "Progressing"
        msg = "; ".join(not_ready)
        conds += _kstatus(
            gen, (False, "ComponentsNotReady", msg), (True, "Progressing", msg), (False, "Progressing", "")
        )

    if bridge is not None:
        if lhb.spec.replicas == 0:
            conds.append(condition("Available", False, "ScaledToZero", "spec.replicas is 0", gen))
        else:
            up = bridge.ready > 0
            reason = "MinimumReplicasAvailable" if up else "NoReplicasReady"
            conds.append(condition("Available", up, reason, bridge.message, gen))
        if bridge.failure:
            conds.append(condition("Progressing", False, bridge.failure, bridge.message, gen))
        elif bridge.healthy:
            conds.append(condition("Progressing", False, "RolloutComplete", bridge.message, gen))
        else:
            conds.append(condition("Progressing", True, "RollingOut", bridge.message, gen))
    degraded = failures + [f"{n}: {comps[n].message}" for n in broken if n not in {f.split(":")[0] for f in failures}]
    if degraded:
        conds.append(condition("Degraded", True, "ComponentsUnhealthy", "; ".join(degraded + a.warnings), gen))
    elif a.warnings:
        conds.append(condition("Degraded", True, "SpecNotFullyApplied", "; ".join(a.warnings), gen))
    else:
        conds.append(condition("Degraded", False, "Healthy", "", gen))

    old_rev = old.get("revisions") or {}
    serving, last_good = old_rev.get("serving"), old_rev.get("lastGood")
    if bridge is not None and bridge.healthy:
        serving = last_good = bridge.revision
    ready_replicas = bridge.ready if bridge else 0
    revisions = {"desired": a.revision, "serving": serving, "lastGood": last_good}
    fields = {
        "replicas": lhb.spec.replicas if bridge is None else max(bridge.desired, 0),
        "readyReplicas": ready_replicas,
        "selector": naming.selector_string(lhb.name, naming.BRIDGE),
        "replicaSummary": f"{ready_replicas}/{lhb.spec.replicas}",
        "revisions": {k: v for k, v in revisions.items() if v},
        "components": {
            name: {"ready": h.ready, "desired": h.desired, "message": h.message} for name, h in comps.items()
        },
        "endpoints": bridge_builder.endpoints(lhb),
    }
    return Fragment(fields=fields, conditions=tuple(conds), phase=phase)


__all__ = [
    "Assessment",
    "Condition",
    "Fragment",
    "Health",
    "assess_children",
    "compose",
    "condition",
    "cronjob_health",
    "deployment_health",
    "external_health",
    "failed_pass",
    "find",
    "merge_patch",
    "reconciling_first",
    "rollup",
    "stalled",
    "statefulset_health",
]

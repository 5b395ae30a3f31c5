"""Status roll-up: pure functions from observed children to the LighthouseBridge status.

kstatus rules (what Flux and `kubectl wait` rely on): status.observedGeneration equals metadata.generation once the
operator has seen a spec; Reconciling and Stalled are abnormal-true; Ready is True only when every component is ready
*for the current generation* (the bridge Deployment runs the revision this spec asks for).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from . import naming
from .builders import bridge as bridge_builder
from .k8s import Obj
from .models import LighthouseBridge

# Conditions this module owns; others (BackupSucceeded, RolledBack, FuseAvailable) are kept as they are.
OWNED = ("Ready", "Reconciling", "Stalled", "Available", "Progressing", "Degraded")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Health:
    ready: int
    desired: int
    healthy: bool  # ready and up to date
    up_to_date: bool  # runs what the current spec asks for
    message: str
    failure: str | None = None  # e.g. ProgressDeadlineExceeded
    revision: str | None = None


MISSING = Health(0, 1, False, False, "not created yet")


def deployment_health(dep: Obj | None, want_revision: str, want_replicas: int) -> Health:
    if dep is None:
        return Health(0, want_replicas, False, False, "Deployment not created yet")
    md, spec, st = dep["metadata"], dep.get("spec", {}), dep.get("status", {}) or {}
    revision = ((spec.get("template", {}).get("metadata", {}) or {}).get("annotations") or {}).get(naming.A_REVISION)
    seen = st.get("observedGeneration", 0) >= md.get("generation", 0)
    replicas = spec.get("replicas", 1)
    updated, ready = st.get("updatedReplicas", 0), st.get("readyReplicas", 0)
    available, total = st.get("availableReplicas", 0), st.get("replicas", 0)
    up_to_date = seen and revision == want_revision and replicas == want_replicas
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
    revision: str | None = None  # the bridge revision the health gate computed (gate.py); None: from the spec
    restoring: str | None = None  # message while spec.restore seeds the database (restore.py); the bridge waits


def assess_children(
    lhb: LighthouseBridge, children: dict[tuple[str, str], Obj], bridge_revision: str | None = None
) -> dict[str, Health]:
    s, n = lhb.spec, naming.Names(lhb.name)
    want = bridge_revision or bridge_builder.revision(lhb)  # the health gate's revision when it ran
    out = {"bridge": deployment_health(children.get(("Deployment", n.bridge)), want, s.replicas)}
    for comp, spec, sts_name in (("postgres", s.postgres, n.postgres), ("redis", s.redis, n.redis)):
        if spec.mode == "external" and spec.external and spec.external.secret_ref:
            out[comp] = external_health(spec.external.secret_ref.name, spec.external.secret_ref.key)
        else:
            out[comp] = statefulset_health(children.get(("StatefulSet", sts_name)))
    if s.backup is not None:
        out["backup"] = cronjob_health(children.get(("CronJob", n.backup)))
    return out


def _condition(type_: str, status: bool | str, reason: str, message: str, generation: int) -> dict[str, Any]:
    st = status if isinstance(status, str) else ("True" if status else "False")
    return {"type": type_, "status": st, "reason": reason, "message": message, "observedGeneration": generation}


def merge_conditions(old: list[dict[str, Any]], new: list[dict[str, Any]], when: str) -> list[dict[str, Any]]:
    """Replace conditions by type; lastTransitionTime moves only when status flips. Order: ours, then others."""
    by_type = {c["type"]: c for c in old}
    out = []
    for c in new:
        prev = by_type.pop(c["type"], None)
        ltt = prev.get("lastTransitionTime") if prev and prev.get("status") == c["status"] else None
        out.append({**c, "lastTransitionTime": ltt or when})
    out.extend(by_type[t] for t in sorted(by_type))
    return out


def build(lhb: LighthouseBridge, a: Assessment, when: str | None = None) -> dict[str, Any]:
    """The whole new status. Deterministic for the same inputs (apart from `when` on transitions)."""
    when = when or now()
    old = lhb.status or {}
    gen = lhb.metadata.generation
    comps = a.components
    bridge = comps.get("bridge")
    not_ready = [f"{name}: {h.message}" for name, h in comps.items() if not h.healthy]
    all_ready = bool(comps) and not not_ready
    failures = [f"{name}: {h.failure}" for name, h in comps.items() if h.failure]
    # Degraded means "was serving, now is not" (or an explicit failure). A first start or a rollout that is still
    # within its deadline is Progressing, not Degraded; once Degraded it stays so until everything is ready again.
    old_ready, old_degraded = condition(old, "Ready"), condition(old, "Degraded")
    was_serving = bool(
        (old_ready and old_ready.get("status") == "True") or (old_degraded and old_degraded.get("status") == "True")
    )
    broken = [name for name, h in comps.items() if h.up_to_date and not h.healthy and name != "backup" and was_serving]

    conds: list[dict[str, Any]] = []
    if a.deleting:
        phase = "Deleting"
        conds += [
            _condition("Ready", False, a.deleting_reason, a.deleting, gen),
            _condition("Reconciling", True, a.deleting_reason, a.deleting, gen),
            _condition(
                "Stalled",
                a.stalled is not None,
                a.stalled[0] if a.stalled else a.deleting_reason,
                a.stalled[1] if a.stalled else "",
                gen,
            ),
        ]
    elif a.stalled:
        reason, message = a.stalled
        phase = "Stalled"
        conds += [
            _condition("Ready", False, reason, message, gen),
            _condition("Reconciling", False, reason, "no changes are applied until the spec is fixed", gen),
            _condition("Stalled", True, reason, message, gen),
        ]
    elif a.paused:
        phase = "Paused"
        msg = "spec.paused is true: the operator does not write to children"
        conds += [
            _condition(
                "Ready",
                all_ready,
                "Paused" if not all_ready else "Ready",
                msg if not all_ready else "All components are ready (paused)",
                gen,
            ),
            _condition("Reconciling", False, "Paused", msg, gen),
            _condition("Stalled", False, "Paused", "", gen),
        ]
    elif a.restoring:
        phase = "Restoring"
        conds += [
            _condition("Ready", False, "Restoring", a.restoring, gen),
            _condition("Reconciling", True, "Restoring", a.restoring, gen),
            _condition("Stalled", False, "Restoring", "", gen),
        ]
    elif all_ready:
        phase = "Ready"
        conds += [
            _condition("Ready", True, "Ready", "All components are ready", gen),
            _condition("Reconciling", False, "Reconciled", "", gen),
            _condition("Stalled", False, "Reconciled", "", gen),
        ]
    else:
        phase = "Degraded" if failures or broken else "Progressing"
        msg = "; ".join(not_ready)
        conds += [
            _condition("Ready", False, "ComponentsNotReady", msg, gen),
            _condition("Reconciling", True, "Progressing", msg, gen),
            _condition("Stalled", False, "Progressing", "", gen),
        ]

    if bridge is not None:
        if lhb.spec.replicas == 0:
            conds.append(_condition("Available", False, "ScaledToZero", "spec.replicas is 0", gen))
        else:
            conds.append(
                _condition(
                    "Available",
                    bridge.ready > 0,
                    "MinimumReplicasAvailable" if bridge.ready > 0 else "NoReplicasReady",
                    bridge.message,
                    gen,
                )
            )
        if bridge.failure:
            conds.append(_condition("Progressing", False, bridge.failure, bridge.message, gen))
        elif bridge.healthy:
            conds.append(_condition("Progressing", False, "RolloutComplete", bridge.message, gen))
        else:
            conds.append(_condition("Progressing", True, "RollingOut", bridge.message, gen))
    degraded = failures + [f"{n}: {comps[n].message}" for n in broken if n not in {f.split(":")[0] for f in failures}]
    if degraded:
        conds.append(_condition("Degraded", True, "ComponentsUnhealthy", "; ".join(degraded + a.warnings), gen))
    elif a.warnings:
        conds.append(_condition("Degraded", True, "SpecNotFullyApplied", "; ".join(a.warnings), gen))
    else:
        conds.append(_condition("Degraded", False, "Healthy", "", gen))

    desired_rev = a.revision or bridge_builder.revision(lhb)
    old_rev = old.get("revisions") or {}
    serving, last_good = old_rev.get("serving"), old_rev.get("lastGood")
    if bridge is not None and bridge.healthy:
        serving = bridge.revision
        last_good = bridge.revision
    ready_replicas = bridge.ready if bridge else 0

    status: dict[str, Any] = {
        "observedGeneration": gen,
        "phase": phase,
        "conditions": merge_conditions(old.get("conditions") or [], conds, when),
        "replicas": lhb.spec.replicas if bridge is None else max(bridge.desired, 0),
        "readyReplicas": ready_replicas,
        "selector": naming.selector_string(lhb.name, naming.BRIDGE),
        "replicaSummary": f"{ready_replicas}/{lhb.spec.replicas}",
        "revisions": {
            k: v for k, v in {"desired": desired_rev, "serving": serving, "lastGood": last_good}.items() if v
        },
        "components": {
            name: {"ready": h.ready, "desired": h.desired, "message": h.message} for name, h in comps.items()
        },
        "endpoints": bridge_builder.endpoints(lhb),
    }
    for carried in ("lastBackup", "lastSuccessfulBackupTime", "backup", "rollout", "restore"):
        if carried in old:
            status[carried] = old[carried]
    return status


def reconciling_first(lhb: LighthouseBridge, when: str | None = None) -> dict[str, Any]:
    """What a spec change writes before anything else: the new generation is seen, not yet ready."""
    when = when or now()
    old = dict(lhb.status or {})
    gen = lhb.metadata.generation
    msg = f"applying generation {gen}"
    conds = [
        _condition("Ready", False, "Reconciling", msg, gen),
        _condition("Reconciling", True, "SpecChanged", msg, gen),
        _condition("Stalled", False, "Reconciling", "", gen),
    ]
    return {
        **old,
        "observedGeneration": gen,
        "phase": "Progressing",
        "conditions": merge_conditions(old.get("conditions") or [], conds, when),
    }


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


def condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)

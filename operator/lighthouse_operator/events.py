"""Events: which ones a pass posts, and what they look like. Pure; the applier posts them (Applier.post).

Events mark transitions, each once: a status condition that flips (Stalled, Ready, a failed pass, Degraded,
BackupSucceeded), children created, updated, adopted or pruned, a restore or backup Job started or finished, a
rollout that failed or completed. An idle pass posts none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import naming
from .api import Done, Obj
from .backup import CONDITION as BACKUP_CONDITION
from .backup import Plan as BackupPlan
from .restore import Plan as RestorePlan
from .rollout import Judged
from .status import Condition, find
from .storage import Plan as StoragePlan

MESSAGE_LIMIT = 1024
# The health gate announces its own outcomes (Warning RolloutFailed, Normal RolledBack, Warning RolloutFrozen), so
# the conditions they set are not announced again as Stalled or Degraded.
GATE_REASONS = frozenset({"RolledBack", "RolloutFrozen"})


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    action: str = "Reconcile"


def manifest(involved: Mapping[str, Any], event: Event, now: str, instance: str) -> Obj:
    """A core/v1 Event about `involved` (what kubectl describe shows)."""
    md = involved.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{md.get('name', 'lighthouse')}.", "namespace": md.get("namespace")},
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": md.get("name"),
            "namespace": md.get("namespace"),
            "uid": md.get("uid"),
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:MESSAGE_LIMIT],
        "action": event.action,
        "source": {"component": naming.FIELD_MANAGER},
        "reportingComponent": f"lighthouse.dev/{naming.FIELD_MANAGER}",
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


# ------------------------------------------------------------------------------------------------ status changes


def _flipped(old: Mapping[str, Any], new: Mapping[str, Any], type_: str, to: str) -> Condition | None:
    """The condition, if it turned `to` in this pass (or kept `to` with another reason)."""
    before, after = find(old, type_), find(new, type_)
    if after and after["status"] == to:
        if before is None or before["status"] != to or before.get("reason") != after.get("reason"):
            return after
    return None


def _backup(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """BackupSucceeded transitions, each once: a new failure or miss (a new failed Job is a new message), and the
    recovery."""
    before, after = find(old, BACKUP_CONDITION), find(new, BACKUP_CONDITION)
    if after is None:
        return []
    if before is not None and (before.get("status"), before.get("reason")) == (
        after.get("status"),
        after.get("reason"),
    ):
        if after.get("reason") != "BackupFailed" or before.get("message") == after.get("message"):
            return []
    if after["reason"] in ("BackupMissed", "BackupFailed"):
        return [Event("Warning", after["reason"], after["message"])]
    if after["status"] == "True" and before is not None and before.get("status") == "False":
        return [Event("Normal", "BackupSucceeded", after["message"])]
    return []


def transitions(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Event]:
    """Events for what a status write changed."""
    out = []
    if (c := _flipped(old, new, "Stalled", "True")) and c["reason"] not in GATE_REASONS:
        out.append(Event("Warning", c["reason"], c["message"]))
    if c := _flipped(old, new, "Ready", "True"):
        out.append(Event("Normal", "Ready", f"generation {new.get('observedGeneration')}: {c['message']}"))
    if (c := _flipped(old, new, "Reconciling", "True")) and c["reason"] == "ReconcileError":
        out.append(Event("Warning", "ReconcileError", c["message"]))
    if (c := _flipped(old, new, "Degraded", "True")) and c["reason"] not in GATE_REASONS:
        out.append(Event("Warning", "Degraded", c["message"]))
    return out + _backup(old, new)


# ------------------------------------------------------------------------------------------------- what was done


def changes(
    created: Sequence[str], updated: Sequence[str], adopted: Sequence[str], pruned: Sequence[str]
) -> list[Event]:
    """One Normal Event per kind of change to the children ("Created Deployment/demo-bridge, Service/...")."""
    out = []
    for reason, items in (("Created", created), ("Updated", updated), ("Adopted", adopted), ("Pruned", pruned)):
        if items:
            out.append(Event("Normal", reason, f"{reason} {', '.join(items)}"))
    return out


def restore(p: RestorePlan, old: Mapping[str, Any], done: Iterable[Done]) -> list[Event]:
    """Normal Restoring when the Job was created, Normal Restored once; RestoreFailed is the Stalled Event."""
    if p.event is None:
        return []
    before = (old.get("restore") or {}).get("phase")
    after = (p.record or {}).get("phase")
    created = any(d.verb == "Created" for d in done)
    if (p.create_job and created) or (not p.create_job and before != after):
        type_, reason, message = p.event
        return [Event("Normal" if type_ == "Normal" else "Warning", reason, message, "Restore")]
    return []


def backup(p: BackupPlan | None, done: Iterable[Done]) -> list[Event]:
    """An on-demand backup started, or refused because spec.backup is not set."""
    if p is None:
        return []
    out = [
        Event("Normal", "BackupRequested", f"Created Job {d.name} for {naming.A_BACKUP_NOW}={p.record['lastRequest']}")
        for d in done
        if d.verb == "Created"
    ]
    if p.request_refused:
        out.append(
            Event(
                "Warning",
                "BackupNotConfigured",
                f"{naming.A_BACKUP_NOW}={p.request_refused} was not run: spec.backup is not set",
            )
        )
    return out


def snapshot(done: Iterable[Done]) -> list[Event]:
    """deletionPolicy Snapshot: the final backup Job was created."""
    return [
        Event("Normal", "Snapshotting", f"Created Job {d.name}: the final backup before deletion", "Delete")
        for d in done
        if d.verb == "Created" and d.kind == "Job"
    ]


def released(policy: str, done: Sequence[str]) -> list[Event]:
    """What deletionPolicy did to the data (PVCs, Secrets)."""
    if not done:
        return []
    verb = "Retained" if policy == "Retain" else "Deleted"
    return [Event("Normal", verb, f"deletionPolicy {policy}: " + ", ".join(done), "Delete")]


def storage(p: StoragePlan, done: Iterable[Done]) -> list[Event]:
    """A claim the operator grew (refusals are the Degraded Event)."""
    out = []
    for d in done:
        if d.kind == "PersistentVolumeClaim" and d.name in p.growing:
            before, after = p.growing[d.name]
            out.append(Event("Normal", "ExpandingVolume", f"PVC {d.name}: {before} -> {after}", "Resize"))
    return out


# -------------------------------------------------------------------------------------------------------- rollout


def rollout(judged: Mapping[str, Judged]) -> list[Event]:
    """Fresh rollout transitions: Warning RolloutFailed, then Normal RolledBack or Warning RolloutFrozen; Normal
    RolloutComplete."""
    out = []
    for j in judged.values():
        d, comp = j.decision, j.component
        if not d.fresh:
            continue
        if d.action in ("rollback", "freeze"):
            failed = f"{comp}: revision {d.desired} failed: {d.reason}: {d.record.message}"
            out.append(Event("Warning", "RolloutFailed", failed, "Rollout"))
            if d.action == "rollback":
                out.append(Event("Normal", "RolledBack", f"{comp}: restored revision {d.restore}", "Rollout"))
            else:
                out.append(Event("Warning", "RolloutFrozen", f"{comp}: {d.message}", "Rollout"))
        elif d.action == "complete":
            out.append(Event("Normal", "RolloutComplete", f"{comp}: revision {d.desired} is serving", "Rollout"))
    return out


def stuck_pods(judged: Mapping[str, Judged], done: Iterable[Done]) -> list[Event]:
    """StatefulSet pods deleted because they were stuck on a failed revision."""
    deleted = {d.name for d in done if d.kind == "Pod"}
    return [
        Event(
            "Normal",
            "DeletedStuckPod",
            f"{j.component}: deleted pod {pod}, stuck on failed revision {j.decision.failed_revision}",
            "Rollback",
        )
        for j in judged.values()
        for pod in j.decision.delete_pods
        if pod in deleted
    ]


__all__ = [
    "Event",
    "backup",
    "changes",
    "manifest",
    "released",
    "restore",
    "rollout",
    "snapshot",
    "storage",
    "stuck_pods",
    "transitions",
]

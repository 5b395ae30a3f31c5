"""Restore at creation (spec.restore): a Job seeds the new bridge's database before the bridge ever starts.

Pure: spec.restore, the record kept in status.restore, the restore Job and its pods (jobs.view, read by
observe.restore_job), and whether this bridge has already run -> a Plan the reconcile carries out (hold the bridge
Deployment at 0 replicas, the Job to create or delete, what status and Events say).

The record is the source of truth, not the Job: once Succeeded (or Skipped) it is final, so a deleted or
garbage-collected Job, or a restarted operator, never runs a restore again. A restore only ever runs for a bridge
that has not started yet; spec.restore added to a running bridge is recorded as Skipped with a warning (in-place
restore is a manual runbook: docs/restore.md). The tool itself refuses a non-empty database (no --replace), so even
a wrong decision here cannot wipe data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from . import naming
from .api import Create, Delete, Obj, Write
from .builders import restore as builder
from .jobs import JobView
from .models import LighthouseBridge, RestoreSpec
from .status import Fragment

SKIPPED = (
    "spec.restore applies only to a new bridge, and this one has already run: nothing was restored. "
    "Remove spec.restore, or see docs/restore.md for an in-place restore"
)
CANCELLED = (
    "cancelled: spec.restore was removed before the restore succeeded; the bridge starts with the database as it is"
)
MESSAGE_LIMIT = 1024


CONTAINER = "restore"  # the tool's container in the restore Job


# ------------------------------------------------------------------------------------------------- observed state


def bridge_started(status: Mapping[str, Any], deployment: Obj | None) -> bool:
    """Has this bridge run (or been created) without a restore? Then a restore now would race its data."""
    rev = status.get("revisions") or {}
    if rev.get("serving") or rev.get("lastGood"):
        return True
    if ((status.get("rollout") or {}).get(naming.BRIDGE) or {}).get("startedAt"):
        return True
    # The first decision to restore is written to status before anything is created (Plan.persist_first), so a
    # bridge Deployment without a record was made before spec.restore appeared.
    return deployment is not None


# ---------------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Plan:
    hold: bool  # keep the bridge Deployment at 0 replicas: the bridge must not migrate an empty database first
    record: dict[str, Any] | None  # status.restore (None: no restore ever asked for)
    create_job: bool = False
    delete_job: str | None = None  # uid of a Job to delete (failed for an older spec.restore, or cancelled)
    persist_first: bool = False  # write the record before creating anything: the decision must survive a crash
    restoring: str | None = None  # Ready=False, Reconciling=True, reason Restoring
    failed: str | None = None  # Stalled=True, reason RestoreFailed
    warning: str | None = None  # Degraded=True (the spec is not fully applied)
    event: tuple[str, str, str] | None = None  # (type, reason, message) for a fresh transition
    writes: tuple[Write, ...] = ()  # the Job to create or delete (plan() fills it in)


NOTHING = Plan(hold=False, record=None)


def _trim(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def decide(
    spec: RestoreSpec | None,
    record: Mapping[str, Any] | None,
    job: JobView | None,
    want_digest: str | None,
    started: bool,
    source: str | None,
    job_name: str,
    now: str,
) -> Plan:
    """What to do about spec.restore right now. Deterministic for the same inputs."""
    rec: dict[str, Any] = dict(record or {})
    phase = rec.get("phase")
    if spec is not None and phase == "Failed" and rec.get("message") == CANCELLED:
        # spec.restore given again after a cancel: decided afresh, so a bridge that has run since is not held.
        rec, phase = {}, None
    if phase == "Succeeded":
        return Plan(False, rec)
    if phase == "Skipped":
        return Plan(False, rec, warning=SKIPPED if spec is not None else None)

    if spec is None:
        if not rec:
            return NOTHING
        # Removed before it succeeded: cancel. Hold while the Job still exists, so the bridge never starts beside a
        # restore that is still writing (deletion is foreground: the Job goes after its pods).
        done = {**rec, "phase": "Failed", "message": CANCELLED, "completedAt": rec.get("completedAt") or now}
        if job is not None and job.owned:
            return Plan(
                True,
                done,
                delete_job=None if job.deleting else job.uid,
                restoring=f"cancelling the restore: waiting for Job {job.name} to be deleted",
            )
        return Plan(False, done)

    base = {**rec, "from": spec.from_, "job": job_name}
    if source:
        base["source"] = source
    if not rec:
        if started:
            skipped = {"phase": "Skipped", "from": spec.from_, "message": SKIPPED}
            return Plan(False, skipped, warning=SKIPPED)
        base["startedAt"] = now

    if job is None:
        msg = f"creating Job {job_name} to restore {spec.from_} from {source}"
        pending = {**base, "phase": "Pending", "message": msg}
        pending.pop("completedAt", None)
        pending.pop("backup", None)
        if phase == "Failed":  # the failed Job was deleted (by hand, or by us for a new spec): try again
            pending["startedAt"] = now
        event = ("Normal", "Restoring", f"restoring backup {spec.from_} from {source} (Job {job_name})")
        return Plan(True, pending, create_job=True, persist_first=not rec, restoring=msg, event=event)

    if not job.owned:
        msg = (
            f"Job {job.name} exists but is not controlled by this LighthouseBridge: delete or rename it, and "
            "the restore Job is created"
        )
        return Plan(True, {**base, "phase": "Failed", "message": msg}, failed=msg)

    if job.deleting:
        msg = f"waiting for the old Job {job.name} to be deleted"
        return Plan(True, {**base, "phase": "Pending", "message": msg}, restoring=msg)

    attempts = job.failed + job.active + (1 if job.state == "Succeeded" else 0)
    if attempts:
        base["attempts"] = attempts

    if job.state == "Succeeded":
        backup = (job.result.id if job.result else None) or (spec.from_ if spec.from_ != "latest" else None)
        what = f"backup {backup}" if backup else f"backup {spec.from_}"
        msg = f"restored {what} from {source}"
        done = {**base, "phase": "Succeeded", "completedAt": job.completed or now, "message": msg}
        if backup:
            done["backup"] = backup
        return Plan(False, done, event=("Normal", "Restored", msg))

    if want_digest is not None and job.annotations.get(naming.A_RESTORE_SPEC) != want_digest:
        # A Job's template is immutable: a new spec.restore (or image) needs a new Job. Replacing even a running
        # one is safe: the tool restores in one transaction, so a killed run leaves the database empty again.
        msg = f"spec.restore (or the bridge image) changed: replacing Job {job.name}"
        return Plan(True, {**base, "phase": "Pending", "message": msg}, delete_job=job.uid, restoring=msg)

    if job.state == "Failed":
        detail = "; ".join(x for x in (job.last_words, job.exit, job.failure) if x)
        msg = _trim(
            f"restore Job {job.name} failed: {detail or 'no reason reported'}. The bridge stays at 0 "
            "replicas; fix the cause, then change spec.restore or delete the Job to try again"
        )
        done = {
            **base,
            "phase": "Failed",
            "message": msg,
            "completedAt": rec.get("completedAt") if phase == "Failed" else (job.completed or now),
        }
        if done["completedAt"] is None:
            done["completedAt"] = now
        return Plan(True, done, failed=msg)

    # Running (or created and not started yet).
    running = job.active > 0 or job.started is not None
    attempt = f", attempt {attempts} of {builder.BACKOFF_LIMIT + 1}" if attempts > 1 else ""
    msg = f"restoring {spec.from_} from {source}: Job {job.name} {'running' if running else 'pending'}{attempt}"
    if job.waiting:
        msg += f" (pod waiting: {job.waiting})"
    upd = {**base, "phase": "Running" if running else "Pending", "message": _trim(msg)}
    upd.pop("completedAt", None)
    return Plan(True, upd, restoring=_trim(msg))


# -------------------------------------------------------------------------------------------- around the decision


def needs_look(lhb: LighthouseBridge) -> bool:
    """Whether this pass must read the restore Job (no request at all for bridges without a pending restore)."""
    rec = (lhb.status or {}).get("restore") or {}
    phase = rec.get("phase")
    if phase in ("Succeeded", "Skipped"):
        return False
    if lhb.spec.restore is None and phase == "Failed" and rec.get("message") == CANCELLED:
        return False
    return lhb.spec.restore is not None or phase is not None


def plan(lhb: LighthouseBridge, job: JobView | None, observed: Mapping[tuple[str, str], Obj], now: str) -> Plan:
    """decide() for this bridge (`job`: observe.restore_job's view), with the Job to create or delete."""
    status, name = lhb.status or {}, naming.Names(lhb.name).restore
    record = status.get("restore")
    if not needs_look(lhb):
        return decide(lhb.spec.restore, record, None, None, True, None, name, now)
    manifest = builder.job(lhb)
    want = ((manifest or {}).get("metadata") or {}).get("annotations", {}).get(naming.A_RESTORE_SPEC)
    started = bridge_started(status, observed.get(("Deployment", naming.Names(lhb.name).bridge)))
    p = decide(lhb.spec.restore, record, job, want, started, builder.source_uri(lhb), name, now)
    if p.delete_job:
        # Foreground: the Job object stays until its pods are gone, and the bridge is held until then.
        gone = Delete("batch/v1", "Job", lhb.namespace, name, p.delete_job, "Foreground", reason="RestoreReplaced")
        return replace(p, writes=(gone,))
    if p.create_job and manifest is not None:
        return replace(p, writes=(Create(manifest, reason="RestoreRequested"),))
    return p


def fragment(p: Plan) -> Fragment | None:
    """The restore's part of the status: status.restore (once a restore was ever asked for)."""
    return Fragment(fields={"restore": p.record}) if p.record is not None else None


def hold_bridge(manifests: list[dict[str, Any]], lhb: LighthouseBridge) -> list[dict[str, Any]]:
    """The desired children with the bridge Deployment at 0 replicas (everything else, the stores included, as is)."""
    name = naming.Names(lhb.name).bridge
    out = []
    for m in manifests:
        if m.get("kind") == "Deployment" and m["metadata"]["name"] == name:
            m = {**m, "spec": {**m["spec"], "replicas": 0}}
        out.append(m)
    return out


__all__ = [
    "CANCELLED",
    "CONTAINER",
    "NOTHING",
    "SKIPPED",
    "Plan",
    "bridge_started",
    "decide",
    "fragment",
    "hold_bridge",
    "needs_look",
    "plan",
]

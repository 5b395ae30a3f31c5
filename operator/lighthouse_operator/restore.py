"""Restore at creation (spec.restore): a Job seeds the new bridge's database before the bridge ever starts.

`decide` is pure: spec.restore, the record kept in status.restore, the restore Job and its pods (`view_job`), and
whether this bridge has already run -> a Plan the reconcile applies (hold the bridge Deployment at 0 replicas,
create or delete the Job, what status and Events say). `observe` and `act` are the only API calls.

The record is the source of truth, not the Job: once Succeeded (or Skipped) it is final, so a deleted or
garbage-collected Job, or a restarted operator, never runs a restore again. A restore only ever runs for a bridge
that has not started yet; spec.restore added to a running bridge is recorded as Skipped with a warning (in-place
restore is a manual runbook: docs/restore.md). The tool itself refuses a non-empty database (no --replace), so even
a wrong decision here cannot wipe data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import naming
from .builders import restore as builder
from .k8s import Kube, Obj
from .models import LighthouseBridge, RestoreSpec

log = logging.getLogger(__name__)

SKIPPED = (
    "spec.restore applies only to a new bridge, and this one has already run: nothing was restored. "
    "Remove spec.restore, or see docs/restore.md for an in-place restore"
)
CANCELLED = (
    "cancelled: spec.restore was removed before the restore succeeded; the bridge starts with the database as it is"
)
MESSAGE_LIMIT = 1024


# ------------------------------------------------------------------------------------------------- observed state


@dataclass(frozen=True)
class JobView:
    """What matters of the restore Job and its newest terminated pod."""

    name: str
    uid: str
    owned: bool  # controlled by this LighthouseBridge
    spec_digest: str | None
    deleting: bool
    active: int
    failed: int
    succeeded: bool  # condition Complete=True
    failed_final: bool  # condition Failed=True
    failure: str | None  # the Failed condition's reason and message
    start_time: str | None
    completion_time: str | None
    pod_message: str | None  # termination message of the restore container (JSON result, or the log tail)
    pod_exit: str | None  # e.g. "exit code 5 (Error)"
    pod_waiting: str | None  # e.g. "ErrImagePull: ..." while a pod cannot start


def _condition(job: Obj, type_: str) -> Mapping[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def _container(pod: Obj) -> Mapping[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == "restore":
            return cs
    return {}


def view_job(job: Obj | None, pods: list[Obj], owner_uid: str) -> JobView | None:
    if job is None:
        return None
    md, st = job.get("metadata") or {}, job.get("status") or {}
    owned = any(r.get("uid") == owner_uid and r.get("controller") for r in md.get("ownerReferences") or [])
    failed_cond = _condition(job, "Failed")
    failure = None
    if failed_cond is not None:
        failure = ": ".join(x for x in (failed_cond.get("reason"), failed_cond.get("message")) if x)
    terminated, waiting = None, None
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""):
        state = _container(pod).get("state") or {}
        if state.get("terminated"):
            terminated = state["terminated"]
        elif state.get("waiting") and state["waiting"].get("reason") not in (None, "ContainerCreating"):
            w = state["waiting"]
            waiting = ": ".join(x for x in (w.get("reason"), w.get("message")) if x)
    pod_exit = None
    if terminated is not None and terminated.get("exitCode") is not None:
        pod_exit = f"exit code {terminated['exitCode']}" + (
            f" ({terminated['reason']})" if terminated.get("reason") else ""
        )
    return JobView(
        name=md.get("name", "?"),
        uid=md.get("uid", ""),
        owned=owned,
        spec_digest=(md.get("annotations") or {}).get(builder.A_SPEC),
        deleting=bool(md.get("deletionTimestamp")),
        active=int(st.get("active") or 0),
        failed=int(st.get("failed") or 0),
        succeeded=_condition(job, "Complete") is not None,
        failed_final=failed_cond is not None,
        failure=failure,
        start_time=st.get("startTime"),
        completion_time=st.get("completionTime"),
        pod_message=(terminated or {}).get("message") or None,
        pod_exit=pod_exit,
        pod_waiting=waiting,
    )


def result_backup(message: str | None) -> str | None:
    """The backup id from the tool's JSON result (LIGHTHOUSE_RESTORE_RESULT_FILE), if the pod reported one."""
    if not message:
        return None
    try:
        data = json.loads(message.strip().splitlines()[0])
    except (ValueError, IndexError):
        return None
    return data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None


def failure_line(message: str | None) -> str | None:
    """The tool's own error line from a log tail ("lighthouse-bridge restore: error: ..."), else the last line."""
    lines = [ln.strip() for ln in (message or "").splitlines() if ln.strip()]
    if not lines:
        return None
    for ln in reversed(lines):
        if "error:" in ln:
            return ln
    return lines[-1]


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

    attempts = job.failed + job.active + (1 if job.succeeded else 0)
    if attempts:
        base["attempts"] = attempts

    if job.succeeded:
        backup = result_backup(job.pod_message) or (spec.from_ if spec.from_ != "latest" else None)
        what = f"backup {backup}" if backup else f"backup {spec.from_}"
        msg = f"restored {what} from {source}"
        done = {**base, "phase": "Succeeded", "completedAt": job.completion_time or now, "message": msg}
        if backup:
            done["backup"] = backup
        return Plan(False, done, event=("Normal", "Restored", msg))

    if want_digest is not None and job.spec_digest != want_digest:
        # A Job's template is immutable: a new spec.restore (or image) needs a new Job. Replacing even a running
        # one is safe: the tool restores in one transaction, so a killed run leaves the database empty again.
        msg = f"spec.restore (or the bridge image) changed: replacing Job {job.name}"
        return Plan(True, {**base, "phase": "Pending", "message": msg}, delete_job=job.uid, restoring=msg)

    if job.failed_final:
        detail = "; ".join(x for x in (failure_line(job.pod_message), job.pod_exit, job.failure) if x)
        msg = _trim(
            f"restore Job {job.name} failed: {detail or 'no reason reported'}. The bridge stays at 0 "
            "replicas; fix the cause, then change spec.restore or delete the Job to try again"
        )
        done = {
            **base,
            "phase": "Failed",
            "message": msg,
            "completedAt": rec.get("completedAt") if phase == "Failed" else (job.completion_time or now),
        }
        if done["completedAt"] is None:
            done["completedAt"] = now
        return Plan(True, done, failed=msg)

    # Running (or created and not started yet).
    running = job.active > 0 or job.start_time is not None
    attempt = f", attempt {attempts} of {builder.BACKOFF_LIMIT + 1}" if attempts > 1 else ""
    msg = f"restoring {spec.from_} from {source}: Job {job.name} {'running' if running else 'pending'}{attempt}"
    if job.pod_waiting:
        msg += f" (pod waiting: {job.pod_waiting})"
    upd = {**base, "phase": "Running" if running else "Pending", "message": _trim(msg)}
    upd.pop("completedAt", None)
    return Plan(True, upd, restoring=_trim(msg))


# -------------------------------------------------------------------------------------------------- I/O around it


def needs_look(lhb: LighthouseBridge) -> bool:
    """Whether this pass must read the restore Job (no request at all for bridges without a pending restore)."""
    rec = (lhb.status or {}).get("restore") or {}
    phase = rec.get("phase")
    if phase in ("Succeeded", "Skipped"):
        return False
    if lhb.spec.restore is None and phase == "Failed" and rec.get("message") == CANCELLED:
        return False
    return lhb.spec.restore is not None or phase is not None


async def plan(kube: Kube, lhb: LighthouseBridge, observed: Mapping[tuple[str, str], Obj], now: str) -> Plan:
    """Reads the Job (and, once it has run, its pods), then decides."""
    status = lhb.status or {}
    record = status.get("restore")
    if not needs_look(lhb):
        return decide(lhb.spec.restore, record, None, None, True, None, naming.Names(lhb.name).restore, now)
    name = naming.Names(lhb.name).restore
    raw = await kube.get("batch/v1", "Job", lhb.namespace, name)
    pods: list[Obj] = []
    if raw is not None:  # its pods say why it fails (or which backup `latest` was): one LIST while restoring
        pods = await kube.list("v1", "Pod", lhb.namespace, f"batch.kubernetes.io/job-name={name}")
    job = view_job(raw, pods, lhb.metadata.uid)
    manifest = builder.job(lhb)
    want = ((manifest or {}).get("metadata") or {}).get("annotations", {}).get(builder.A_SPEC)
    started = bridge_started(status, observed.get(("Deployment", naming.Names(lhb.name).bridge)))
    return decide(lhb.spec.restore, record, job, want, started, builder.source_uri(lhb), name, now)


async def act(kube: Kube, lhb: LighthouseBridge, p: Plan) -> list[str]:
    """Deletes and creates the restore Job as planned; returns what was done (for the Events)."""
    done = []
    name = naming.Names(lhb.name).restore
    if p.delete_job:
        # Foreground: the Job object stays until its pods are gone, and the bridge is held until then.
        if await kube.delete("batch/v1", "Job", lhb.namespace, name, propagation="Foreground", uid=p.delete_job):
            done.append(f"Deleted Job/{name}")
            log.info("Deleted Job name=%s namespace=%s reason=RestoreReplaced", name, lhb.namespace)
    elif p.create_job:
        manifest = builder.job(lhb)
        if manifest is not None and await kube.create(manifest) is not None:
            done.append(f"Created Job/{name}")
            log.info(
                "Created Job name=%s namespace=%s from=%s",
                name,
                lhb.namespace,
                lhb.spec.restore.from_ if lhb.spec.restore else "",
            )
    return done


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
    "NOTHING",
    "SKIPPED",
    "JobView",
    "Plan",
    "act",
    "bridge_started",
    "decide",
    "failure_line",
    "hold_bridge",
    "needs_look",
    "plan",
    "result_backup",
    "view_job",
]

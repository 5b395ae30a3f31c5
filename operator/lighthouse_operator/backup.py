"""Backups as the operator sees them: pure decisions from the observed backup Jobs.

    jobs = await observe.backup_jobs(reader, lhb)             # the CronJob's, on-demand and final Jobs (jobs.py)
    p = plan(lhb, jobs, cronjob, now)                         # status.lastBackup, BackupSucceeded, a request Job
    await applier.perform(p.writes); fragment(p) -> status    # reconcile.py

BackupSucceeded (documented in docs/operator.md):
- absent when spec.backup is not set (Unknown/BackupNotConfigured only after an on-demand request was refused);
- True/BackupSucceeded after a Job succeeded and nothing below applies;
- False/BackupMissed when no backup succeeded within two schedule intervals since the last success, or since the
  schedule started (the CronJob was created, the schedule changed, or `suspend` was lifted);
- False/BackupFailed when the newest finished Job failed (and the schedule is not missed yet);
- Unknown/BackupSuspended while spec.backup.suspend is true (no missed-schedule detection; a failed Job still
  gives BackupFailed); Unknown/NoBackupYet before the first backup.

Messages never contain the current time, so an idle pass writes nothing.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from cronsim import CronSim, CronSimError

from . import clock, naming
from .api import Create, Obj, Write
from .builders import backup as builder
from .jobs import JobView
from .models import BACKUP_CLIENT_MAJOR, LighthouseBridge, LighthouseBridgeSpec
from .status import Assessment, Fragment, condition, find
from .validation import CRON_MACROS

CONDITION = "BackupSucceeded"
CONTAINER = "backup"  # the tool's container in backup Jobs


# ------------------------------------------------------------------------------------------------------ schedule


class ScheduleError(ValueError):
    pass


def interval(schedule: str, at: datetime.datetime) -> tuple[datetime.datetime, datetime.timedelta]:
    """(the first run after `at`, the gap to the run after it), for the schedules validation.py admits: five
    fields or a @descriptor, no time zone. The CronJob controller uses its own zone; the operator assumes UTC
    (only a daylight-saving switch makes a difference, of an hour)."""
    expr = CRON_MACROS.get(schedule.strip().lower(), schedule.strip())
    if len(expr.split()) != 5:
        raise ScheduleError(f"schedule {schedule!r} is not a 5-field cron expression or a @descriptor")
    try:
        it = CronSim(expr, at.astimezone(clock.UTC))
        first = next(it)
        second = next(it)
    except (CronSimError, StopIteration) as e:
        raise ScheduleError(f"schedule {schedule!r}: {e}") from None
    return first.astimezone(clock.UTC), second - first


def missed_deadline(schedule: str, anchor: datetime.datetime) -> datetime.datetime:
    """A backup must succeed within two schedule intervals of `anchor` (the last success, or the schedule's start)."""
    _, step = interval(schedule, anchor)
    return anchor + 2 * step


# ----------------------------------------------------------------------------------------------------------- jobs


def failure(j: JobView) -> str:
    """Why a backup Job failed: its Failed condition, then the tool's last words."""
    if j.failure and j.last_words:
        return f"{j.failure} ({j.last_words})"
    return j.failure or j.last_words or "failed"


def requested(lhb: LighthouseBridge) -> str | None:
    """The lighthouse.dev/backup-now value (None: absent or blank)."""
    return (lhb.metadata.annotations.get(naming.A_BACKUP_NOW) or "").strip() or None


def wanted(lhb: LighthouseBridge) -> bool:
    """Whether this pass must look at backup Jobs: not for a bridge that never had anything to do with backups."""
    old = lhb.status or {}
    return lhb.spec.backup is not None or bool(requested(lhb) or old.get("backup") or find(old, CONDITION))


# ------------------------------------------------------------------------------------------------------- decision


@dataclass(frozen=True)
class Inputs:
    configured: bool  # spec.backup is set
    schedule: str | None
    suspended: bool
    jobs: list[JobView]
    old: dict[str, Any]  # the LighthouseBridge status before this pass
    now: datetime.datetime
    request: str | None = None  # the lighthouse.dev/backup-now annotation (None: absent)
    request_job: str | None = None  # the Job name that request maps to (builders.backup.request_job_name)
    cronjob_created: datetime.datetime | None = None


@dataclass(frozen=True)
class Plan:
    last_backup: dict[str, Any] | None
    last_success: str | None
    record: dict[str, Any]  # status.backup
    condition: dict[str, Any] | None  # BackupSucceeded; None removes it
    create_request_job: str | None = None
    request_refused: str | None = None  # the annotation value, when spec.backup is not set
    missed: bool = False
    deadline: datetime.datetime | None = None
    writes: tuple[Write, ...] = ()  # the request Job (plan() fills it in)


def _end(j: JobView) -> datetime.datetime:
    return j.finished or j.created


def _cond(status: str, reason: str, message: str, generation: int) -> dict[str, Any]:
    return condition(CONDITION, status, reason, message, generation)


def _describe(last_backup: dict[str, Any] | None, last_success: str | None) -> str:
    if not last_backup:
        return f"last success at {last_success}" if last_success else "no backup yet"
    size = f", {last_backup['size']} bytes" if last_backup.get("size") is not None else ""
    return f"backup {last_backup.get('name')} completed at {last_success or last_backup.get('time')}{size}"


def decide(i: Inputs, generation: int) -> Plan:
    """What the backup Jobs say, and what to do about a request. Deterministic for the same inputs."""
    old = i.old or {}
    record: dict[str, Any] = dict(old.get("backup") or {})
    last_backup: dict[str, Any] | None = old.get("lastBackup")
    last_success: str | None = old.get("lastSuccessfulBackupTime")

    # The newest success wins; the Jobs it comes from are pruned by history limits, so status is the memory.
    successes = sorted((j for j in i.jobs if j.state == "Succeeded"), key=_end)
    if successes:
        j = successes[-1]
        known = clock.parse(last_success)
        if known is None or _end(j) > known:
            last_success = clock.stamp(_end(j))
            last_backup = {
                "name": j.result.id if j.result else j.name,
                "time": (j.result and j.result.time) or last_success,
            }
            if j.result and j.result.size is not None:
                last_backup["size"] = j.result.size

    # An on-demand request is handled once: its value is recorded, and the Job name derives from it.
    create, refused = None, None
    if i.request and i.request != record.get("lastRequest"):
        record["lastRequest"] = i.request
        if i.configured and i.request_job:
            record["requestJob"] = i.request_job
            create = i.request_job
        else:
            record.pop("requestJob", None)
            refused = i.request

    if not i.configured:
        record.pop("schedule", None)
        record.pop("scheduleSince", None)
        refusal = None
        if record.get("lastRequest") and "requestJob" not in record:
            refusal = _cond(
                "Unknown",
                "BackupNotConfigured",
                f"{naming.A_BACKUP_NOW}={record['lastRequest']} was not run: spec.backup is not set",
                generation,
            )
        return Plan(last_backup, last_success, record, refusal, create, refused)

    # When the current schedule started counting: a new, changed or un-suspended schedule is not judged by
    # the gaps before it.
    if i.suspended:
        record.pop("scheduleSince", None)
        record["schedule"] = i.schedule
    elif record.get("schedule") != i.schedule or not record.get("scheduleSince"):
        record["schedule"] = i.schedule
        record["scheduleSince"] = clock.stamp(i.now)

    finished = sorted((j for j in i.jobs if j.state != "Active"), key=_end)
    newest = finished[-1] if finished else None
    failed = (
        newest
        if newest and newest.state == "Failed" and ((t := clock.parse(last_success)) is None or _end(newest) > t)
        else None
    )
    why = f"the newest backup Job {failed.name} failed: {failure(failed)}" if failed else ""

    missed, deadline = False, None
    cond: dict[str, Any]
    if i.suspended:
        cond = (
            _cond("False", "BackupFailed", why, generation)
            if failed
            else _cond(
                "Unknown",
                "BackupSuspended",
                "spec.backup.suspend is true: no scheduled backups are taken; " + _describe(last_backup, last_success),
                generation,
            )
        )
        return Plan(last_backup, last_success, record, cond, create, refused)

    anchors = [t for t in (clock.parse(last_success), clock.parse(record.get("scheduleSince")), i.cronjob_created) if t]
    anchor = max(anchors) if anchors else i.now
    try:
        deadline = missed_deadline(i.schedule or "", anchor)
    except ScheduleError as e:
        cond = _cond("Unknown", "InvalidSchedule", str(e), generation)
        return Plan(last_backup, last_success, record, cond, create, refused)
    missed = i.now >= deadline
    if missed:
        since = (
            f"since the last success at {last_success}"
            if last_success and clock.parse(last_success) == anchor
            else f"since the schedule started at {clock.stamp(anchor)}"
        )
        by = clock.stamp(deadline)
        msg = f"no backup succeeded {since}: schedule {i.schedule!r} wanted one by {by} (two intervals)"
        cond = _cond("False", "BackupMissed", f"{msg}; {why}" if why else msg, generation)
    elif failed:
        cond = _cond("False", "BackupFailed", why, generation)
    elif last_success:
        cond = _cond("True", "BackupSucceeded", _describe(last_backup, last_success), generation)
    else:
        cond = _cond(
            "Unknown",
            "NoBackupYet",
            f"no backup yet: schedule {i.schedule!r}; missed if none succeeds by {clock.stamp(deadline)}",
            generation,
        )
    return Plan(last_backup, last_success, record, cond, create, refused, missed, deadline)


def plan(lhb: LighthouseBridge, jobs: list[JobView], cronjob: Obj | None, now: datetime.datetime) -> Plan:
    """decide() for this bridge, with the request Job to create."""
    b, request = lhb.spec.backup, requested(lhb)
    p = decide(
        Inputs(
            configured=b is not None,
            schedule=b.schedule if b else None,
            suspended=bool(b and b.suspend),
            jobs=jobs,
            old=lhb.status or {},
            now=now,
            request=request,
            request_job=builder.request_job_name(lhb, request) if request and b else None,
            cronjob_created=clock.parse(((cronjob or {}).get("metadata") or {}).get("creationTimestamp")),
        ),
        lhb.metadata.generation,
    )
    if p.create_request_job and (manifest := builder.job(lhb, p.create_request_job, "request", request)):
        p = replace(p, writes=(Create(manifest, reason="BackupRequested"),))
    return p


def fragment(p: Plan) -> Fragment:
    """The backups' part of the status: lastBackup, lastSuccessfulBackupTime, status.backup and BackupSucceeded."""
    fields = {
        "lastBackup": p.last_backup or None,
        "lastSuccessfulBackupTime": p.last_success or None,
        "backup": p.record or None,
    }
    if p.condition is None:
        return Fragment(fields=fields, remove=frozenset({CONDITION}))
    return Fragment(fields=fields, conditions=(p.condition,))


# ----------------------------------------------------------------------------------- deletionPolicy Snapshot


@dataclass(frozen=True)
class Final:
    """Where the final backup stands: deletion proceeds once it is done."""

    state: Literal["done", "wait", "failed", "unavailable"]
    job: str  # the final backup Job's name
    message: str = ""  # for the status while deletion waits
    writes: tuple[Write, ...] = ()

    @property
    def assessment(self) -> Assessment:
        """The status roll-up's input while deletion waits."""
        if self.state == "unavailable":
            return Assessment(stalled=("SnapshotUnavailable", self.message), deleting=self.message)
        if self.state == "failed":
            return Assessment(stalled=("SnapshotFailed", self.message), deleting=self.message)
        return Assessment(deleting=self.message, deleting_reason="Snapshotting")


def final(lhb: LighthouseBridge, job: JobView | None) -> Final:
    """deletionPolicy Snapshot: a Job from the CronJob's template must succeed before anything is deleted (the CronJob,
    Secrets and database stay: garbage collection waits for the finalizer). `job`: the final Job, if it exists."""
    if lhb.spec.backup is None:
        return Final(
            "unavailable",
            "",
            "deletionPolicy is Snapshot but spec.backup is not set, so no final backup can be taken. "
            "Set spec.deletionPolicy to Retain (keep data) or Delete to proceed, or set spec.backup.",
        )
    name = builder.final_job_name(lhb)
    waiting = f"deletionPolicy Snapshot: waiting for the final backup (Job {name}) before deleting"
    if job is None:
        manifest = builder.job(lhb, name, "final")
        return Final("wait", name, waiting, (Create(manifest, reason="FinalBackup"),) if manifest else ())
    if job.state == "Succeeded":
        return Final("done", name)
    if job.state == "Failed":
        return Final(
            "failed",
            name,
            f"the final backup Job {name} failed: {failure(job)}. Fix the cause and delete Job {name} to try again, "
            "or set spec.deletionPolicy to Retain (keep data) or Delete (no final backup) to proceed.",
        )
    return Final("wait", name, waiting)


def client_mismatch(spec: LighthouseBridgeSpec) -> str | None:
    """A managed PostgreSQL newer than the bridge image's pg_dump/pg_restore: every backup and restore would fail
    (pg_dump refuses newer servers), so say so up front. External servers' versions are unknown here."""
    if spec.backup is None and spec.restore is None:
        return None
    if spec.postgres.mode != "managed" or spec.postgres.managed is None or not spec.postgres.managed.image:
        return None
    tag = spec.postgres.managed.image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
    m = re.match(r"(\d+)", tag)
    if m is None or int(m.group(1)) <= BACKUP_CLIENT_MAJOR:
        return None
    return (
        f"postgres.managed.image is PostgreSQL {m.group(1)} but the bridge image's pg_dump/pg_restore are "
        f"{BACKUP_CLIENT_MAJOR}: backups and restores will fail; use a PostgreSQL {BACKUP_CLIENT_MAJOR} image or a "
        "bridge image with a newer client"
    )


__all__ = [
    "CONDITION",
    "CONTAINER",
    "Final",
    "Inputs",
    "Plan",
    "ScheduleError",
    "client_mismatch",
    "decide",
    "failure",
    "final",
    "fragment",
    "interval",
    "missed_deadline",
    "plan",
    "requested",
    "wanted",
]

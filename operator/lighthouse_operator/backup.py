"""Backups as the operator sees them: pure decisions from observed Jobs, applied by reconcile.py.

    jobs = [view_job(j, pods) for j in backup Jobs]           # the CronJob's, on-demand and final Jobs
    d = decide(Inputs(...))                                   # status.lastBackup, BackupSucceeded, a request Job
    status = overlay(status, d, generation, old)

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
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from cronsim import CronSim, CronSimError

from . import naming
from . import status as st
from .builders.backup import L_TRIGGER  # Job label request|final (the CronJob's Jobs: none)
from .models import BACKUP_CLIENT_MAJOR, LighthouseBridgeSpec

CONDITION = "BackupSucceeded"
A_BACKUP_NOW = "lighthouse.dev/backup-now"  # on-demand backup: any new value runs exactly one backup
CONTAINER = "backup"

UTC = datetime.UTC
Trigger = Literal["schedule", "request", "final"]
JobState = Literal["Active", "Succeeded", "Failed"]

# The descriptors validation.py admits (robfig/cron's, as the CronJob controller reads them).
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def fmt(t: datetime.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------------------ schedule


class ScheduleError(ValueError):
    pass


def interval(schedule: str, at: datetime.datetime) -> tuple[datetime.datetime, datetime.timedelta]:
    """(the first run after `at`, the gap to the run after it), for the schedules validation.py admits: five
    fields or a @descriptor, no time zone. The CronJob controller uses its own zone; the operator assumes UTC
    (only a daylight-saving switch makes a difference, of an hour)."""
    expr = MACROS.get(schedule.strip().lower(), schedule.strip())
    if len(expr.split()) != 5:
        raise ScheduleError(f"schedule {schedule!r} is not a 5-field cron expression or a @descriptor")
    try:
        it = CronSim(expr, at.astimezone(UTC))
        first = next(it)
        second = next(it)
    except (CronSimError, StopIteration) as e:
        raise ScheduleError(f"schedule {schedule!r}: {e}") from None
    return first.astimezone(UTC), second - first


def missed_deadline(schedule: str, anchor: datetime.datetime) -> datetime.datetime:
    """A backup must succeed within two schedule intervals of `anchor` (the last success, or the schedule's start)."""
    _, step = interval(schedule, anchor)
    return anchor + 2 * step


# ----------------------------------------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Result:
    """What `lighthouse-bridge backup` reports in its termination message (LIGHTHOUSE_BACKUP_RESULT_FILE)."""

    id: str
    time: str | None = None
    size: int | None = None


def parse_result(message: str | None) -> Result | None:
    if not message:
        return None
    try:
        data = json.loads(message)
    except ValueError:
        return None  # FallbackToLogsOnError: the log tail of a failed run
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    size = data.get("size")
    when = data.get("time")
    return Result(
        data["id"],
        fmt(t) if isinstance(when, str) and (t := parse_time(when)) else None,
        size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
    )


@dataclass(frozen=True)
class JobView:
    name: str
    trigger: Trigger
    created: datetime.datetime
    state: JobState
    finished: datetime.datetime | None = None
    reason: str = ""  # why it failed (the Job's Failed condition, then the container's last words)
    result: Result | None = None


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            return (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
    return None


def view_job(job: dict[str, Any], pods: list[dict[str, Any]]) -> JobView:
    """One backup Job and its pods (any order) -> what matters for status."""
    md, status = job["metadata"], job.get("status") or {}
    labels = md.get("labels") or {}
    trigger: Trigger = (
        "request"
        if labels.get(L_TRIGGER) == "request"
        else ("final" if labels.get(L_TRIGGER) == "final" else "schedule")
    )
    created = parse_time(md.get("creationTimestamp")) or datetime.datetime.fromtimestamp(0, UTC)
    conds = {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}
    mine = sorted(
        (p for p in pods if any(r.get("uid") == md.get("uid") for r in p["metadata"].get("ownerReferences") or [])),
        key=lambda p: p["metadata"].get("creationTimestamp") or "",
    )
    last = _terminated(mine[-1]) if mine else None
    if "Complete" in conds:
        finished = parse_time(status.get("completionTime")) or parse_time(conds["Complete"].get("lastTransitionTime"))
        results = [
            r
            for p in mine
            if (t := _terminated(p)) and t.get("exitCode") == 0 and (r := parse_result(t.get("message")))
        ]
        return JobView(
            md["name"], trigger, created, "Succeeded", finished or created, result=results[-1] if results else None
        )
    if "Failed" in conds:
        c = conds["Failed"]
        finished = parse_time(c.get("lastTransitionTime")) or created
        reason = ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
        words = _last_line((last or {}).get("message"))
        if words:
            reason = f"{reason} ({words})" if reason else words
        return JobView(md["name"], trigger, created, "Failed", finished, reason or "failed")
    return JobView(md["name"], trigger, created, "Active")


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


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
class Decision:
    last_backup: dict[str, Any] | None
    last_success: str | None
    record: dict[str, Any]  # status.backup
    condition: dict[str, Any] | None  # BackupSucceeded; None removes it
    create_request_job: str | None = None
    request_refused: str | None = None  # the annotation value, when spec.backup is not set
    missed: bool = False
    deadline: datetime.datetime | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)


def _end(j: JobView) -> datetime.datetime:
    return j.finished or j.created


def _cond(status: str, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {"type": CONDITION, "status": status, "reason": reason, "message": message, "observedGeneration": generation}


def _describe(last_backup: dict[str, Any] | None, last_success: str | None) -> str:
    if not last_backup:
        return f"last success at {last_success}" if last_success else "no backup yet"
    size = f", {last_backup['size']} bytes" if last_backup.get("size") is not None else ""
    return f"backup {last_backup.get('name')} completed at {last_success or last_backup.get('time')}{size}"


def decide(i: Inputs, generation: int) -> Decision:
    old = i.old or {}
    record: dict[str, Any] = dict(old.get("backup") or {})
    last_backup: dict[str, Any] | None = old.get("lastBackup")
    last_success: str | None = old.get("lastSuccessfulBackupTime")

    # The newest success wins; the Jobs it comes from are pruned by history limits, so status is the memory.
    successes = sorted((j for j in i.jobs if j.state == "Succeeded"), key=_end)
    if successes:
        j = successes[-1]
        known = parse_time(last_success)
        if known is None or _end(j) > known:
            last_success = fmt(_end(j))
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
                f"{A_BACKUP_NOW}={record['lastRequest']} was not run: spec.backup is not set",
                generation,
            )
        return Decision(last_backup, last_success, record, refusal, create, refused)

    # When the current schedule started counting: a new, changed or un-suspended schedule is not judged by
    # the gaps before it.
    if i.suspended:
        record.pop("scheduleSince", None)
        record["schedule"] = i.schedule
    elif record.get("schedule") != i.schedule or not record.get("scheduleSince"):
        record["schedule"] = i.schedule
        record["scheduleSince"] = fmt(i.now)

    finished = sorted((j for j in i.jobs if j.state != "Active"), key=_end)
    newest = finished[-1] if finished else None
    failed = (
        newest
        if newest and newest.state == "Failed" and ((t := parse_time(last_success)) is None or _end(newest) > t)
        else None
    )
    failure = f"the newest backup Job {failed.name} failed: {failed.reason}" if failed else ""

    missed, deadline = False, None
    cond: dict[str, Any]
    if i.suspended:
        cond = (
            _cond("False", "BackupFailed", failure, generation)
            if failed
            else _cond(
                "Unknown",
                "BackupSuspended",
                "spec.backup.suspend is true: no scheduled backups are taken; " + _describe(last_backup, last_success),
                generation,
            )
        )
        return Decision(last_backup, last_success, record, cond, create, refused)

    anchors = [t for t in (parse_time(last_success), parse_time(record.get("scheduleSince")), i.cronjob_created) if t]
    anchor = max(anchors) if anchors else i.now
    try:
        deadline = missed_deadline(i.schedule or "", anchor)
    except ScheduleError as e:
        cond = _cond("Unknown", "InvalidSchedule", str(e), generation)
        return Decision(last_backup, last_success, record, cond, create, refused)
    missed = i.now >= deadline
    if missed:
        since = (
            f"since the last success at {last_success}"
            if last_success and parse_time(last_success) == anchor
            else f"since the schedule started at {fmt(anchor)}"
        )
        msg = f"no backup succeeded {since}: schedule {i.schedule!r} wanted one by {fmt(deadline)} (two intervals)"
        cond = _cond("False", "BackupMissed", f"{msg}; {failure}" if failure else msg, generation)
    elif failed:
        cond = _cond("False", "BackupFailed", failure, generation)
    elif last_success:
        cond = _cond("True", "BackupSucceeded", _describe(last_backup, last_success), generation)
    else:
        cond = _cond(
            "Unknown",
            "NoBackupYet",
            f"no backup yet: schedule {i.schedule!r}; missed if none succeeds by {fmt(deadline)}",
            generation,
        )
    return Decision(last_backup, last_success, record, cond, create, refused, missed, deadline)


def overlay(
    status: dict[str, Any], d: Decision, old: dict[str, Any] | None = None, when: str | None = None
) -> dict[str, Any]:
    """The backup part of the status on top of st.build's roll-up. BackupSucceeded keeps its place in the list
    and its lastTransitionTime unless its status flips."""
    out = dict(status)
    for key, value in (
        ("lastBackup", d.last_backup),
        ("lastSuccessfulBackupTime", d.last_success),
        ("backup", d.record or None),
    ):
        if value:
            out[key] = value
        else:
            out.pop(key, None)
    conds = [c for c in out.get("conditions") or []]
    prev = st.condition(old or {}, CONDITION) or st.condition(status, CONDITION)
    idx = next((n for n, c in enumerate(conds) if c.get("type") == CONDITION), None)
    if d.condition is None:
        if idx is not None:
            conds.pop(idx)
    else:
        same = prev is not None and prev.get("status") == d.condition["status"] and prev.get("lastTransitionTime")
        c = {**d.condition, "lastTransitionTime": prev["lastTransitionTime"] if same and prev else (when or st.now())}
        if idx is None:
            conds.append(c)
        else:
            conds[idx] = c
    out["conditions"] = conds
    return out


def events(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Events for BackupSucceeded transitions, each once: a new failure or miss (a new failed Job is a new
    message), and the recovery."""
    before, after = st.condition(old, CONDITION), st.condition(new, CONDITION)
    if after is None:
        return []
    key = (after.get("status"), after.get("reason"))
    if before is not None and (before.get("status"), before.get("reason")) == key:
        if after.get("reason") != "BackupFailed" or before.get("message") == after.get("message"):
            return []
    if after["reason"] in ("BackupMissed", "BackupFailed"):
        return [("Warning", after["reason"], after["message"])]
    if after["status"] == "True" and before is not None and before.get("status") == "False":
        return [("Normal", "BackupSucceeded", after["message"])]
    return []


def final_state(job: JobView | None) -> Literal["create", "wait", "done", "failed"]:
    """deletionPolicy Snapshot: what the final backup Job says about proceeding with deletion."""
    if job is None:
        return "create"
    return {"Active": "wait", "Succeeded": "done", "Failed": "failed"}[job.state]  # type: ignore[return-value]


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


def job_selector(instance: str) -> str:
    return f"{naming.instance_selector(instance)},{naming.L_COMPONENT}={naming.BACKUP}"

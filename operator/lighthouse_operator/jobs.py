"""Jobs as the operator sees them: one view for the backup and restore Jobs alike, from the Job and its pods.

Both Jobs run `lighthouse-bridge backup|restore` (builders.backup.tool_container), which writes its JSON result to
the termination message, or, when it fails, leaves its log tail there (FallbackToLogsOnError). Pure functions.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import clock

State = Literal["Active", "Succeeded", "Failed"]
WORDS_LIMIT = 300


@dataclass(frozen=True)
class Result:
    """What the tool reports in its termination message: the backup's id (the one made, or the one restored), its
    time and size when it made one."""

    id: str
    time: str | None = None
    size: int | None = None


def parse_result(message: str | None) -> Result | None:
    """The tool's JSON result (the whole message, or its first line); None for a log tail or anything else."""
    if not message or not message.strip():
        return None
    text = message.strip()
    data: Any = None
    for candidate in (text, text.splitlines()[0]):
        try:
            data = json.loads(candidate)
            break
        except ValueError:
            continue
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return None
    size, when = data.get("size"), data.get("time")
    t = clock.parse(when) if isinstance(when, str) else None
    return Result(
        data["id"],
        clock.stamp(t) if t else None,
        size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
    )


def last_words(text: str | None) -> str | None:
    """From a log tail: the tool's own error line ("lighthouse-bridge restore: error: ..."), else the last line."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    if not lines:
        return None
    line = next((ln for ln in reversed(lines) if "error:" in ln), lines[-1])
    return line[:WORDS_LIMIT]


@dataclass(frozen=True)
class JobView:
    """What matters of one Job and its pods."""

    name: str
    created: datetime.datetime
    state: State
    finished: datetime.datetime | None = None  # completion (or failure) time; None while active
    failure: str = ""  # the Failed condition's "reason: message"
    result: Result | None = None  # from the newest pod that exited 0 with a result
    last_words: str | None = None  # the newest terminated container's error line (its log tail on failure)
    exit: str | None = None  # the newest terminated container: "exit code 5 (Error)"
    waiting: str | None = None  # a container that cannot start: "ErrImagePull: ..."
    uid: str = ""
    owned: bool = False  # controlled by the owner the caller asked about
    annotations: Mapping[str, str] = field(default_factory=dict)
    deleting: bool = False
    active: int = 0  # pods running now
    failed: int = 0  # pods that failed so far
    started: str | None = None  # status.startTime
    completed: str | None = None  # status.completionTime


def _true_conditions(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        c.get("type", ""): c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    }


def _container(pod: Mapping[str, Any], container: str) -> Mapping[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == container:
            return dict(cs)
    return {}


def _terminated(cs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    t = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
    return dict(t) if t else None


def view(
    job: Mapping[str, Any], pods: Iterable[Mapping[str, Any]], container: str, owner_uid: str | None = None
) -> JobView:
    """One Job and its pods (any order; pods of other Jobs are ignored) -> what the backup and restore decisions
    read. `container` is the tool's container; `owner_uid` the controller the caller expects (JobView.owned)."""
    md, status = job.get("metadata") or {}, job.get("status") or {}
    uid = md.get("uid", "")
    owned = bool(owner_uid) and any(
        r.get("uid") == owner_uid and r.get("controller") for r in md.get("ownerReferences") or []
    )
    mine = sorted(
        (p for p in pods if any(r.get("uid") == uid for r in (p.get("metadata") or {}).get("ownerReferences") or [])),
        key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "",
    )
    terminated: Mapping[str, Any] | None = None
    result, waiting = None, None
    for pod in mine:
        cs = _container(pod, container)
        if (t := _terminated(cs)) is not None:
            terminated = t
            if t.get("exitCode") == 0 and (r := parse_result(t.get("message"))):
                result = r
        w = (cs.get("state") or {}).get("waiting") or {}
        if w.get("reason") not in (None, "ContainerCreating"):
            waiting = ": ".join(x for x in (w.get("reason"), w.get("message")) if x)
    exit_ = None
    if terminated is not None and terminated.get("exitCode") is not None:
        exit_ = f"exit code {terminated['exitCode']}" + (
            f" ({terminated['reason']})" if terminated.get("reason") else ""
        )

    created = clock.parse(md.get("creationTimestamp")) or clock.EPOCH
    conds = _true_conditions(job)
    state: State = "Active"
    finished, failure = None, ""
    if "Complete" in conds:
        state = "Succeeded"
        finished = (
            clock.parse(status.get("completionTime"))
            or clock.parse(conds["Complete"].get("lastTransitionTime"))
            or created
        )
    elif "Failed" in conds:
        state = "Failed"
        c = conds["Failed"]
        finished = clock.parse(c.get("lastTransitionTime")) or created
        failure = ": ".join(x for x in (c.get("reason"), c.get("message")) if x)
    return JobView(
        name=md.get("name", "?"),
        created=created,
        state=state,
        finished=finished,
        failure=failure,
        result=result,
        last_words=last_words((terminated or {}).get("message")),
        exit=exit_,
        waiting=waiting,
        uid=uid,
        owned=owned,
        annotations=dict(md.get("annotations") or {}),
        deleting=bool(md.get("deletionTimestamp")),
        active=int(status.get("active") or 0),
        failed=int(status.get("failed") or 0),
        started=status.get("startTime"),
        completed=status.get("completionTime"),
    )


__all__ = ["JobView", "Result", "State", "last_words", "parse_result", "view"]

"""Which backups a retention policy deletes. Pure: the caller lists, this decides, the caller deletes.

Rules:
* Only complete backups (with a manifest) count. The newest complete backup is never deleted, so pruning never
  leaves a bridge without a restorable backup, and everything deleted is older than a completed one.
* ``keep_last=N`` keeps the N newest complete backups; ``max_age`` keeps those younger than it. A complete backup
  is deleted when either limit says so (both are ceilings). Neither set: nothing is deleted.
* Incomplete backups (a run that died before writing its manifest) older than the newest complete backup are
  deleted; newer ones may still be running and are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Policy:
    keep_last: int | None = None
    max_age: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep_last is not None and self.keep_last < 1:
            raise ValueError("keep_last must be at least 1")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError("max_age must be positive")

    @property
    def enabled(self) -> bool:
        return self.keep_last is not None or self.max_age is not None


@dataclass(frozen=True)
class BackupRef:
    id: str
    time: datetime
    complete: bool


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m`` or plain seconds."""
    text = text.strip().lower()
    if text.isdigit():
        return timedelta(seconds=int(text))
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration (want e.g. 30d, 12h, 1w2d, or seconds): {text!r}")
    return timedelta(seconds=total)


def select_for_deletion(backups: list[BackupRef], policy: Policy, now: datetime) -> list[BackupRef]:
    """The backups to delete, oldest first."""
    complete = sorted((b for b in backups if b.complete), key=lambda b: b.time, reverse=True)
    if not complete or not policy.enabled:
        return []
    newest = complete[0]
    doomed: list[BackupRef] = []
    for index, b in enumerate(complete[1:], start=1):
        too_many = policy.keep_last is not None and index >= policy.keep_last
        too_old = policy.max_age is not None and now - b.time > policy.max_age
        if too_many or too_old:
            doomed.append(b)
    doomed.extend(b for b in backups if not b.complete and b.time < newest.time)
    return sorted(doomed, key=lambda b: b.time)

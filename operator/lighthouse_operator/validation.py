"""Checks the CRD schema cannot express. A failure here means Stalled=True, reason InvalidSpec, a Warning Event,
and no child is touched."""

from __future__ import annotations

import re

import pydantic
from lighthouse_policy import PolicySpec

from .models import FUSE_MODES_WITH_DEVICE, LighthouseBridge

# The descriptors robfig/cron admits (as the CronJob controller reads them), and what they mean.
CRON_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
_DAYS = "sun mon tue wed thu fri sat".split()
# (low, high, names) for minute, hour, day of month, month, day of week.
_CRON_FIELDS = [(0, 59, []), (0, 23, []), (1, 31, []), (1, 12, _MONTHS), (0, 7, _DAYS)]
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(s|m|h|d))+$")


class InvalidSpec(ValueError):
    """The spec passed the API server's validation but cannot be reconciled as written."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


def _cron_value(token: str, low: int, high: int, names: list[str]) -> int:
    t = token.lower()
    if t in names:
        return names.index(t) + (1 if low == 1 else 0)
    if not t.isdigit():
        raise ValueError(token)
    v = int(t)
    if not low <= v <= high:
        raise ValueError(token)
    return v


def cron_problem(schedule: str) -> str | None:
    """None when `schedule` is a cron expression the CronJob controller accepts (5 fields, ranges, steps, names)."""
    s = schedule.strip()
    if s.startswith("TZ=") or s.startswith("CRON_TZ="):
        return "backup.schedule must not set a time zone (TZ=...); CronJob uses the controller's time zone"
    if s in CRON_MACROS:
        return None
    fields = s.split()
    if len(fields) != 5:
        return f"backup.schedule {schedule!r} must have 5 fields (minute hour day-of-month month day-of-week)"
    for field, (low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in field.split(","):
            base, _, step = part.partition("/")
            try:
                if step and (not step.isdigit() or int(step) == 0):
                    raise ValueError(step)
                if base in ("*", "?"):
                    continue
                lo, _, hi = base.partition("-")
                a = _cron_value(lo, low, high, names)
                if hi and _cron_value(hi, low, high, names) < a:
                    raise ValueError(base)
            except ValueError:
                return f"backup.schedule {schedule!r}: {part!r} is not valid (allowed {low}-{high})"
    return None


def policy_problems(policy: object) -> list[str]:
    """What the bridge would refuse in spec.bridge.policy (it would keep running on its defaults instead): unknown
    keys, wrong types, regexes that do not compile, duplicate rule ids. The same model the bridge loads it with."""
    try:
        PolicySpec.model_validate(policy)
    except pydantic.ValidationError as e:
        return [
            "bridge.policy"
            + "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"])
            + f": {err['msg']}"
            for err in e.errors()[:10]
        ]
    return []


def problems(lhb: LighthouseBridge) -> list[str]:
    spec = lhb.spec
    out: list[str] = []
    if spec.bridge.policy is not None:
        out += policy_problems(spec.bridge.policy)
    if spec.backup is not None:
        p = cron_problem(spec.backup.schedule)
        if p:
            out.append(p)
        if spec.backup.retention.max_age and not _DURATION_RE.match(spec.backup.retention.max_age):
            age = spec.backup.retention.max_age
            out.append(f"backup.retention.maxAge {age!r} is not a duration such as 720h or 30d")
    if spec.restore is not None and spec.restore.s3 is None and spec.backup is None:
        out.append("restore needs restore.s3 or backup.s3 to know where the backup lives")
    if spec.rollout.min_ready_seconds >= spec.rollout.progress_deadline_seconds:
        out.append(
            f"rollout.minReadySeconds ({spec.rollout.min_ready_seconds}) must be less than "
            f"rollout.progressDeadlineSeconds ({spec.rollout.progress_deadline_seconds})"
        )
    if spec.fuse.active and spec.fuse.mode in FUSE_MODES_WITH_DEVICE:
        res = spec.fuse.device_plugin_resource or ""
        if not res:
            out.append(
                f"fuse.devicePluginResource (for example lighthouse.dev/fuse) is required when fuse.mode is "
                f"{spec.fuse.mode} and the operator has no default (--default-fuse-device-plugin-resource)"
            )
        elif not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[-A-Za-z0-9_.]+$", res):
            out.append(f"fuse.devicePluginResource {res!r} must be a resource name such as lighthouse.dev/fuse")
    return out


def parse(body: object) -> LighthouseBridge:
    """Parse and check a raw object; raises InvalidSpec with every problem found."""
    try:
        lhb = LighthouseBridge.from_body(body)
    except pydantic.ValidationError as e:
        raise InvalidSpec([f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]) from None
    found = problems(lhb)
    if found:
        raise InvalidSpec(found)
    return lhb

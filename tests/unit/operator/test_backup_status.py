"""Backup decisions are pure: Jobs and the old status in, status.lastBackup / BackupSucceeded / a request Job out.
The one-off Jobs (on-demand, final) are pinned by a golden file like every other manifest."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from lighthouse_operator import backup as bk
from lighthouse_operator import clock, events, jobs, naming
from lighthouse_operator import status as st
from lighthouse_operator.builders import backup as builder
from lighthouse_operator.jobs import JobView
from lighthouse_operator.models import LighthouseBridge

from .test_builders import CASES, NoAliases

GOLDEN = Path(__file__).parent / "golden" / "backup-jobs.yaml"
T0 = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.UTC)
EVERY_5 = "*/5 * * * *"


def minutes(n: float) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def make(spec: dict[str, Any] | None = None, uid: str = "0000-uid") -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {"metadata": {"name": "demo", "namespace": "team-a", "uid": uid, "generation": 1}, "spec": spec or {}}
    )


def job(
    name: str,
    state: str,
    at: datetime.datetime,
    trigger: str | None = None,
    uid: str | None = None,
    reason: str = "BackoffLimitExceeded",
    message: str = "Job has reached the specified backoff limit",
) -> dict:
    labels = {naming.L_COMPONENT: "backup"} | ({naming.L_BACKUP_TRIGGER: trigger} if trigger else {})
    status: dict[str, Any] = {}
    if state == "Succeeded":
        status = {
            "completionTime": clock.stamp(at),
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": clock.stamp(at)},
                {"type": "Complete", "status": "True", "lastTransitionTime": clock.stamp(at)},
            ],
        }
    elif state == "Failed":
        status = {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": reason,
                    "message": message,
                    "lastTransitionTime": clock.stamp(at),
                }
            ]
        }
    return {
        "metadata": {
            "name": name,
            "uid": uid or f"uid-{name}",
            "labels": labels,
            "creationTimestamp": clock.stamp(at - minutes(1)),
        },
        "status": status,
    }


def pod(job_uid: str, exit_code: int, message: str | None, created: str = "2026-11-29T03:00:00Z") -> dict:
    term: dict[str, Any] = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error"}
    if message is not None:
        term["message"] = message
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": job_uid}], "creationTimestamp": created},
        "status": {"containerStatuses": [{"name": "backup", "state": {"terminated": term}}]},
    }


def inputs(views: list[JobView] | None = None, old: dict | None = None, now: datetime.datetime = T0, **kw: Any):
    base: dict[str, Any] = dict(
        configured=True,
        schedule=EVERY_5,
        suspended=False,
        jobs=views or [],
        old=old or {},
        now=now,
        cronjob_created=T0 - minutes(1),
    )
    base.update(kw)
    return bk.Inputs(**base)


def apply(d: bk.Plan, old: dict, when: str = "2026-11-29T03:00:00Z") -> dict:
    """What the reconciler writes: the old status (standing in for the roll-up) with the backups' fragment."""
    return st.compose(old, 1, [bk.fragment(d)], when)


def cond(status: dict) -> dict | None:
    return st.find(status, bk.CONDITION)


# ---------------------------------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("schedule", "step"),
    [
        (EVERY_5, minutes(5)),
        ("0 3 * * *", datetime.timedelta(days=1)),
        ("@daily", datetime.timedelta(days=1)),
        ("@hourly", datetime.timedelta(hours=1)),
        ("@weekly", datetime.timedelta(days=7)),
        ("0 0 1 * *", datetime.timedelta(days=31)),  # December to January
    ],
)
def test_interval_of_kubernetes_schedules(schedule: str, step: datetime.timedelta) -> None:
    first, got = bk.interval(schedule, T0)
    assert got == step and first > T0


def test_weekday_schedule_uses_the_gap_after_the_anchor() -> None:
    friday = datetime.datetime(2026, 11, 27, 4, 0, tzinfo=datetime.UTC)
    first, step = bk.interval("0 3 * * 1-5", friday)
    assert first.weekday() == 0 and step == datetime.timedelta(days=1)  # Monday, then Tuesday


@pytest.mark.parametrize("schedule", ["every day", "61 * * * *", "@every 1h", "* * * * * *"])
def test_bad_schedule_is_a_clear_error(schedule: str) -> None:
    with pytest.raises(bk.ScheduleError, match=r"schedule"):
        bk.interval(schedule, T0)


# ------------------------------------------------------------------------------------------------------ results


def test_result_from_the_termination_message() -> None:
    r = jobs.parse_result('{"id":"20261129T030000Z","time":"2026-11-29T03:00:07.5+00:00","size":1234}')
    assert r == jobs.Result("20261129T030000Z", "2026-11-29T03:00:07Z", 1234)
    assert jobs.parse_result("lighthouse-bridge backup: error: S3 unreachable") is None  # a log tail, not a result
    assert jobs.parse_result('{"id": "x", "size": -1}') == jobs.Result("x", None, None)
    assert jobs.parse_result('{"size": 3}') is None and jobs.parse_result(None) is None


def test_view_of_a_succeeded_job_reads_its_pods_result() -> None:
    j = job("demo-backup-1", "Succeeded", T0)
    msg = json.dumps({"id": "20261129T025900Z", "time": "2026-11-29T02:59:58Z", "size": 42})
    v = jobs.view(j, [pod("other", 0, '{"id": "wrong"}'), pod("uid-demo-backup-1", 0, msg)], bk.CONTAINER)
    assert v.state == "Succeeded" and v.finished == T0
    assert v.result == jobs.Result("20261129T025900Z", "2026-11-29T02:59:58Z", 42)


def test_view_of_a_failed_job_names_the_reason_and_the_last_log_line() -> None:
    j = job("demo-backup-2", "Failed", T0, trigger="request")
    v = jobs.view(
        j, [pod("uid-demo-backup-2", 3, "Starting backup\nlighthouse-bridge backup: error: S3 down\n")], "backup"
    )
    assert v.state == "Failed" and v.exit == "exit code 3 (Error)"
    assert bk.failure(v) == (
        "BackoffLimitExceeded: Job has reached the specified backoff limit (lighthouse-bridge backup: error: S3 down)"
    )
    assert jobs.view(job("a", "Active", T0), [], bk.CONTAINER).state == "Active"


# ----------------------------------------------------------------------------------------------------- decisions


def test_not_configured_has_no_condition_and_reads_nothing_new() -> None:
    d = bk.decide(inputs(configured=False, schedule=None), 1)
    assert d.condition is None and d.create_request_job is None and not d.missed
    assert "conditions" not in apply(d, {}) or cond(apply(d, {})) is None


def test_request_without_spec_backup_is_refused_once() -> None:
    d = bk.decide(inputs(configured=False, schedule=None, request="now-1"), 1)
    assert d.request_refused == "now-1" and d.create_request_job is None
    status = apply(d, {})
    c = cond(status)
    assert c["status"] == "Unknown" and c["reason"] == "BackupNotConfigured" and "now-1" in c["message"]
    again = bk.decide(inputs(configured=False, schedule=None, request="now-1", old=status), 1)
    assert again.request_refused is None and st.merge_patch(status, apply(again, status)) is None


def test_first_pass_waits_for_the_first_backup() -> None:
    d = bk.decide(inputs(), 1)
    c = d.condition
    assert c["status"] == "Unknown" and c["reason"] == "NoBackupYet"
    assert d.record["schedule"] == EVERY_5 and d.record["scheduleSince"] == clock.stamp(T0)
    assert d.deadline == T0 + minutes(10) and not d.missed  # two intervals since the schedule started


def test_success_sets_last_backup_from_the_result_and_is_stable() -> None:
    v = JobView(
        "demo-backup-1",
        T0,
        "Succeeded",
        T0 + minutes(2),
        result=jobs.Result("20261129T030000Z", "2026-11-29T03:01:59Z", 4096),
    )
    old = apply(bk.decide(inputs(now=T0), 1), {})
    d = bk.decide(inputs([v], old, now=T0 + minutes(3)), 1)
    status = apply(d, old, "2026-11-29T03:03:00Z")
    assert status["lastBackup"] == {"name": "20261129T030000Z", "time": "2026-11-29T03:01:59Z", "size": 4096}
    assert status["lastSuccessfulBackupTime"] == "2026-11-29T03:02:00Z"
    c = cond(status)
    assert c["status"] == "True" and c["reason"] == "BackupSucceeded" and "20261129T030000Z" in c["message"]
    # A later idle pass (even minutes later, still within two intervals) writes nothing.
    later = bk.decide(inputs([v], status, now=T0 + minutes(9)), 1)
    assert st.merge_patch(status, apply(later, status, "2026-11-29T03:09:00Z")) is None


def test_success_without_a_result_falls_back_to_the_job() -> None:
    v = JobView("demo-backup-now-abc", T0, "Succeeded", T0 + minutes(1))
    d = bk.decide(inputs([v], now=T0 + minutes(1)), 1)
    assert d.last_backup == {"name": "demo-backup-now-abc", "time": "2026-11-29T03:01:00Z"}  # no size


def test_status_remembers_successes_whose_jobs_were_pruned() -> None:
    old = {
        "lastBackup": {"name": "b1", "time": "2026-11-29T03:00:00Z"},
        "lastSuccessfulBackupTime": clock.stamp(T0),
        "backup": {"schedule": EVERY_5, "scheduleSince": clock.stamp(T0 - minutes(60))},
    }
    d = bk.decide(inputs([], old, now=T0 + minutes(4)), 1)
    assert d.last_success == clock.stamp(T0) and d.condition["status"] == "True"


def test_newest_finished_job_failing_gives_backup_failed_naming_it() -> None:
    ok = JobView("demo-backup-1", T0, "Succeeded", T0)
    bad = JobView("demo-backup-2", T0 + minutes(5), "Failed", T0 + minutes(6), "BackoffLimitExceeded")
    d = bk.decide(inputs([ok, bad], now=T0 + minutes(7)), 1)
    assert d.condition["status"] == "False" and d.condition["reason"] == "BackupFailed"
    assert "demo-backup-2" in d.condition["message"] and "BackoffLimitExceeded" in d.condition["message"]
    assert d.last_success == clock.stamp(T0) and not d.missed
    # A newer success clears it.
    ok2 = JobView("demo-backup-3", T0 + minutes(10), "Succeeded", T0 + minutes(10))
    assert bk.decide(inputs([ok, bad, ok2], now=T0 + minutes(11)), 1).condition["status"] == "True"


def test_missed_after_two_intervals_without_success() -> None:
    ok = JobView("demo-backup-1", T0, "Succeeded", T0)
    old = {"backup": {"schedule": EVERY_5, "scheduleSince": clock.stamp(T0 - minutes(1))}}
    assert not bk.decide(inputs([ok], old, now=T0 + minutes(9)), 1).missed
    d = bk.decide(inputs([ok], old, now=T0 + minutes(10)), 1)
    assert d.missed and d.condition["status"] == "False" and d.condition["reason"] == "BackupMissed"
    assert "since the last success at 2026-11-29T03:00:00Z" in d.condition["message"]
    assert "by 2026-11-29T03:10:00Z" in d.condition["message"]


def test_first_sight_of_a_schedule_is_not_judged_by_the_past() -> None:
    # An operator upgrade finds an old success and no record: the count starts now, no instant false alarm.
    old = {"lastSuccessfulBackupTime": clock.stamp(T0 - datetime.timedelta(days=3))}
    d = bk.decide(inputs(old=old, now=T0), 1)
    assert not d.missed and d.condition["status"] == "True" and d.deadline == T0 + minutes(10)


def test_missed_with_no_success_counts_from_the_cronjob() -> None:
    old = apply(bk.decide(inputs(now=T0), 1), {})  # scheduleSince = T0, CronJob created at T0 - 1m
    active = JobView("demo-backup-1", T0 + minutes(1), "Active")  # e.g. its image cannot be pulled
    d = bk.decide(inputs([active], old, now=T0 + minutes(10)), 1)
    assert d.missed and "since the schedule started at 2026-11-29T03:00:00Z" in d.condition["message"]
    # Missed wins over a failure, and names it.
    bad = JobView("demo-backup-0", T0, "Failed", T0 + minutes(2), "DeadlineExceeded")
    d = bk.decide(inputs([bad], old, now=T0 + minutes(10)), 1)
    assert d.condition["reason"] == "BackupMissed"
    assert "demo-backup-0 failed: DeadlineExceeded" in d.condition["message"]


def test_suspended_is_unknown_and_never_missed() -> None:
    old = {"lastSuccessfulBackupTime": clock.stamp(T0 - minutes(600))}
    d = bk.decide(inputs(old=old, suspended=True, now=T0), 1)
    assert d.condition["status"] == "Unknown" and d.condition["reason"] == "BackupSuspended" and not d.missed
    assert "scheduleSince" not in d.record
    # Lifting suspend starts a fresh count instead of reporting the gap as missed.
    resumed = bk.decide(inputs(old=apply(d, old), now=T0 + minutes(1)), 1)
    assert not resumed.missed and resumed.record["scheduleSince"] == clock.stamp(T0 + minutes(1))


def test_changed_schedule_restarts_the_count() -> None:
    old = {"backup": {"schedule": "0 3 * * *", "scheduleSince": clock.stamp(T0 - datetime.timedelta(days=30))}}
    d = bk.decide(inputs(old=old, now=T0, cronjob_created=None), 1)
    assert d.record == {"schedule": EVERY_5, "scheduleSince": clock.stamp(T0)} and not d.missed


def test_invalid_schedule_is_unknown_not_a_crash() -> None:
    d = bk.decide(inputs(schedule="whenever"), 1)
    assert d.condition["status"] == "Unknown" and d.condition["reason"] == "InvalidSchedule"


def test_request_creates_one_job_and_is_remembered() -> None:
    d = bk.decide(inputs(request="2026-11-29", request_job="demo-backup-now-x"), 1)
    assert d.create_request_job == "demo-backup-now-x"
    status = apply(d, {})
    assert status["backup"]["lastRequest"] == "2026-11-29" and status["backup"]["requestJob"] == "demo-backup-now-x"
    again = bk.decide(inputs(old=status, request="2026-11-29", request_job="demo-backup-now-x"), 1)
    assert again.create_request_job is None
    new = bk.decide(inputs(old=status, request="2026-11-30", request_job="demo-backup-now-y"), 1)
    assert new.create_request_job == "demo-backup-now-y"


def test_fragment_keeps_position_and_transition_time() -> None:
    old = {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {
                "type": bk.CONDITION,
                "status": "True",
                "reason": "BackupSucceeded",
                "message": "a",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            },
            {"type": "Stalled", "status": "False"},
        ]
    }
    d = bk.Plan(
        None,
        None,
        {},
        {"type": bk.CONDITION, "status": "True", "reason": "BackupSucceeded", "message": "b", "observedGeneration": 1},
    )
    out = apply(d, old, "2026-11-29T00:00:00Z")
    assert [c["type"] for c in out["conditions"]] == ["Ready", bk.CONDITION, "Stalled"]
    assert out["conditions"][1]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    flipped = apply(bk.Plan(None, None, {}, {**d.condition, "status": "False"}), old, "2026-11-29T00:00:00Z")
    assert flipped["conditions"][1]["lastTransitionTime"] == "2026-11-29T00:00:00Z"
    removed = apply(bk.Plan(None, None, {}, None), old)
    assert [c["type"] for c in removed["conditions"]] == ["Ready", "Stalled"]


def test_events_once_per_transition() -> None:
    def s(status: str, reason: str, message: str = "m") -> dict:
        return {"conditions": [{"type": bk.CONDITION, "status": status, "reason": reason, "message": message}]}

    def posted(old: dict, new: dict) -> list[tuple[str, str, str]]:
        """The Events of a status change, as the reconcile posts them."""
        return [(e.type, e.reason, e.message) for e in events.transitions(old, new)]

    assert posted({}, s("False", "BackupMissed")) == [("Warning", "BackupMissed", "m")]
    assert posted(s("False", "BackupMissed"), s("False", "BackupMissed", "other")) == []
    assert posted(s("True", "BackupSucceeded"), s("False", "BackupFailed", "job 1")) == [
        ("Warning", "BackupFailed", "job 1")
    ]
    assert posted(s("False", "BackupFailed", "job 1"), s("False", "BackupFailed", "job 1")) == []
    assert posted(s("False", "BackupFailed", "job 1"), s("False", "BackupFailed", "job 2")) == [
        ("Warning", "BackupFailed", "job 2")
    ]  # another Job failed
    assert posted(s("False", "BackupMissed"), s("True", "BackupSucceeded", "ok")) == [
        ("Normal", "BackupSucceeded", "ok")
    ]
    assert posted(s("Unknown", "NoBackupYet"), s("True", "BackupSucceeded")) == []  # routine: no Event
    assert posted(s("True", "BackupSucceeded"), {}) == []


def test_final_backup() -> None:
    lhb = make(CASES["full"])
    name = builder.final_job_name(lhb)
    first = bk.final(lhb, None)
    assert first.state == "wait" and first.job == name and "waiting for the final backup" in first.message
    assert [w.manifest["metadata"]["name"] for w in first.writes] == [name]  # type: ignore[union-attr]
    running = bk.final(lhb, JobView(name, T0, "Active"))
    assert running.state == "wait" and running.writes == ()
    assert running.assessment.deleting_reason == "Snapshotting" and running.assessment.stalled is None
    assert bk.final(lhb, JobView(name, T0, "Succeeded", T0)).state == "done"
    failed = bk.final(lhb, JobView(name, T0, "Failed", T0, "DeadlineExceeded", last_words="error: S3 down"))
    assert failed.state == "failed" and "DeadlineExceeded (error: S3 down)" in failed.message
    assert failed.assessment.stalled == ("SnapshotFailed", failed.message)
    nothing = bk.final(make({}), None)
    assert nothing.state == "unavailable" and nothing.writes == () and "spec.backup is not set" in nothing.message


# ----------------------------------------------------------------------------------------------------- builders


def test_one_off_jobs_golden() -> None:
    lhb = make(CASES["full"])
    docs = [
        builder.job(lhb, builder.request_job_name(lhb, "2026-11-29"), "request", "2026-11-29"),
        builder.job(lhb, builder.final_job_name(lhb), "final"),
    ]
    text = yaml.dump_all(docs, Dumper=NoAliases, sort_keys=True, width=120)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), f"differs from {GOLDEN}; rerun with UPDATE_GOLDEN=1 if intended"


def test_one_off_jobs_use_the_cronjob_template() -> None:
    lhb = make(CASES["full"])
    template = builder.cronjob(lhb)["spec"]["jobTemplate"]["spec"]
    req = builder.job(lhb, "demo-backup-now-1", "request", "v1")
    final = builder.job(lhb, builder.final_job_name(lhb), "final")
    assert req["spec"] == template and final["spec"] == template
    container = template["template"]["spec"]["containers"][0]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert {"name": "LIGHTHOUSE_BACKUP_RESULT_FILE", "value": "/dev/termination-log"} in container["env"]
    assert req["metadata"]["labels"][naming.L_BACKUP_TRIGGER] == "request"
    assert req["metadata"]["annotations"] == {naming.A_BACKUP_REQUEST: "v1"}
    assert req["metadata"]["ownerReferences"][0]["uid"] == "0000-uid"
    assert "ownerReferences" not in final["metadata"]  # outlives the bridge for its logs; TTL removes it
    assert final["metadata"]["labels"][naming.L_INSTANCE] == "demo"
    assert builder.job(make({}), "x", "request") is None  # no spec.backup, no template


def test_job_names_are_stable_short_and_per_value_and_uid() -> None:
    lhb = make(CASES["full"])
    a = builder.request_job_name(lhb, "2026-11-29")
    assert a == builder.request_job_name(lhb, "2026-11-29") != builder.request_job_name(lhb, "2026-11-30")
    assert a != builder.request_job_name(make(CASES["full"], uid="other"), "2026-11-29")
    assert builder.final_job_name(lhb) != builder.final_job_name(make(CASES["full"], uid="other"))
    long = LighthouseBridge.from_body({"metadata": {"name": "x" * 40, "uid": "u"}, "spec": CASES["full"]})
    for name in (builder.request_job_name(long, "v" * 300), builder.final_job_name(long)):
        assert len(name) <= 63, name  # Job names become a pod label value


BACKUP = {"schedule": "0 3 * * *", "s3": {"bucket": "backups"}}


@pytest.mark.parametrize(
    ("spec", "warned"),
    [
        ({"backup": BACKUP}, False),  # the default server matches the image's client
        ({"backup": BACKUP, "postgres": {"managed": {"image": "docker.io/library/postgres:15.8-alpine"}}}, False),
        ({"backup": BACKUP, "postgres": {"managed": {"image": "registry:5000/postgres:16-alpine"}}}, True),
        ({"backup": BACKUP, "postgres": {"managed": {"image": "postgres:17@sha256:" + "a" * 64}}}, True),
        ({"postgres": {"managed": {"image": "postgres:17"}}}, False),  # no backups, nothing to warn about
        ({"backup": BACKUP, "postgres": {"managed": {"image": "postgres:latest"}}}, False),  # unknown version
    ],
)
def test_a_managed_postgres_newer_than_the_backup_client_is_warned_about(spec: dict[str, Any], warned: bool) -> None:
    message = bk.client_mismatch(make(spec).spec)
    assert (message is not None) == warned
    if warned:
        assert "pg_dump" in (message or "") and "15" in (message or "")

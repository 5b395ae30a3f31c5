"""Restore at creation: the pure decision (restore.decide), the Job view (jobs.view), the status it gives, the gate's
hold, and the Job builder (golden file; UPDATE_GOLDEN=1 rewrites it)."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from lighthouse_operator import builders, gate, jobs, naming, observe, restore
from lighthouse_operator import status as st
from lighthouse_operator.api import Delete
from lighthouse_operator.builders import restore as job_builder
from lighthouse_operator.models import LighthouseBridge, RestoreSpec
from lighthouse_operator.validation import InvalidSpec, parse

from .fakes import FakeKube, applier

GOLDEN = Path(__file__).parent / "golden"
NOW = "2026-11-29T12:00:00Z"
SOURCE = "s3://backups/lh/team-a/demo"
JOB = "demo-restore"
S3 = {
    "bucket": "backups",
    "prefix": "lh",
    "endpoint": "http://s3:9000",
    "credentialsSecret": "s3-creds",
    "pathStyle": True,
}


class NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def make(spec: dict[str, Any], status: dict[str, Any] | None = None, name: str = "demo") -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {
            "metadata": {"name": name, "namespace": "team-a", "uid": "0000-uid", "generation": 1},
            "spec": spec,
            "status": status or {},
        }
    )


def spec(**kw: Any) -> RestoreSpec:
    return RestoreSpec.model_validate({"from": "latest", **kw})


def job(
    *,
    active: int = 0,
    failed: int = 0,
    succeeded: bool = False,
    failed_final: bool = False,
    digest: str | None = "d1",
    owned: bool = True,
    deleting: bool = False,
    message: str | None = None,
    exit_code: int | None = None,
    waiting: str | None = None,
) -> dict[str, Any]:
    conds = []
    if succeeded:
        conds.append({"type": "Complete", "status": "True"})
    if failed_final:
        conds.append(
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
            }
        )
    md: dict[str, Any] = {"name": JOB, "uid": "job-uid", "annotations": {naming.A_RESTORE_SPEC: digest}}
    md["ownerReferences"] = [{"uid": "0000-uid" if owned else "other", "controller": True}]
    if deleting:
        md["deletionTimestamp"] = NOW
    status: dict[str, Any] = {"active": active, "failed": failed, "conditions": conds}
    if active or succeeded or failed:
        status["startTime"] = "2026-11-29T11:58:00Z"
    if succeeded:
        status["completionTime"] = "2026-11-29T11:59:30Z"
    return {"metadata": md, "status": status, "_pod": {"message": message, "exit": exit_code, "waiting": waiting}}


def view(raw: dict[str, Any] | None) -> jobs.JobView | None:
    if raw is None:
        return None
    p = raw.pop("_pod")
    pods = []
    if p["exit"] is not None or p["message"] is not None:
        term = {"exitCode": p["exit"] if p["exit"] is not None else 0, "reason": "Error" if p["exit"] else "Completed"}
        if p["message"] is not None:
            term["message"] = p["message"]
        pods.append(
            {
                "metadata": {"creationTimestamp": "2026-11-29T11:58:00Z", "ownerReferences": [{"uid": "job-uid"}]},
                "status": {"containerStatuses": [{"name": "restore", "state": {"terminated": term}}]},
            }
        )
    if p["waiting"]:
        pods.append(
            {
                "metadata": {"creationTimestamp": "2026-11-29T11:59:00Z", "ownerReferences": [{"uid": "job-uid"}]},
                "status": {
                    "containerStatuses": [
                        {"name": "restore", "state": {"waiting": {"reason": "ErrImagePull", "message": p["waiting"]}}}
                    ]
                },
            }
        )
    # A pod of an older Job of the same name (deleted, replaced) never speaks for this one.
    stranger = {
        "metadata": {"ownerReferences": [{"uid": "older-job"}]},
        "status": {
            "containerStatuses": [
                {"name": "restore", "state": {"terminated": {"exitCode": 0, "message": '{"id": "not-this-one"}'}}}
            ]
        },
    }
    return jobs.view(raw, [*pods, stranger], restore.CONTAINER, "0000-uid")


def decide(
    s: RestoreSpec | None,
    record: dict[str, Any] | None = None,
    raw: dict[str, Any] | None = None,
    started: bool = False,
    want: str | None = "d1",
) -> restore.Plan:
    return restore.decide(s, record, view(raw), want, started, SOURCE, JOB, NOW)


# ----------------------------------------------------------------------------------------------------- decision


def test_no_restore_asked_does_nothing() -> None:
    assert decide(None) == restore.NOTHING


def test_new_bridge_records_first_then_creates_the_job_and_holds() -> None:
    p = decide(spec())
    assert p.hold and p.create_job and p.persist_first and p.restoring and not p.failed
    assert p.record == {
        "phase": "Pending",
        "from": "latest",
        "job": JOB,
        "source": SOURCE,
        "startedAt": NOW,
        "message": p.restoring,
    }
    assert p.event and p.event[:2] == ("Normal", "Restoring")


def test_running_job_keeps_the_bridge_held() -> None:
    rec = {"phase": "Pending", "from": "latest", "startedAt": NOW}
    p = decide(spec(), rec, job(active=1))
    assert p.hold and not p.create_job and not p.persist_first
    assert p.record is not None and p.record["phase"] == "Running" and p.record["startedAt"] == NOW
    assert p.restoring and "running" in p.restoring
    # A retry after a failed pod says which attempt, and an image problem shows through.
    p = decide(spec(), rec, job(active=1, failed=1, waiting="simulated pull failure"))
    assert p.restoring and "attempt 2 of 3" in p.restoring and "ErrImagePull: simulated pull failure" in p.restoring


def test_success_records_the_resolved_backup_and_releases() -> None:
    result = json.dumps({"id": "20261129T110000Z", "replaced": False, "high_water": 42, "duration_seconds": 1.5})
    p = decide(spec(), {"phase": "Running", "startedAt": NOW}, job(succeeded=True, message=result, exit_code=0))
    assert not p.hold and not p.failed and not p.restoring
    assert p.record is not None
    assert p.record["phase"] == "Succeeded" and p.record["backup"] == "20261129T110000Z"
    assert p.record["completedAt"] == "2026-11-29T11:59:30Z" and p.record["startedAt"] == NOW
    assert p.event == ("Normal", "Restored", f"restored backup 20261129T110000Z from {SOURCE}")


def test_success_without_a_result_names_an_explicit_id_only() -> None:
    p = decide(spec(**{"from": "20261129T110000Z"}), {"phase": "Running"}, job(succeeded=True))
    assert p.record is not None and p.record["backup"] == "20261129T110000Z"
    p = decide(spec(), {"phase": "Running"}, job(succeeded=True))
    assert p.record is not None and "backup" not in p.record and p.record["phase"] == "Succeeded"


def test_succeeded_is_final_even_without_the_job() -> None:
    rec = {"phase": "Succeeded", "from": "latest", "backup": "20261129T110000Z"}
    for raw in (None, job(failed_final=True), job(active=1)):
        p = decide(spec(), rec, raw)
        assert p == restore.Plan(False, rec), raw
    # spec.restore removed later: still nothing to do, the record stays as history.
    assert decide(None, rec) == restore.Plan(False, rec)


def test_failure_stalls_holds_and_says_why() -> None:
    log_tail = (
        "2026-11-29 INFO lighthouse_bridge.backup: Verifying backup\n"
        "lighthouse-bridge restore: error: database 'lighthouse' is not empty (public.events); pass --replace"
    )
    p = decide(
        spec(), {"phase": "Running", "startedAt": NOW}, job(failed_final=True, failed=1, message=log_tail, exit_code=5)
    )
    assert p.hold and p.failed and not p.create_job and not p.restoring
    assert "lighthouse-bridge restore: error: database 'lighthouse' is not empty" in p.failed
    assert "exit code 5 (Error)" in p.failed and "BackoffLimitExceeded" in p.failed
    assert p.record is not None and p.record["phase"] == "Failed" and p.record["message"] == p.failed
    assert p.record["completedAt"] == NOW
    # The next pass changes nothing (no churn, completedAt kept).
    again = decide(spec(), p.record, job(failed_final=True, failed=1, message=log_tail, exit_code=5))
    assert again.record == p.record


def test_failed_job_of_an_older_spec_is_replaced() -> None:
    p = decide(spec(), {"phase": "Failed"}, job(failed_final=True, digest="old"), want="new")
    assert p.hold and p.delete_job == "job-uid" and not p.create_job and not p.failed
    assert p.record is not None and p.record["phase"] == "Pending"
    # While the old Job is being deleted (foreground), wait; once it is gone, create the new one.
    p = decide(spec(), p.record, job(failed_final=True, digest="old", deleting=True), want="new")
    assert p.hold and not p.delete_job and not p.create_job
    p = decide(spec(), p.record, None, want="new")
    assert p.hold and p.create_job


def test_a_stuck_job_of_an_older_spec_is_replaced_but_a_finished_restore_is_not() -> None:
    p = decide(spec(), {"phase": "Running"}, job(active=1, digest="old", waiting="no such image"), want="new")
    assert p.hold and p.delete_job == "job-uid"
    p = decide(spec(), {"phase": "Running"}, job(succeeded=True, digest="old"), want="new")
    assert not p.hold and not p.delete_job and p.record is not None and p.record["phase"] == "Succeeded"


def test_deleting_a_failed_job_retries() -> None:
    p = decide(spec(), {"phase": "Failed", "startedAt": "2026-11-28T00:00:00Z", "completedAt": "x"}, None)
    assert p.hold and p.create_job and p.record is not None
    assert p.record["phase"] == "Pending" and p.record["startedAt"] == NOW and "completedAt" not in p.record


def test_restore_added_to_a_running_bridge_is_skipped_with_a_warning() -> None:
    p = decide(spec(), None, None, started=True)
    assert not p.hold and not p.create_job and not p.persist_first
    assert p.record == {"phase": "Skipped", "from": "latest", "message": restore.SKIPPED}
    assert p.warning == restore.SKIPPED and "docs/restore.md" in p.warning
    # Final: the warning stays while spec.restore does, and goes with it.
    assert decide(spec(), p.record, None, started=True).warning == restore.SKIPPED
    assert decide(None, p.record).warning is None and not decide(None, p.record).hold


def test_removing_spec_restore_cancels() -> None:
    rec = {"phase": "Running", "from": "latest", "startedAt": NOW}
    p = decide(None, rec, job(active=1))
    assert p.hold and p.delete_job == "job-uid" and p.record is not None and p.record["phase"] == "Failed"
    assert p.record["message"] == restore.CANCELLED
    p = decide(None, p.record, job(active=1, deleting=True))
    assert p.hold and p.delete_job is None
    p = decide(None, p.record, None)
    assert not p.hold and p.record is not None and p.record["phase"] == "Failed"


def test_restore_given_again_after_a_cancel_is_decided_afresh() -> None:
    cancelled = {"phase": "Failed", "from": "latest", "message": restore.CANCELLED, "completedAt": NOW}
    assert decide(None, cancelled) == restore.Plan(False, cancelled)
    # The bridge ran in between: not held, skipped (a restore now would refuse the non-empty database anyway).
    p = decide(spec(), cancelled, None, started=True)
    assert not p.hold and not p.create_job and p.record is not None and p.record["phase"] == "Skipped"
    p = decide(spec(), cancelled, None, started=False)
    assert p.hold and p.create_job and p.persist_first
    lhb = make({}, status={"restore": cancelled})
    assert not restore.needs_look(lhb)


def test_a_job_of_someone_else_is_never_touched() -> None:
    p = decide(spec(), {"phase": "Pending"}, job(owned=False))
    assert p.hold and p.failed and not p.delete_job and not p.create_job and "not controlled" in p.failed


def test_bridge_started() -> None:
    assert not restore.bridge_started({}, None)
    assert restore.bridge_started({}, {"kind": "Deployment"})
    assert restore.bridge_started({"revisions": {"desired": "a", "lastGood": "a"}}, None)
    assert restore.bridge_started({"rollout": {"bridge": {"startedAt": NOW}}}, None)
    assert not restore.bridge_started({"revisions": {"desired": "a"}, "rollout": {"bridge": {}}}, None)


def test_last_words_and_result_parsing() -> None:
    assert (
        jobs.last_words("a\nlighthouse-bridge restore: error: x\nTraceback tail\n")
        == "lighthouse-bridge restore: error: x"
    )
    assert jobs.last_words("one\ntwo\n") == "two"
    assert jobs.last_words(None) is None and jobs.last_words(" \n") is None
    assert jobs.parse_result('{"id": "20261129T110000Z"}\n') == jobs.Result("20261129T110000Z")
    assert jobs.parse_result('{"id": "b1"}\nlog line after it') == jobs.Result("b1")  # the first line counts
    assert jobs.parse_result("not json") is None and jobs.parse_result('["x"]') is None


# ------------------------------------------------------------------------------------------------------ status


def build(lhb: LighthouseBridge, a: st.Assessment) -> dict[str, Any]:
    return st.compose(lhb.status, lhb.metadata.generation, [st.rollup(lhb, a)], NOW)


def test_status_while_restoring_and_after_failure() -> None:
    lhb = make({"restore": {"from": "latest"}, "backup": {"schedule": "@daily", "s3": S3}})
    held = st.Health(0, 1, False, False, "held at 0 replicas: waiting for the restore")
    out = build(lhb, st.Assessment(components={"bridge": held}, restoring="restoring latest"))
    conds = {c["type"]: c for c in out["conditions"]}
    assert out["phase"] == "Restoring"
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "Restoring")
    assert (conds["Reconciling"]["status"], conds["Reconciling"]["reason"]) == ("True", "Restoring")
    assert conds["Stalled"]["status"] == "False" and conds["Degraded"]["status"] == "False"
    out = build(lhb, st.Assessment(components={"bridge": held}, stalled=("RestoreFailed", "boom")))
    conds = {c["type"]: c for c in out["conditions"]}
    assert (conds["Stalled"]["status"], conds["Stalled"]["reason"], conds["Stalled"]["message"]) == (
        "True",
        "RestoreFailed",
        "boom",
    )
    assert (conds["Ready"]["status"], conds["Reconciling"]["status"]) == ("False", "False")


def test_status_restore_is_carried_through_other_writes() -> None:
    rec = {"phase": "Succeeded", "from": "latest", "backup": "20261129T110000Z"}
    lhb = make({}, status={"restore": rec})
    assert build(lhb, st.Assessment(paused=True))["restore"] == rec
    assert st.compose(lhb.status, 2, [st.reconciling_first(2)], NOW)["restore"] == rec
    # ... and a plan that has nothing to say about it leaves it alone.
    assert restore.fragment(restore.plan(lhb, None, {}, NOW)) == st.Fragment(fields={"restore": rec})


# -------------------------------------------------------------------------------------------------- gate, hold


def test_hold_bridge_sets_only_the_bridge_deployment_to_zero() -> None:
    lhb = make({"replicas": 3, "restore": {"from": "latest"}, "backup": {"schedule": "@daily", "s3": S3}})
    children = builders.desired_children(lhb)
    held = restore.hold_bridge(children, lhb)
    by = {(m["kind"], m["metadata"]["name"]): m for m in held}
    assert by[("Deployment", "demo-bridge")]["spec"]["replicas"] == 0
    assert by[("StatefulSet", "demo-postgres")]["spec"]["replicas"] == 1
    # The builders' output is not mutated.
    assert next(m for m in children if m["kind"] == "Deployment")["spec"]["replicas"] == 3


async def test_gate_does_not_judge_or_start_a_held_bridge() -> None:
    lhb = make(
        {
            "restore": {"from": "latest"},
            "backup": {"schedule": "@daily", "s3": S3},
            "rollout": {"progressDeadlineSeconds": 5},
        }
    )
    kube = FakeKube()
    g = gate.Gate(kube, applier(kube))
    desired = restore.hold_bridge(builders.desired_children(lhb), lhb)
    later = datetime.datetime(2026, 11, 29, 13, 0, tzinfo=datetime.UTC)
    result = await g.prepare(lhb, desired, now=later, hold={naming.BRIDGE: "waiting for the restore"})
    d = result.judged[naming.BRIDGE].decision
    assert d.action == "wait" and d.reason == "Held" and d.record.started_at is None
    assert d.record.last_good is None
    assert all(j.decision.action in ("wait", "proceed") for j in result.judged.values())
    # Without the hold the same bridge starts a rollout (and its deadline) now.
    result = await g.prepare(lhb, desired, now=later)
    assert result.judged[naming.BRIDGE].decision.record.started_at == "2026-11-29T13:00:00Z"


# --------------------------------------------------------------------------------------------------- the Job


def test_job_golden() -> None:
    lhb = make(
        {
            "image": "registry.example/lighthouse-bridge:1.2.3",
            "bridge": {"logLevel": "debug"},
            "backup": {"schedule": "@daily", "s3": {"bucket": "mine"}},
            "restore": {
                "from": "20261129T110000Z",
                "s3": S3,
                "sourceName": "old",
                "sourceNamespace": "team-b",
                "resources": {"limits": {"memory": "512Mi"}},
            },
        }
    )
    text = yaml.dump(job_builder.job(lhb), Dumper=NoAliases, sort_keys=True, width=120)
    path = GOLDEN / "restore-job.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing {path}: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(), f"the restore Job differs from {path}; rerun with UPDATE_GOLDEN=1 if intended"


def test_job_reads_the_source_and_writes_this_bridges_database() -> None:
    lhb = make({"backup": {"schedule": "@daily", "s3": S3}, "restore": {}})
    m = job_builder.job(lhb)
    assert m is not None
    c = m["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["restore", "--from", "latest"] and "--replace" not in c["args"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["LIGHTHOUSE_NAME"] == "demo" and env["LIGHTHOUSE_NAMESPACE"] == "team-a"
    assert env["LIGHTHOUSE_S3_BUCKET"] == "backups" and env["LIGHTHOUSE_S3_PREFIX"] == "lh"
    assert env["LIGHTHOUSE_DATABASE_URL"] == {"secretKeyRef": {"name": "demo-postgres-credentials", "key": "url"}}
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}
    assert int(env["LIGHTHOUSE_DATABASE_WAIT_SECONDS"]) > 0
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert env["LIGHTHOUSE_RESTORE_RESULT_FILE"] == c["terminationMessagePath"]
    spec_ = m["spec"]
    assert spec_["backoffLimit"] == job_builder.BACKOFF_LIMIT and "ttlSecondsAfterFinished" not in spec_
    assert spec_["template"]["spec"]["restartPolicy"] == "Never"
    # The pods carry the restore component label: the stores' NetworkPolicies admit them.
    labels = spec_["template"]["metadata"]["labels"]
    assert labels[naming.L_COMPONENT] == naming.RESTORE and labels[naming.L_INSTANCE] == "demo"
    assert job_builder.source_uri(lhb) == "s3://backups/lh/team-a/demo"
    # Another bridge's backups: its identity, and restore.s3 over backup.s3.
    other = make(
        {
            "backup": {"schedule": "@daily", "s3": S3},
            "restore": {"s3": {"bucket": "elsewhere"}, "sourceName": "old", "sourceNamespace": "prod"},
        }
    )
    assert job_builder.source_uri(other) == "s3://elsewhere/prod/old"


def test_job_digest_follows_what_the_job_runs() -> None:
    def digest(spec_: dict[str, Any]) -> str:
        m = job_builder.job(make(spec_))
        assert m is not None
        return m["metadata"]["annotations"][naming.A_RESTORE_SPEC]

    base = {"backup": {"schedule": "@daily", "s3": S3}, "restore": {"from": "latest"}}
    assert digest(base) == digest(json.loads(json.dumps(base)))
    assert digest(base) != digest({**base, "restore": {"from": "20261129T110000Z"}})
    assert digest(base) != digest({**base, "image": "x/bridge:2"})
    assert digest(base) == digest({**base, "replicas": 4})  # replicas do not shape the Job


def test_restore_without_a_location_is_an_invalid_spec() -> None:
    with pytest.raises(InvalidSpec, match=r"restore needs restore\.s3 or backup\.s3"):
        parse({"metadata": {"name": "demo"}, "spec": {"restore": {"from": "latest"}}})
    assert job_builder.job(make({"restore": {"from": "latest"}})) is None


async def test_observe_plan_and_perform_against_a_fake_api() -> None:
    lhb = make({"backup": {"schedule": "@daily", "s3": S3}, "restore": {"from": "latest"}})
    kube = FakeKube()
    p = restore.plan(lhb, await observe.restore_job(kube, lhb), {}, NOW)
    assert p.create_job and p.persist_first
    done = await applier(kube).perform(p.writes)
    assert [str(d) for d in done] == ["Created Job/demo-restore"]
    assert ("Job", "team-a", "demo-restore") in kube.objects
    lhb.status = {"restore": p.record}
    p = restore.plan(lhb, await observe.restore_job(kube, lhb), {}, NOW)
    assert p.hold and not p.create_job and p.record is not None and p.record["phase"] == "Pending"
    assert p.writes == ()
    # A Job made for another spec.restore is replaced: deleted in the foreground, precondition on its uid.
    kube.objects[("Job", "team-a", "demo-restore")]["metadata"]["annotations"][naming.A_RESTORE_SPEC] = "old"
    p = restore.plan(lhb, await observe.restore_job(kube, lhb), {}, NOW)
    uid = kube.objects[("Job", "team-a", "demo-restore")]["metadata"]["uid"]
    assert p.writes == (
        Delete("batch/v1", "Job", "team-a", "demo-restore", uid, "Foreground", reason="RestoreReplaced"),
    )
    # Nothing is read once the restore is final.
    lhb.status = {"restore": {"phase": "Succeeded"}}
    assert not restore.needs_look(lhb)

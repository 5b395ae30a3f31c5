"""The health gate's I/O (gate.py) against the in-memory FakeKube: stamping, history, restore, stuck pods, status.

The judgement itself is tested on captured objects in test_rollout.py; the real API server is in
tests/integration/operator/test_rollout.py.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
from typing import Any

from lighthouse_operator import builders, gate, naming, revision, rollout
from lighthouse_operator import status as st
from lighthouse_operator.builders import secrets as secret_builders
from lighthouse_operator.models import LighthouseBridge

from tests.unit.operator.fakes import FakeKube, applier

NOW = datetime.datetime(2026, 11, 29, 21, 0, 0, tzinfo=datetime.UTC)


def make(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None
) -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {
            "metadata": {
                "name": "demo",
                "namespace": "ns",
                "uid": "uid-1",
                "generation": 1,
                "annotations": annotations or {},
            },
            "spec": spec or {},
            "status": status or {},
        }
    )


def kube_with_secrets(lhb: LighthouseBridge) -> FakeKube:
    kube = FakeKube()
    for m in secret_builders.generated_secrets(lhb):
        m = copy.deepcopy(m)
        data = m.pop("stringData", None) or {}
        m["data"] = {**(m.get("data") or {}), **{k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
        kube.objects[("Secret", "ns", m["metadata"]["name"])] = m
    return kube


def prepare(kube: FakeKube, lhb: LighthouseBridge, now: datetime.datetime = NOW) -> gate.GateResult:
    return asyncio.run(gate.Gate(kube, applier(kube)).prepare(lhb, builders.desired_children(lhb), now))


def bridge_manifest(result: gate.GateResult) -> dict[str, Any]:
    return next(m for m in result.manifests if m["kind"] == "Deployment")


def test_first_pass_stamps_every_workload_and_records_its_template() -> None:
    lhb = make()
    kube = kube_with_secrets(lhb)
    result = prepare(kube, lhb)
    assert set(result.judged) == {naming.BRIDGE, naming.POSTGRES, naming.REDIS}
    for comp, j in result.judged.items():
        assert j.decision.action == "proceed" and j.decision.record.started_at == "2026-11-29T21:00:00Z"
        m = next(m for m in result.manifests if gate.component_of(m) == comp)
        assert revision.template_revision(m) == j.revision
        cr = kube.objects[("ControllerRevision", "ns", f"demo-{comp}-{j.revision}")]
        assert revision.stored_template(cr) == m["spec"]["template"] and cr["revision"] == 1
    assert result.writes == 3
    # Everything that is not a judged workload passes through untouched.
    others = [m for m in builders.desired_children(lhb) if gate.component_of(m) is None]
    assert [m for m in result.manifests if gate.component_of(m) is None] == others


def test_a_second_pass_with_nothing_changed_writes_nothing() -> None:
    lhb = make()
    kube = kube_with_secrets(lhb)
    first = prepare(kube, lhb)
    status = st.compose({}, 1, [rollout.fragment(first.judged, 1)], "2026-11-29T21:00:00Z")
    kube.writes.clear()
    second = prepare(kube, make(status=status))
    assert second.writes == 0 and kube.writes == []
    assert {c: j.revision for c, j in second.judged.items()} == {c: j.revision for c, j in first.judged.items()}
    assert all(j.decision.action == "wait" for j in second.judged.values())  # no workloads exist in the fake


def test_secret_content_change_changes_only_the_revisions_that_read_it() -> None:
    lhb = make()
    kube = kube_with_secrets(lhb)
    before = prepare(kube, lhb)
    token = kube.objects[("Secret", "ns", naming.Names("demo").admin_secret)]
    token["data"]["token"] = base64.b64encode(b"rotated").decode()
    after = prepare(kube, lhb)
    assert after.revision(naming.BRIDGE) != before.revision(naming.BRIDGE)
    assert after.revision(naming.POSTGRES) == before.revision(naming.POSTGRES)
    g = gate.Gate(kube, applier(kube))
    asyncio.run(g.prepare(lhb, builders.desired_children(lhb), NOW))
    assert g.parents_of("ns", "Secret", naming.Names("demo").admin_secret) == {"demo"}
    assert g.parents_of("ns", "Secret", "unrelated") == set()


def test_the_configmap_about_to_be_applied_counts_with_its_new_content() -> None:
    """A spec change that rewrites the bridge ConfigMap makes one revision at once (not one per pass)."""
    lhb = make({"bridge": {"logLevel": "debug"}})
    kube = kube_with_secrets(lhb)
    stale = builders.bridge.configmap(make())  # what the server still holds before this pass applies
    kube.objects[("ConfigMap", "ns", stale["metadata"]["name"])] = stale
    during = prepare(kube, lhb)
    kube.objects[("ConfigMap", "ns", stale["metadata"]["name"])] = builders.bridge.configmap(lhb)
    assert prepare(kube, lhb).revision(naming.BRIDGE) == during.revision(naming.BRIDGE)


def test_restart_nonce_and_annotation_roll_the_bridge_but_not_the_databases() -> None:
    lhb = make()
    kube = kube_with_secrets(lhb)
    base = prepare(kube, lhb)
    for other in (
        make({"restartNonce": "2"}),
        make(annotations={naming.A_RESTARTED_AT: "2026-11-29T21:00:00Z"}),
    ):
        r = prepare(kube, other)
        assert r.revision(naming.BRIDGE) != base.revision(naming.BRIDGE)
        assert r.revision(naming.POSTGRES) == base.revision(naming.POSTGRES)
        assert r.revision(naming.REDIS) == base.revision(naming.REDIS)


def failed_status(rev: str, last_good: str, component: str = naming.BRIDGE) -> dict[str, Any]:
    rec = rollout.Record(
        revision=rev,
        started_at="2026-11-29T20:50:00Z",
        phase="Failed",
        last_good=last_good,
        failed_revision=rev,
        reason="CrashLoopBackOff",
        message="pod x: CrashLoopBackOff",
        detected_at="2026-11-29T20:51:00Z",
    )
    return {"rollout": {component: rec.to_status()}}


def test_rollback_puts_the_stored_last_good_template_back_without_touching_the_spec() -> None:
    lhb = make({"image": "localhost/lighthouse-bridge:0.2.0-broken"})
    kube = kube_with_secrets(lhb)
    rev = prepare(kube, lhb).revision(naming.BRIDGE)
    assert rev is not None
    good_template = {
        "metadata": {
            "labels": naming.labels("demo", naming.BRIDGE),
            "annotations": {naming.A_REVISION: "good1"},
        },
        "spec": {"containers": [{"name": "bridge", "image": "localhost/lighthouse-bridge:0.1.0"}]},
    }
    cr = revision.controller_revision(lhb, naming.BRIDGE, "good1", good_template, 1)
    kube.objects[("ControllerRevision", "ns", cr["metadata"]["name"])] = cr
    spec_before = lhb.spec.model_dump()
    result = prepare(
        kube, make({"image": "localhost/lighthouse-bridge:0.2.0-broken"}, status=failed_status(rev, "good1"))
    )
    d = result.judged[naming.BRIDGE].decision
    assert d.action == "rollback" and d.restore == "good1" and not d.fresh
    dep = bridge_manifest(result)
    assert dep["spec"]["template"] == good_template
    assert "paused" not in dep["spec"]
    assert lhb.spec.model_dump() == spec_before
    # The failed revision is not recorded again as a candidate, and nothing new is written.
    assert result.writes == 0 or all(
        j.decision.applies_desired for j in result.judged.values() if j.component != naming.BRIDGE
    )


def test_rollback_without_its_stored_template_freezes_instead() -> None:
    lhb = make({"image": "localhost/lighthouse-bridge:0.2.0-broken"})
    kube = kube_with_secrets(lhb)
    rev = prepare(kube, lhb).revision(naming.BRIDGE)
    assert rev is not None
    result = prepare(
        kube, make({"image": "localhost/lighthouse-bridge:0.2.0-broken"}, status=failed_status(rev, "gone1"))
    )
    d = result.judged[naming.BRIDGE].decision
    assert d.action == "freeze" and "missing" in d.message
    assert bridge_manifest(result)["spec"]["paused"] is True


def status_after(lhb: LighthouseBridge, result: gate.GateResult, when: str) -> dict[str, Any]:
    """What the reconcile composes: the roll-up (of nothing, here), then the rollout's fragment."""
    fragments = [st.rollup(lhb, st.Assessment(components={})), rollout.fragment(result.judged, 1)]
    return st.compose(lhb.status, 1, fragments, when)


def test_status_after_a_rollback() -> None:
    lhb = make({"image": "localhost/lighthouse-bridge:0.2.0-broken"})
    kube = kube_with_secrets(lhb)
    rev = prepare(kube, lhb).revision(naming.BRIDGE)
    assert rev is not None
    cr = revision.controller_revision(lhb, naming.BRIDGE, "good1", {"metadata": {}, "spec": {}}, 1)
    kube.objects[("ControllerRevision", "ns", cr["metadata"]["name"])] = cr
    failed = make({"image": "localhost/lighthouse-bridge:0.2.0-broken"}, status=failed_status(rev, "good1"))
    result = prepare(kube, failed)
    out = status_after(failed, result, "2026-11-29T21:00:00Z")
    conds = {c["type"]: c for c in out["conditions"]}
    assert {t: conds[t]["status"] for t in ("Ready", "Stalled", "RolledBack", "Degraded", "Reconciling")} == {
        "Ready": "False",
        "Stalled": "True",
        "RolledBack": "True",
        "Degraded": "True",
        "Reconciling": "False",
    }
    assert rev in conds["RolledBack"]["message"] and "CrashLoopBackOff" in conds["RolledBack"]["message"]
    assert conds["Ready"]["message"].startswith("bridge: ")
    assert out["phase"] == "RolledBack"
    assert out["revisions"]["desired"] == rev and out["revisions"]["lastGood"] == "good1"
    assert out["rollout"][naming.BRIDGE]["failedRevision"] == rev
    # The next pass (a resync five minutes later) writes exactly the same status: no churn, no moving times.
    again = make({"image": "localhost/lighthouse-bridge:0.2.0-broken"}, status=out)
    result2 = prepare(kube, again, NOW + datetime.timedelta(minutes=5))
    assert status_after(again, result2, "2026-11-29T21:05:00Z") == out


def test_finish_deletes_stuck_statefulset_pods_and_posts_events_once() -> None:
    lhb = make()
    kube = kube_with_secrets(lhb)
    body = {
        "apiVersion": "lighthouse.dev/v1alpha1",
        "kind": "LighthouseBridge",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "uid-1"},
    }
    kube.objects[("Pod", "ns", "demo-postgres-0")] = {
        "kind": "Pod",
        "metadata": {"name": "demo-postgres-0", "namespace": "ns"},
    }
    rec = rollout.Record.from_status(failed_status("p2", "p1", naming.POSTGRES)["rollout"][naming.POSTGRES])
    d = rollout.RolloutDecision(
        "rollback",
        "CrashLoopBackOff",
        "m",
        "p2",
        rec,
        "p2",
        rec.detected_at,
        "p1",
        fresh=True,
        delete_pods=("demo-postgres-0",),
    )
    result = gate.GateResult(
        manifests=[],
        judged={naming.POSTGRES: rollout.Judged(naming.POSTGRES, "StatefulSet", "demo-postgres", "p2", d, None)},
    )
    writes = asyncio.run(gate.Gate(kube, applier(kube)).finish(body, result))
    assert writes == 1 and ("Pod", "ns", "demo-postgres-0") not in kube.objects
    assert [r for _, r, _ in kube.events] == ["DeletedStuckPod", "RolloutFailed", "RolledBack"]


def test_the_earliest_progress_deadline_is_reported_for_a_timely_look() -> None:
    lhb = make({"rollout": {"progressDeadlineSeconds": 90}})
    result = prepare(kube_with_secrets(lhb), lhb)
    assert result.wake_in == 90  # every workload just started its rollout
    done = rollout.Record(revision="x", phase="Complete", last_good="x")
    assert rollout.seconds_until_deadline(done, rollout.Policy(), NOW) is None

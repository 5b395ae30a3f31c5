"""Health-gated rollouts and automatic rollback on the real control plane (kwok plays the kubelet).

Image tags pick a pod's fate (hack/cluster/stages/pod.yaml): `broken` crash-loops (restartCount grows every few
seconds), `pullfail` goes ErrImagePull -> ImagePullBackOff, `flapping` is Ready for ~1 s then NotReady for ~3 s, for
ever; anything else is Ready after ~1 s.
Every wait is bounded and polls; nothing asserts on elapsed time.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any, Self

from lighthouse_operator import clock, naming

from tests.harness.cluster import wait_for

from .conftest import RESYNC, Kubectl, Operator, condition, is_ready, lhb

GOOD = "localhost/lighthouse-bridge:0.1.0"
GOOD2 = "localhost/lighthouse-bridge:0.2.0"
BROKEN = "localhost/lighthouse-bridge:0.2.0-broken"
PULLFAIL = "localhost/lighthouse-bridge:0.2.0-pullfail"
FLAPPING = "localhost/lighthouse-bridge:0.2.0-flapping"
TIMEOUT = 120


def spec(image: str = GOOD, replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {"image": image, "replicas": replicas, **extra}


def wait_ready(k: Kubectl, name: str = "demo") -> dict[str, Any]:
    return wait_for(
        lambda: (o := k.get("lhb", name)) and is_ready(o) and o,
        timeout=TIMEOUT,
        message=f"lhb/{name} Ready at its current generation",
    )


def wait_condition(
    k: Kubectl, type_: str, status: str = "True", name: str = "demo", timeout: float = TIMEOUT
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        o = k.get("lhb", name)
        c = condition(o, type_)
        return o if c and c["status"] == status else None

    return wait_for(check, timeout=timeout, message=f"lhb/{name} {type_}={status}")


def template_image(dep: dict[str, Any]) -> str:
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


def bridge_pods(k: Kubectl) -> list[dict[str, Any]]:
    return k.items("pods", naming.selector_string("demo", naming.BRIDGE))


def events(k: Kubectl) -> list[tuple[str, str, str]]:
    return [
        (e["type"], e["reason"], e["message"])
        for e in k.get("events")["items"]
        if e["involvedObject"].get("kind") == "LighthouseBridge" and e["involvedObject"].get("name") == "demo"
    ]


class Sampler:
    """Calls sample() every 0.2 s in a background thread for the duration of a `with` block."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception:  # the namespace is young or going, or the API server busy: the next sample counts
                pass
            time.sleep(0.2)

    def __enter__(self) -> Self:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(timeout=10)


class ReadySampler(Sampler):
    """The bridge Deployment's readyReplicas: the lowest value seen is what a client of the Service would have lived
    through."""

    def __init__(self, k: Kubectl):
        super().__init__()
        self.k, self.samples = k, []

    def sample(self) -> None:
        dep = self.k.get("deployment", "demo-bridge")
        if dep is not None:
            self.samples.append((dep.get("status") or {}).get("readyReplicas") or 0)


class FlapSampler(Sampler):
    """The bridge Deployment and the pods of one image, through the official client (no kubectl per sample):
    readyReplicas, the Deployment controller's Progressing reasons, and every Ready transition of those pods as
    (pod, Ready, the condition's lastTransitionTime)."""

    def __init__(self, k: Kubectl, image: str):
        from kubernetes import client

        super().__init__()
        self.apps, self.core = client.AppsV1Api(k.cluster.api), client.CoreV1Api(k.cluster.api)
        self.ns, self.image = k.ns, image
        self.ready_replicas: list[int] = []
        self.progressing: set[str] = set()
        self.transitions: list[tuple[str, bool, str]] = []

    def sample(self) -> None:
        dep = self.apps.read_namespaced_deployment("demo-bridge", self.ns)
        self.ready_replicas.append(dep.status.ready_replicas or 0)
        self.progressing |= {c.reason for c in dep.status.conditions or [] if c.type == "Progressing"}
        seen = {pod: ready for pod, ready, _ in self.transitions}  # the last state recorded per pod
        pods = self.core.list_namespaced_pod(self.ns, label_selector=naming.selector_string("demo", naming.BRIDGE))
        for p in pods.items:
            if p.spec.containers[0].image != self.image or p.status.conditions is None:
                continue
            cond = next((c for c in p.status.conditions if c.type == "Ready"), None)
            if cond is not None and seen.get(p.metadata.name) != (cond.status == "True"):
                self.transitions.append(
                    (p.metadata.name, cond.status == "True", clock.stamp(cond.last_transition_time))
                )

    def rises(self) -> list[str]:
        """When a pod of the image turned Ready (the ready count went up): lastTransitionTime, in order."""
        return [at for _, ready, at in self.transitions if ready]


def rollbacks(operator: Operator) -> float:
    return sum(
        v
        for key, v in operator.metrics().items()
        if key.startswith("lighthouse_operator_rollbacks_total{") and 'action="rollback"' in key
    )


# ---------------------------------------------------------------------------------------------------------------------


def test_good_rollout_advances_last_good_and_keeps_history(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec()))
    first = wait_ready(k)["status"]["revisions"]
    assert first["desired"] == first["serving"] == first["lastGood"]
    k.apply(lhb("demo", spec(GOOD2)))
    second = wait_ready(k)["status"]
    revs = second["revisions"]
    assert revs["desired"] == revs["serving"] == revs["lastGood"] != first["lastGood"]
    assert second["rollout"]["bridge"]["phase"] == "Complete"
    dep = k.get("deployment", "demo-bridge")
    assert dep["spec"]["template"]["metadata"]["annotations"][naming.A_REVISION] == revs["desired"]
    history = k.items("controllerrevisions", naming.history_selector("demo", naming.BRIDGE))
    stored = {cr["metadata"]["labels"][naming.L_REVISION]: cr for cr in history}
    assert {first["desired"], revs["desired"]} <= set(stored)
    assert stored[revs["desired"]]["revision"] > stored[first["desired"]]["revision"]
    assert template_image({"spec": {"template": stored[revs["desired"]]["data"]["template"]}}) == GOOD2
    owner = k.get("lhb", "demo")["metadata"]["uid"]
    assert all(cr["metadata"]["ownerReferences"][0]["uid"] == owner for cr in history)


def test_spec_back_to_an_earlier_revision_rolls_out(k: Kubectl, operator: Operator) -> None:
    # The manual rollback of the runbook (revert spec.image): the earlier revision's ControllerRevision becomes the
    # newest again. It used to be renumbered with a patch, which the API server refused ("data: field is
    # immutable"), and the bridge stayed Stalled with ApplyRejected.
    k.apply(lhb("demo", spec()))
    first = wait_ready(k)["status"]["revisions"]["desired"]
    k.apply(lhb("demo", spec(GOOD2)))
    second = wait_ready(k)["status"]["revisions"]["desired"]
    k.apply(lhb("demo", spec()))
    back = wait_ready(k)["status"]
    assert back["revisions"]["desired"] == back["revisions"]["lastGood"] == first != second
    history = k.items("controllerrevisions", naming.history_selector("demo", naming.BRIDGE))
    numbers = {cr["metadata"]["labels"][naming.L_REVISION]: cr["revision"] for cr in history}
    assert numbers == {first: 3, second: 2}
    assert condition(k.get("lhb", "demo"), "Stalled")["status"] == "False"


def test_broken_image_is_rolled_back_while_the_old_pods_keep_serving(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(rollout={"crashLoopRestarts": 2})))
    good = wait_ready(k)["status"]["revisions"]["lastGood"]
    before = rollbacks(operator)
    with ReadySampler(k) as sampler:
        k.apply(lhb("demo", spec(BROKEN, rollout={"crashLoopRestarts": 2})))
        obj = wait_condition(k, "RolledBack")
        # Bad pods = 0: the broken ReplicaSet is scaled away once the last-good template is back.
        wait_for(
            lambda: (
                not [p for p in bridge_pods(k) if template_image({"spec": {"template": {"spec": p["spec"]}}}) == BROKEN]
            ),
            timeout=60,
            message="no broken pods left",
        )
        time.sleep(RESYNC * 2)  # a few more passes: the failed revision is not retried
    assert sampler.samples and min(sampler.samples) >= 2, sampler.samples
    st = k.get("lhb", "demo")["status"]
    revs = st["revisions"]
    assert revs["desired"] != revs["serving"] and revs["serving"] == revs["lastGood"] == good
    conds = {t: condition(obj, t) for t in ("Ready", "Stalled", "RolledBack", "Degraded")}
    assert [conds[t]["status"] for t in ("Ready", "Stalled", "RolledBack", "Degraded")] == [
        "False",
        "True",
        "True",
        "True",
    ]
    assert revs["desired"] in conds["RolledBack"]["message"]
    assert "CrashLoopBackOff" in conds["RolledBack"]["message"]
    assert st["phase"] == "RolledBack"
    # The spec is Git's: untouched. The Deployment runs the last-good template.
    assert k.get("lhb", "demo")["spec"]["image"] == BROKEN
    dep = k.get("deployment", "demo-bridge")
    assert template_image(dep) == GOOD
    assert dep["spec"]["template"]["metadata"]["annotations"][naming.A_REVISION] == good
    reasons = [(t, r) for t, r, _ in events(k)]
    assert ("Warning", "RolloutFailed") in reasons and ("Normal", "RolledBack") in reasons
    assert ("Warning", "RolledBack") not in reasons  # announced once, by the gate
    assert rollbacks(operator) == before + 1
    # A fixed spec rolls out normally and clears the rollback.
    k.apply(lhb("demo", spec(GOOD2, rollout={"crashLoopRestarts": 2})))
    fixed = wait_ready(k)
    assert condition(fixed, "RolledBack")["status"] == "False"
    assert fixed["status"]["revisions"]["lastGood"] == fixed["status"]["revisions"]["desired"] != good


def test_pullfail_is_detected_without_waiting_for_the_deadline(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(replicas=1, rollout={"progressDeadlineSeconds": 3600})))
    wait_ready(k)
    k.apply(lhb("demo", spec(PULLFAIL, replicas=1, rollout={"progressDeadlineSeconds": 3600})))
    obj = wait_condition(k, "RolledBack", timeout=60)  # far below the 3600 s deadline
    rolled = condition(obj, "RolledBack")
    assert rolled["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert template_image(k.get("deployment", "demo-bridge")) == GOOD


def test_secret_content_change_triggers_a_rollout(k: Kubectl, operator: Operator) -> None:
    k("create", "secret", "generic", "demo-extra", "-n", k.ns, "--from-literal=feature=one")
    env = [{"name": "FEATURE", "valueFrom": {"secretKeyRef": {"name": "demo-extra", "key": "feature"}}}]
    k.apply(lhb("demo", spec(replicas=1, bridge={"env": env})))
    first = wait_ready(k)
    rev1 = first["status"]["revisions"]["desired"]
    gen = first["metadata"]["generation"]
    k.patch("secret", "demo-extra", {"stringData": {"feature": "two"}})
    obj = wait_for(
        lambda: (
            (o := k.get("lhb", "demo"))
            and o["status"].get("revisions", {}).get("lastGood") not in (None, rev1)
            and is_ready(o)
            and o
        ),
        timeout=TIMEOUT,
        message="a rollout of the new content",
    )
    assert obj["metadata"]["generation"] == gen  # no spec change: the content alone rolled the pods
    dep = k.get("deployment", "demo-bridge")
    assert dep["spec"]["template"]["metadata"]["annotations"][naming.A_REVISION] != rev1
    # An unrelated key in the same Secret does not.
    k.patch("secret", "demo-extra", {"stringData": {"unrelated": "x"}})
    time.sleep(RESYNC * 2)
    assert k.get("lhb", "demo")["status"]["revisions"]["desired"] == obj["status"]["revisions"]["desired"]


def test_restart_nonce_and_restarted_at_annotation_roll_the_pods(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(replicas=1)))
    rev1 = wait_ready(k)["status"]["revisions"]["desired"]
    k.apply(lhb("demo", spec(replicas=1, restartNonce="1")))
    rev2 = wait_for(
        lambda: (
            (o := k.get("lhb", "demo"))
            and is_ready(o)
            and o["status"]["revisions"]["lastGood"] != rev1
            and o["status"]["revisions"]["lastGood"]
        ),
        timeout=TIMEOUT,
        message="nonce rollout",
    )
    k("annotate", "lhb/demo", "-n", k.ns, f"{naming.A_RESTARTED_AT}=2026-11-29T21:00:00Z")
    wait_for(
        lambda: (
            (o := k.get("lhb", "demo")) and is_ready(o) and o["status"]["revisions"]["lastGood"] not in (rev1, rev2)
        ),
        timeout=TIMEOUT,
        message="annotation rollout",
    )


def test_kubectl_rollout_restart_is_not_fought(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec()))
    rev = wait_ready(k)["status"]["revisions"]["desired"]
    old_rs = {rs["metadata"]["name"] for rs in k.items("replicasets", naming.selector_string("demo", "bridge"))}
    k("rollout", "restart", "deployment/demo-bridge", "-n", k.ns)
    k("rollout", "status", "deployment/demo-bridge", "-n", k.ns, "--timeout=90s")
    time.sleep(RESYNC * 3)  # several operator passes
    dep = k.get("deployment", "demo-bridge")
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert naming.A_KUBECTL_RESTARTED_AT in ann and ann[naming.A_REVISION] == rev
    new_rs = {
        rs["metadata"]["name"]
        for rs in k.items("replicasets", naming.selector_string("demo", "bridge"))
        if (rs.get("status") or {}).get("readyReplicas")
    }
    assert new_rs and not (new_rs & old_rs), "the restarted pods were undone"
    obj = k.get("lhb", "demo")
    assert is_ready(obj) and obj["status"]["revisions"]["desired"] == rev
    assert condition(obj, "RolledBack")["status"] == "False"
    managers = {
        m["manager"]
        for m in k.get("deployment", "demo-bridge").get("metadata", {}).get("managedFields", [])
        if "kubectl.kubernetes.io/restartedAt" in json.dumps(m.get("fieldsV1", {}))
    }
    assert naming.FIELD_MANAGER not in managers


def test_freeze_mode_pauses_where_it_is(k: Kubectl, operator: Operator) -> None:
    rollout = {"onFailure": "Freeze", "crashLoopRestarts": 2}
    k.apply(lhb("demo", spec(rollout=rollout)))
    good = wait_ready(k)["status"]["revisions"]["lastGood"]
    with ReadySampler(k) as sampler:
        k.apply(lhb("demo", spec(BROKEN, rollout=rollout)))
        obj = wait_condition(k, "Stalled")
        time.sleep(RESYNC * 2)
    assert min(sampler.samples) >= 2
    assert condition(obj, "Stalled")["reason"] == "RolloutFrozen"
    assert condition(obj, "RolledBack")["status"] == "False"
    dep = k.get("deployment", "demo-bridge")
    assert dep["spec"].get("paused") is True and template_image(dep) == BROKEN
    assert (dep.get("status") or {}).get("readyReplicas") == 2  # the old pods keep serving
    assert k.get("lhb", "demo")["status"]["revisions"]["serving"] == good
    k.apply(lhb("demo", spec(GOOD2, rollout=rollout)))
    wait_ready(k)
    assert not k.get("deployment", "demo-bridge")["spec"].get("paused")


def test_operator_killed_mid_rollout_judges_from_the_recorded_start(k: Kubectl, operator: Operator) -> None:
    rollout = {"crashLoopRestarts": 1000, "progressDeadlineSeconds": 20}  # only the deadline can fail it
    k.apply(lhb("demo", spec(replicas=1, rollout=rollout)))
    wait_ready(k)
    k.apply(lhb("demo", spec(BROKEN, replicas=1, rollout=rollout)))
    started = wait_for(
        lambda: (
            (r := (k.get("lhb", "demo")["status"].get("rollout") or {}).get("bridge"))
            and r.get("phase") == "Progressing"
            and r["startedAt"]
        ),
        timeout=30,
        message="rollout start",
    )
    operator.stop(signal.SIGKILL)
    time.sleep(5)
    operator.start()
    obj = wait_condition(k, "RolledBack", timeout=90)
    rec = obj["status"]["rollout"]["bridge"]
    assert rec["startedAt"] == started and rec["reason"] == "ProgressDeadlineExceeded"
    assert rec["detectedAt"] >= started
    assert template_image(k.get("deployment", "demo-bridge")) == GOOD


def test_statefulset_rollback_deletes_the_stuck_pod(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", spec(replicas=1, rollout={"crashLoopRestarts": 2})))
    wait_ready(k)
    pg = {"managed": {"image": "docker.io/library/postgres:17-broken"}}
    k.apply(lhb("demo", spec(replicas=1, rollout={"crashLoopRestarts": 2}, postgres=pg)))
    obj = wait_condition(k, "RolledBack")
    assert "postgres" in condition(obj, "RolledBack")["message"]
    sts = wait_for(
        lambda: (
            (s := k.get("statefulset", "demo-postgres")) and (s.get("status") or {}).get("readyReplicas") == 1 and s
        ),
        timeout=TIMEOUT,
        message="postgres Ready again",
    )
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] != pg["managed"]["image"]
    pods = k.items("pods", naming.selector_string("demo", naming.POSTGRES))
    assert [p["spec"]["containers"][0]["image"] for p in pods] == [
        sts["spec"]["template"]["spec"]["containers"][0]["image"]
    ]
    reasons = {r for _, r, _ in events(k)}
    assert {"RolloutFailed", "RolledBack", "DeletedStuckPod"} <= reasons


def test_a_flapping_revision_fails_at_the_deadline_counted_from_its_start(k: Kubectl, operator: Operator) -> None:
    # The flapping pod is Ready for ~1 s every ~4 s: never for minReadySeconds, so it never counts as available and
    # the Deployment never scales an old pod away for it. Each time it turns Ready the ready count rises, which is
    # progress to a reset-on-flap clock such as the Deployment controller's own progressDeadlineSeconds (same 20 s
    # here): that clock never runs out. Only a deadline counted from the rollout's start fails this rollout.
    deadline = 20
    rollout_spec = {"progressDeadlineSeconds": deadline, "minReadySeconds": 10}
    k.apply(lhb("demo", spec(rollout=rollout_spec)))
    good = wait_ready(k)["status"]["revisions"]["lastGood"]
    old_pods = sorted(p["metadata"]["name"] for p in bridge_pods(k))
    assert len(old_pods) == 2
    before = rollbacks(operator)
    with FlapSampler(k, FLAPPING) as sampler:
        k.apply(lhb("demo", spec(FLAPPING, rollout=rollout_spec)))
        started = wait_for(
            lambda: (
                (r := (k.get("lhb", "demo")["status"].get("rollout") or {}).get("bridge"))
                and r.get("revision") != good
                and r.get("startedAt")
            ),
            timeout=30,
            message="rollout start",
        )
        obj = wait_condition(k, "RolledBack", timeout=deadline + 60)
        wait_for(
            lambda: not [p for p in bridge_pods(k) if p["spec"]["containers"][0]["image"] == FLAPPING],
            timeout=60,
            message="no flapping pods left",
        )
    rec = obj["status"]["rollout"]["bridge"]
    assert rec["startedAt"] == started, "the start of the rollout was moved"
    assert (
        rec["reason"] == "ProgressDeadlineExceeded" and rec["failedRevision"] == obj["status"]["revisions"]["desired"]
    )
    detected = clock.parse(rec["detectedAt"])
    assert (detected - clock.parse(started)).total_seconds() >= deadline  # not before the deadline
    # The revision really flapped: its ready count rose again and again, the last time less than a deadline before
    # the failure was detected, so a clock reset by each rise would not have run out yet.
    rises = [clock.parse(at) for at in sampler.rises() if clock.parse(at) <= detected]
    assert len(rises) >= 3, sampler.transitions
    assert any(not ready for _, ready, _ in sampler.transitions), sampler.transitions
    assert (detected - rises[-1]).total_seconds() < deadline, (rises, detected)
    assert "ProgressDeadlineExceeded" not in sampler.progressing, sampler.progressing  # Kubernetes had not given up
    # Rolled back; the status says so, naming the failed revision and the deadline.
    rolled = condition(obj, "RolledBack")
    assert rolled["reason"] == "ProgressDeadlineExceeded"
    assert rec["failedRevision"] in rolled["message"]
    assert f"progressDeadlineSeconds {deadline}, counted from {started}" in rolled["message"]
    assert [condition(obj, t)["status"] for t in ("Ready", "Stalled", "RolledBack", "Degraded")] == [
        "False",
        "True",
        "True",
        "True",
    ]
    revs = k.get("lhb", "demo")["status"]["revisions"]
    assert revs["desired"] != revs["serving"] and revs["serving"] == revs["lastGood"] == good
    dep = k.get("deployment", "demo-bridge")
    assert template_image(dep) == GOOD
    assert dep["spec"]["template"]["metadata"]["annotations"][naming.A_REVISION] == good
    assert rollbacks(operator) == before + 1
    assert ("Warning", "RolloutFailed") in [(t, r) for t, r, _ in events(k)]
    # The old pods served throughout: never fewer Ready than spec.replicas, and the very same pods.
    assert sampler.ready_replicas and min(sampler.ready_replicas) >= 2, sampler.ready_replicas
    assert sorted(p["metadata"]["name"] for p in bridge_pods(k)) == old_pods


def test_going_back_to_the_last_good_spec_after_a_rollback_is_ready(k: Kubectl, operator: Operator) -> None:
    """Reverting the bad commit in Git: the last-good revision comes back as the newest (its ControllerRevision is
    recorded again with the next number) and the bridge is Ready, with no rejected write."""
    k.apply(lhb("demo", spec(rollout={"crashLoopRestarts": 2})))
    good = wait_ready(k)["status"]["revisions"]["lastGood"]
    k.apply(lhb("demo", spec(BROKEN, rollout={"crashLoopRestarts": 2})))
    wait_condition(k, "RolledBack")
    k.apply(lhb("demo", spec(rollout={"crashLoopRestarts": 2})))
    back = wait_ready(k)["status"]
    assert back["revisions"] == {"desired": good, "serving": good, "lastGood": good}
    history = k.items("controllerrevisions", naming.history_selector("demo", naming.BRIDGE))
    numbers = {cr["metadata"]["labels"][naming.L_REVISION]: cr["revision"] for cr in history}
    assert numbers[good] == max(numbers.values()) and len(numbers) == 2, numbers


def test_a_first_revision_frozen_on_a_transient_failure_is_ready_once_it_runs(k: Kubectl, operator: Operator) -> None:
    """Issue 17 (chaos round 73): a first revision whose pod cannot be scheduled for a while is frozen (there is no
    last-good revision to roll back to); once a node fits and its pods are Ready, the bridge is Ready, with no
    rollback and the very same revision."""
    key = "lighthouse.dev/test-schedulable"  # only the node labelled with this test's namespace fits its pods
    template = {"nodeSelector": {key: k.ns}}
    k.apply(lhb("demo", spec(replicas=1, podTemplate=template)))
    frozen = wait_for(
        lambda: (o := k.get("lhb", "demo")) and (condition(o, "Stalled") or {}).get("reason") == "RolloutFrozen" and o,
        timeout=TIMEOUT,
        message="lhb/demo frozen",
    )
    assert condition(frozen, "Ready")["status"] == "False"
    record = frozen["status"]["rollout"]["bridge"]
    assert record["phase"] == "Failed" and record["reason"] == "Unschedulable" and "lastGood" not in record
    desired = frozen["status"]["revisions"]["desired"]
    before = rollbacks(operator)
    node = k.items("nodes", "type=kwok")[0]["metadata"]["name"]
    k("label", "node", node, f"{key}={k.ns}")
    try:
        obj = wait_ready(k)
    finally:
        k("label", "node", node, f"{key}-")
    assert obj["status"]["revisions"] == {"desired": desired, "serving": desired, "lastGood": desired}
    assert obj["status"]["rollout"]["bridge"]["phase"] == "Complete"
    assert condition(obj, "RolledBack")["status"] == "False" and condition(obj, "Stalled")["status"] == "False"
    dep = k.get("deployment", "demo-bridge")
    assert not dep["spec"].get("paused")  # the freeze is lifted
    assert dep["spec"]["template"]["metadata"]["annotations"][naming.A_REVISION] == desired
    assert dep["spec"]["template"]["spec"]["nodeSelector"] == {key: k.ns}
    assert rollbacks(operator) == before
    reasons = [r for _, r, _ in events(k)]
    assert "RolloutFrozen" in reasons and "RolloutComplete" in reasons and "RolledBack" not in reasons

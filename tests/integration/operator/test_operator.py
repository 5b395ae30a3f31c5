"""The operator against the real control plane (kwok runs the pods). Every wait is bounded and polls."""

from __future__ import annotations

import base64
import json
import signal
import threading
import time
from typing import Any

import pytest
from lighthouse_operator import naming

from tests.harness.cluster import Cluster, fake_node_namespace, wait_for

from .conftest import RESYNC, Kubectl, Operator, capture_fixture, condition, is_ready, lhb, release_namespace

CHILD_KINDS = ["deployments", "statefulsets", "services", "configmaps", "serviceaccounts", "networkpolicies", "secrets"]
EXPECTED = {
    "Deployment": {"demo-bridge"},
    "StatefulSet": {"demo-postgres", "demo-redis"},
    "Service": {"demo-bridge", "demo-bridge-metrics", "demo-postgres", "demo-redis"},
    "ConfigMap": {"demo-bridge-config"},
    "ServiceAccount": {"demo-bridge"},
    "NetworkPolicy": {"demo-postgres", "demo-redis"},
    "Secret": {"demo-postgres-credentials", "demo-redis-credentials", "demo-admin-token"},
}
READY_TIMEOUT = 120


def children(k: Kubectl, name: str = "demo", ns: str | None = None) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in k.items(",".join(CHILD_KINDS), naming.instance_selector(name), ns=ns):
        out.setdefault(item["kind"], set()).add(item["metadata"]["name"])
    return out


def wait_ready(k: Kubectl, name: str = "demo", timeout: float = READY_TIMEOUT, ns: str | None = None) -> dict:
    return wait_for(
        lambda: (o := k.get("lhb", name, ns=ns)) and is_ready(o) and o,
        timeout=timeout,
        message=f"lhb/{name} Ready at its current generation",
    )


def events(k: Kubectl, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in k.get("events")["items"]
        if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "LighthouseBridge"
    ]


def secret_value(k: Kubectl, name: str, key: str) -> str:
    return base64.b64decode(k.get("secret", name)["data"][key]).decode()


# ---------------------------------------------------------------------------------------------------------------------


def test_create_gives_owned_labelled_children_and_ready(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    obj = wait_ready(k)
    uid = obj["metadata"]["uid"]
    assert children(k) == EXPECTED
    for item in k.items(",".join(CHILD_KINDS), naming.instance_selector("demo")):
        md = item["metadata"]
        assert md["labels"][naming.L_PART_OF] == "lighthouse" and md["labels"][naming.L_COMPONENT]
        refs = md.get("ownerReferences") or []
        assert [r["uid"] for r in refs if r.get("controller")] == [uid], f"{item['kind']}/{md['name']}"
    st = obj["status"]
    assert st["phase"] == "Ready" and st["replicaSummary"] == "1/1" and st["readyReplicas"] == 1
    assert st["selector"] == naming.selector_string("demo", "bridge")
    assert st["components"]["postgres"]["ready"] == 1 and st["components"]["redis"]["ready"] == 1
    assert st["revisions"]["desired"] == st["revisions"]["serving"] == st["revisions"]["lastGood"]
    assert st["endpoints"]["api"].endswith(":8765")
    for t in ("Reconciling", "Stalled", "Degraded"):
        assert condition(obj, t)["status"] == "False", t
    # GitOps: nothing was defaulted into the stored spec, and the operator wrote no annotation on the object.
    assert obj["spec"] == {}
    assert not [a for a in (obj["metadata"].get("annotations") or {}) if "kopf" in a or "lighthouse" in a]
    assert obj["metadata"]["finalizers"] == [naming.FINALIZER]
    # Events are posted right after the status write they describe: wait for them rather than race them.
    wait_for(
        lambda: {"Created", "Ready"} <= {e["reason"] for e in events(k, "demo")},
        timeout=15,
        message="Created and Ready Events",
    )
    # The generated credentials are usable: the URL embeds the generated password.
    pw = secret_value(k, "demo-postgres-credentials", "password")
    assert len(pw) >= 32 and pw in secret_value(k, "demo-postgres-credentials", "url")
    capture_fixture("ready", obj, "Healthy")


def test_spec_change_is_reconciling_before_ready_at_new_generation(
    cluster: Cluster, k: Kubectl, operator: Operator
) -> None:
    from kubernetes import client, watch

    k.apply(lhb("demo"))
    before = wait_ready(k)
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    api = client.CustomObjectsApi(cluster.api)

    def record() -> None:
        w = watch.Watch()
        for ev in w.stream(
            api.list_namespaced_custom_object,
            "lighthouse.dev",
            "v1alpha1",
            k.ns,
            "lighthousebridges",
            resource_version=before["metadata"]["resourceVersion"],
            timeout_seconds=int(READY_TIMEOUT),
        ):
            seen.append(ev["object"])
            if stop.is_set():
                w.stop()

    t = threading.Thread(target=record, daemon=True)
    t.start()
    time.sleep(0.5)
    k.apply(lhb("demo", {"image": "localhost/lighthouse-bridge:0.2.0"}))
    after = wait_ready(k)
    stop.set()
    k.patch("lhb", "demo", {"metadata": {"annotations": {"test/nudge": "1"}}})  # wakes the watch so it ends
    t.join(timeout=30)
    gen = after["metadata"]["generation"]
    assert gen == before["metadata"]["generation"] + 1
    at_gen = [o for o in seen if (o.get("status") or {}).get("observedGeneration") == gen]
    assert at_gen, "no status was written for the new generation"
    first = at_gen[0]
    assert condition(first, "Reconciling")["status"] == "True"
    assert condition(first, "Ready")["status"] == "False"
    # Ready=True for the new generation only once the Deployment runs the new image.
    dep = k.get("deployment", "demo-bridge")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/lighthouse-bridge:0.2.0"
    assert after["status"]["revisions"]["serving"] == after["status"]["revisions"]["desired"]
    assert after["status"]["revisions"]["desired"] != before["status"]["revisions"]["desired"]
    # kubectl wait on the new generation passes.
    k("wait", "--for=condition=Ready", "lhb/demo", "-n", k.ns, "--timeout=30s")


def test_deleted_or_edited_children_are_restored(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    wait_ready(k)
    svc_uid = k.get("service", "demo-bridge")["metadata"]["uid"]
    k("delete", "service/demo-bridge", "configmap/demo-bridge-config", "-n", k.ns)
    k.patch(
        "deployment",
        "demo-bridge",
        {"spec": {"template": {"spec": {"containers": [{"name": "bridge", "image": "evil/image:latest"}]}}}},
        ptype="strategic",
    )
    k.patch("statefulset", "demo-redis", {"metadata": {"labels": {naming.L_PART_OF: "something-else"}}})

    def restored() -> bool:
        svc, cm = k.get("service", "demo-bridge"), k.get("configmap", "demo-bridge-config")
        dep, sts = k.get("deployment", "demo-bridge"), k.get("statefulset", "demo-redis")
        return bool(
            svc
            and cm
            and svc["metadata"]["uid"] != svc_uid
            and dep["spec"]["template"]["spec"]["containers"][0]["image"] != "evil/image:latest"
            and sts["metadata"]["labels"][naming.L_PART_OF] == "lighthouse"
        )

    wait_for(restored, timeout=RESYNC * 10, message="children restored")
    wait_ready(k)


INVALID = [
    (
        {"redis": {"mode": "external"}},
        "redis.external.secretRef (a Secret holding the redis URL) is required when redis.mode is external",
    ),
    (
        {"postgres": {"mode": "external", "external": {}}},
        "postgres.external.secretRef (a Secret holding the postgres URL) is required when postgres.mode is external",
    ),
    ({"replicas": -1}, "spec.replicas must be 0 or more"),
    ({"image": " "}, "spec.image must not be empty"),
    ({"postgres": {"managed": {"storage": {"size": "lots"}}}}, "must be a Kubernetes quantity such as 250m"),
    ({"resources": {"limits": {"cpu": "1 core"}}}, "spec.resources.limits[cpu]: Invalid value"),
    ({"deletionPolicy": "Shred"}, 'supported values: "Retain", "Delete", "Snapshot"'),
]


@pytest.mark.parametrize(("spec", "message"), INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_resources_are_rejected_by_the_api_server(k: Kubectl, spec: dict, message: str) -> None:
    proc = k.apply(lhb("bad", spec), check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
    assert k.get("lhb", "bad") is None


def test_names_that_cannot_name_services_are_rejected(k: Kubectl) -> None:
    proc = k.apply(lhb("x" * 41), check=False)
    assert proc.returncode != 0 and "metadata.name must be at most 40 characters" in proc.stderr
    proc = k.apply(lhb("9lives"), check=False)
    assert proc.returncode != 0 and "metadata.name must start with a letter" in proc.stderr


def test_invalid_spec_stalls_without_touching_children(k: Kubectl, operator: Operator) -> None:
    spec = {"backup": {"schedule": "every night", "s3": {"bucket": "backups"}}}
    k.apply(lhb("demo", spec))
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and condition(o, "Stalled") and o, timeout=60, message="Stalled condition"
    )
    stalled = condition(obj, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
    assert "backup.schedule 'every night' must have 5 fields" in stalled["message"]
    assert obj["status"]["phase"] == "Stalled"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    wait_for(
        lambda: [e for e in events(k, "demo") if e["type"] == "Warning" and e["reason"] == "InvalidSpec"],
        timeout=15,
        message="Warning InvalidSpec Event",
    )
    time.sleep(RESYNC * 2)  # a few timer passes: still nothing created, and no repeated Warning
    assert children(k) == {}
    assert len([e for e in events(k, "demo") if e["reason"] == "InvalidSpec"]) == 1
    capture_fixture("stalled-invalid-spec", k.get("lhb", "demo"), "Degraded")
    k.apply(lhb("demo", {"backup": {"schedule": "0 3 * * *", "s3": {"bucket": "backups"}}}))
    obj = wait_ready(k)
    assert condition(obj, "Stalled")["status"] == "False"
    assert k.get("cronjob", "demo-backup")["spec"]["concurrencyPolicy"] == "Forbid"


def test_device_mode_without_a_resource_is_admitted_and_stalls_when_the_operator_has_no_default(
    k: Kubectl, operator: Operator
) -> None:
    # The API server cannot know the operator's default (the chart's defaults.fuse.devicePluginResource).
    k.apply(lhb("demo", {"fuse": {"mode": "devicePlugin"}}))
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and condition(o, "Stalled") and o, timeout=60, message="Stalled condition"
    )
    stalled = condition(obj, "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec", stalled
    assert (
        "fuse.devicePluginResource (for example lighthouse.dev/fuse) is required when fuse.mode is devicePlugin "
        "and the operator has no default" in stalled["message"]
    ), stalled
    assert children(k) == {}


def test_missing_external_secret_stalls_until_it_exists(k: Kubectl, operator: Operator) -> None:
    spec = {"redis": {"mode": "external", "external": {"secretRef": {"name": "shared-redis"}}}}
    k.apply(lhb("demo", spec))
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and (c := condition(o, "Stalled")) and c["status"] == "True" and o,
        timeout=60,
        message="Stalled MissingReference",
    )
    assert condition(obj, "Stalled")["reason"] == "MissingReference"
    assert f"Secret {k.ns}/shared-redis not found" in condition(obj, "Stalled")["message"]
    k("create", "secret", "generic", "shared-redis", "-n", k.ns, "--from-literal=url=redis://redis.example:6379/0")
    obj = wait_ready(k, timeout=READY_TIMEOUT + RESYNC * 3)
    assert "StatefulSet" in children(k) and children(k)["StatefulSet"] == {"demo-postgres"}
    assert obj["status"]["components"]["redis"]["message"].startswith("external")


def test_pause_stops_all_writes_to_children(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    wait_ready(k)
    k.apply(lhb("demo", {"paused": True, "image": "localhost/lighthouse-bridge:9.9.9"}))
    obj = wait_for(
        lambda: (
            (o := k.get("lhb", "demo"))
            and o["status"].get("phase") == "Paused"
            and o["status"]["observedGeneration"] == o["metadata"]["generation"]
            and o
        ),
        timeout=60,
        message="phase Paused",
    )
    assert condition(obj, "Reconciling")["reason"] == "Paused"
    capture_fixture("paused", obj, "Suspended")
    k("delete", "configmap", "demo-bridge-config", "-n", k.ns)
    writes = operator.writes()
    time.sleep(RESYNC * 3)
    assert k.get("configmap", "demo-bridge-config") is None
    dep = k.get("deployment", "demo-bridge")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] != "localhost/lighthouse-bridge:9.9.9"
    assert operator.writes() == writes, "a paused bridge got writes"
    k.apply(lhb("demo", {"image": "localhost/lighthouse-bridge:9.9.9"}))
    wait_ready(k)
    assert k.get("configmap", "demo-bridge-config") is not None
    dep = k.get("deployment", "demo-bridge")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "localhost/lighthouse-bridge:9.9.9"


def _pvcs(k: Kubectl) -> list[dict]:
    return k.items("persistentvolumeclaims", f"{naming.L_INSTANCE}=demo")


def test_deletion_policy_retain_orphans_data(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"deletionPolicy": "Retain"}))
    wait_ready(k)
    pw = secret_value(k, "demo-postgres-credentials", "password")
    pvcs_before = {p["metadata"]["name"] for p in _pvcs(k)}
    k("delete", "lhb", "demo", "-n", k.ns, "--timeout=60s")
    wait_for(lambda: k.get("deployment", "demo-bridge") is None, timeout=60, message="Deployment collected")
    secrets = k.items("secrets", f"{naming.L_INSTANCE}=demo")
    assert {s["metadata"]["name"] for s in secrets} == EXPECTED["Secret"]
    for s in secrets:
        assert not s["metadata"].get("ownerReferences")
        assert s["metadata"]["labels"][naming.L_RETAINED] == "true"
    assert {p["metadata"]["name"] for p in _pvcs(k)} == pvcs_before
    # A new bridge of the same name adopts the retained credentials instead of generating new ones.
    k.apply(lhb("demo"))
    wait_ready(k)
    assert secret_value(k, "demo-postgres-credentials", "password") == pw
    wait_for(lambda: any(e["reason"] == "Adopted" for e in events(k, "demo")), timeout=15, message="Adopted Event")


def test_deletion_policy_delete_removes_data(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"deletionPolicy": "Delete"}))
    wait_ready(k)
    k("delete", "lhb", "demo", "-n", k.ns, "--timeout=60s")
    wait_for(lambda: not k.items("secrets", f"{naming.L_INSTANCE}=demo"), timeout=60, message="Secrets deleted")
    wait_for(lambda: all(p["metadata"].get("deletionTimestamp") for p in _pvcs(k)), timeout=60, message="PVCs deleted")


def test_deletion_policy_snapshot_refuses_until_changed(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo", {"deletionPolicy": "Snapshot"}))
    wait_ready(k)
    k("delete", "lhb", "demo", "-n", k.ns, "--wait=false")
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and (c := condition(o, "Stalled")) and c["status"] == "True" and o,
        timeout=60,
        message="deletion refused",
    )
    assert obj["metadata"].get("deletionTimestamp")
    assert condition(obj, "Stalled")["reason"] == "SnapshotUnavailable"
    assert "Set spec.deletionPolicy to Retain" in condition(obj, "Stalled")["message"]
    assert obj["status"]["phase"] == "Deleting"
    capture_fixture("deleting-snapshot-refused", obj, "Degraded")
    time.sleep(RESYNC)
    assert k.get("lhb", "demo") is not None and k.get("secret", "demo-admin-token") is not None
    k.patch("lhb", "demo", {"spec": {"deletionPolicy": "Retain"}})
    wait_for(lambda: k.get("lhb", "demo") is None, timeout=90, message="deletion proceeds")
    assert k.get("secret", "demo-admin-token") is not None


def test_two_namespaces_are_isolated(cluster: Cluster, namespace: str, crd, tmp_path) -> None:
    other = f"{namespace}-b"[:63]
    outside = f"{namespace}-c"[:63]
    for ns in (other, outside):
        cluster.kubectl("create", "-f", "-", input=json.dumps(fake_node_namespace(ns)))
    op = Operator(cluster, [namespace, other], tmp_path / "operator.log").start()
    a, b, c = Kubectl(cluster, namespace), Kubectl(cluster, other), Kubectl(cluster, outside)
    try:
        for kk in (a, b, c):
            wait_for(lambda kk=kk: kk.get("serviceaccount", "default"), timeout=30, message="default SA")
            kk.apply(lhb("demo", {"deletionPolicy": "Delete"}))
        wait_ready(a)
        wait_ready(b)
        pa = secret_value(a, "demo-postgres-credentials", "password")
        assert pa != secret_value(b, "demo-postgres-credentials", "password")
        for kk, ns in ((a, namespace), (b, other)):
            np = kk.get("networkpolicy", "demo-postgres")
            assert np["metadata"]["namespace"] == ns
            assert children(kk) == EXPECTED
        # Out of scope: the operator never touched the third namespace.
        time.sleep(RESYNC)
        assert not (c.get("lhb", "demo").get("status")) and children(c) == {}
        a("delete", "lhb", "demo", "-n", namespace, "--timeout=60s")
        wait_for(lambda: not a.items("secrets", f"{naming.L_INSTANCE}=demo"), timeout=60, message="A released")
        assert is_ready(b.get("lhb", "demo")) and children(b) == EXPECTED
    finally:
        release_namespace(cluster, other)
        op.stop()
        for ns in (other, outside):
            cluster.kubectl(
                "patch",
                "lhb",
                "demo",
                "-n",
                ns,
                "--type",
                "merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
            cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_restart_mid_reconcile_converges_without_duplicates(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    # Kill the operator as soon as the first child exists: it is in the middle of its first reconcile.
    wait_for(lambda: k.get("secret", "demo-postgres-credentials"), timeout=60, interval=0.05, message="first child")
    operator.stop(signal.SIGKILL)
    pw = secret_value(k, "demo-postgres-credentials", "password")
    operator.start()
    obj = wait_ready(k)
    assert children(k) == EXPECTED
    assert secret_value(k, "demo-postgres-credentials", "password") == pw  # not regenerated
    rs = k.items("replicasets", naming.selector_string("demo", "bridge"))
    assert len(rs) == 1, "the restart caused an extra rollout"
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]


def test_idle_operator_makes_no_writes_besides_lease_renewals(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    wait_ready(k)
    time.sleep(RESYNC)  # let the last child-status events settle
    before, renewals = operator.writes(), operator.lease_writes()
    passes = operator.metrics().get('lighthouse_operator_reconciles_total{outcome="unchanged",trigger="timer"}', 0)
    time.sleep(RESYNC * 4)
    assert operator.lease_writes() - renewals >= 2, "no Lease renewal was counted: the test would prove nothing"
    assert operator.writes() == before, "a write besides the Lease's renewals"
    after = operator.metrics().get('lighthouse_operator_reconciles_total{outcome="unchanged",trigger="timer"}', 0)
    assert after >= passes + 2, "the timer did not run: the test would prove nothing"


def test_resync_of_an_unchanged_bridge_reads_nothing_from_the_api_server(k: Kubectl, operator: Operator) -> None:
    """Every read of a pass comes from the watch cache: the resync of an unchanged bridge sends no request at all."""
    k.apply(lhb("demo"))
    wait_ready(k)
    time.sleep(RESYNC)
    m = operator.metrics()
    timer = 'lighthouse_operator_reconciles_total{outcome="unchanged",trigger="timer"}'
    served = 'lighthouse_operator_cache_reads_total{kind="Deployment",source="cache"}'
    reads, writes, passes, cached = operator.reads(), operator.writes(), m.get(timer, 0), m.get(served, 0)
    renewals = operator.lease_writes()
    time.sleep(RESYNC * 4)
    m = operator.metrics()
    assert m.get(timer, 0) >= passes + 2, "the timer did not run: the test would prove nothing"
    assert m.get(served, 0) > cached, "the passes did not read through the cache"
    assert operator.lease_writes() > renewals, "the Lease was not renewed: the counters would prove nothing"
    assert (operator.reads(), operator.writes()) == (reads, writes)


def test_scale_subresource_and_printer_columns(k: Kubectl, operator: Operator) -> None:
    k.apply(lhb("demo"))
    wait_ready(k)
    k("scale", "lhb/demo", "--replicas=2", "-n", k.ns)
    wait_for(
        lambda: (d := k.get("deployment", "demo-bridge")) and d["spec"]["replicas"] == 2,
        timeout=60,
        message="Deployment scaled",
    )
    obj = wait_ready(k)
    assert obj["status"]["replicaSummary"] == "2/2"
    assert k.get("poddisruptionbudget", "demo-bridge")["spec"]["maxUnavailable"] == 1
    out = k("get", "lhb", "-n", k.ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "PHASE", "REPLICAS", "REVISION", "LAST", "BACKUP", "AGE"]
    row = out[1].split()
    assert row[:5] == ["demo", "True", "Ready", "2/2", obj["status"]["revisions"]["serving"]]
    assert "lighthousebridge.lighthouse.dev/demo" in k("get", "lighthouse", "-n", k.ns, "-o", "name").stdout
    path = f"/apis/lighthouse.dev/v1alpha1/namespaces/{k.ns}/lighthousebridges/demo/scale"
    scale = json.loads(k("get", "--raw", path).stdout)
    assert scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == naming.selector_string("demo", "bridge")


def test_child_the_api_server_refuses_stalls_with_its_message(k: Kubectl, operator: Operator) -> None:
    # affinity is passed through unchecked by the CRD (preserve-unknown-fields); the Deployment's schema refuses it.
    k.apply(
        lhb(
            "demo",
            {
                "podTemplate": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "not-a-list"}
                        }
                    }
                }
            },
        )
    )
    obj = wait_for(
        lambda: (o := k.get("lhb", "demo")) and (c := condition(o, "Stalled")) and c["status"] == "True" and o,
        timeout=60,
        message="Stalled ApplyRejected",
    )
    stalled = condition(obj, "Stalled")
    assert stalled["reason"] == "ApplyRejected" and "nodeSelectorTerms" in stalled["message"]
    wait_for(
        lambda: any(e["reason"] == "ApplyRejected" and e["type"] == "Warning" for e in events(k, "demo")),
        timeout=15,
        message="Warning ApplyRejected Event",
    )
    k.apply(lhb("demo"))
    wait_ready(k)


def test_service_monitor_follows_the_spec(k: Kubectl, operator: Operator) -> None:
    """With the Prometheus Operator's CRD a ServiceMonitor is created (and removed when turned off); without it the
    bridge still becomes Ready and Degraded says why the monitor is missing."""
    has_crd = k("get", "crd", "servicemonitors.monitoring.coreos.com", check=False).returncode == 0
    k.apply(lhb("demo", {"monitoring": {"serviceMonitor": True}}))
    obj = wait_ready(k)
    degraded = condition(obj, "Degraded")
    if has_crd:
        sm = wait_for(lambda: k.get("servicemonitor", "demo-bridge"), timeout=30, message="ServiceMonitor")
        assert sm["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
        assert sm["spec"]["endpoints"][0]["port"] == "metrics"
        assert degraded["status"] == "False"
        k.apply(lhb("demo", {"monitoring": {"serviceMonitor": False}}))
        wait_for(lambda: k.get("servicemonitor", "demo-bridge") is None, timeout=30, message="ServiceMonitor pruned")
    else:
        assert degraded["status"] == "True" and degraded["reason"] == "SpecNotFullyApplied"
        assert "ServiceMonitor requested but its CRD (monitoring.coreos.com/v1) is not installed" in degraded["message"]

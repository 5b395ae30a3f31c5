"""Revisions: what rolls the bridge pods (and what must not), and the bounded ControllerRevision history."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from lighthouse_operator import naming, revision
from lighthouse_operator.builders import bridge, stores
from lighthouse_operator.models import LighthouseBridge
from lighthouse_operator.revision import Ref


def make(spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None) -> LighthouseBridge:
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
        }
    )


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def secret(data: dict[str, str]) -> dict[str, Any]:
    """Shaped as the API server returns a Secret: base64 values under data."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": {k: b64(v) for k, v in data.items()}}


def objects_for(lhb: LighthouseBridge, **over: Any) -> dict[tuple[str, str], Any]:
    n = naming.Names(lhb.name)
    out: dict[tuple[str, str], Any] = {
        ("Secret", n.postgres_secret): secret({"url": "postgresql://u:p@demo-postgres/db", "password": "p"}),
        ("Secret", n.redis_secret): secret({"url": "redis://:r@demo-redis:6379/0", "password": "r"}),
        ("Secret", n.admin_secret): secret({"token": "t0"}),
        ("ConfigMap", n.bridge_config): {"data": bridge.config_data(lhb)},
    }
    out.update(over)
    return out


def bridge_revision(lhb: LighthouseBridge, objects: dict | None = None) -> str:
    return revision.for_bridge(lhb, bridge.deployment(lhb), objects if objects is not None else objects_for(lhb))


# ------------------------------------------------------------------------------------------------- references


def test_references_of_the_built_bridge_template() -> None:
    lhb = make()
    refs = revision.references(bridge.deployment(lhb)["spec"]["template"])
    n = naming.Names("demo")
    assert Ref("ConfigMap", n.bridge_config, None) in refs  # a volume: all of it
    assert Ref("Secret", n.postgres_secret, frozenset({"url"})) in refs  # an env key: only that key
    assert Ref("Secret", n.redis_secret, frozenset({"url"})) in refs
    assert Ref("Secret", n.admin_secret, frozenset({"token"})) in refs
    assert refs == sorted(refs, key=lambda r: (r.kind, r.name))


def test_references_cover_env_envfrom_volumes_and_projected_sources() -> None:
    template = {
        "spec": {
            "initContainers": [
                {"name": "init", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "a"}}}]}
            ],
            "containers": [
                {
                    "name": "c",
                    "env": [
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "b"}}},
                        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "cm1", "key": "c"}}},
                        {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "E", "value": "plain"},
                    ],
                    "envFrom": [{"secretRef": {"name": "s2"}}, {"configMapRef": {"name": "cm2"}}],
                }
            ],
            "volumes": [
                {"name": "v1", "secret": {"secretName": "s3"}},
                {"name": "v2", "configMap": {"name": "cm3"}},
                {
                    "name": "v3",
                    "projected": {
                        "sources": [
                            {"secret": {"name": "s4"}},
                            {"configMap": {"name": "cm4"}},
                            {"serviceAccountToken": {"path": "t"}},
                        ]
                    },
                },
                {"name": "v4", "emptyDir": {}},
            ],
        }
    }
    refs = {(r.kind, r.name): r.keys for r in revision.references(template)}
    assert refs == {
        ("Secret", "s1"): frozenset({"a", "b"}),
        ("ConfigMap", "cm1"): frozenset({"c"}),
        ("Secret", "s2"): None,
        ("ConfigMap", "cm2"): None,
        ("Secret", "s3"): None,
        ("ConfigMap", "cm3"): None,
        ("Secret", "s4"): None,
        ("ConfigMap", "cm4"): None,
    }


def test_a_whole_object_reference_wins_over_a_key_reference() -> None:
    env = [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "a"}}}]
    template = {"spec": {"containers": [{"name": "c", "env": env, "envFrom": [{"secretRef": {"name": "s"}}]}]}}
    assert revision.references(template) == [Ref("Secret", "s", None)]


# --------------------------------------------------------------------------------------------------- the hash


def test_revision_is_stable_and_short() -> None:
    lhb = make()
    a, b = bridge_revision(lhb), bridge_revision(make())
    assert a == b
    assert len(a) == revision.REVISION_LENGTH and all(c in "0123456789abcdef" for c in a)


def test_object_order_does_not_matter() -> None:
    lhb = make()
    objs = objects_for(lhb)
    assert bridge_revision(lhb, dict(reversed(list(objs.items())))) == bridge_revision(lhb, objs)


@pytest.mark.parametrize(
    "spec",
    [
        {"image": "localhost/lighthouse-bridge:0.2.0"},
        {"bridge": {"logLevel": "debug"}},
        {"bridge": {"env": [{"name": "EXTRA", "value": "1"}]}},
        {"resources": {"limits": {"memory": "512Mi"}}},
        {"podTemplate": {"annotations": {"team": "x"}}},
        {"fuse": {"mode": "privileged"}},
    ],
)
def test_every_spec_change_that_shapes_the_pods_changes_the_revision(spec: dict) -> None:
    base = make()
    changed = make(spec)
    assert bridge_revision(changed, objects_for(changed)) != bridge_revision(base, objects_for(base))


def test_spec_changes_that_do_not_shape_the_pods_keep_the_revision() -> None:
    base = make()
    for spec in (
        {"deletionPolicy": "Delete"},
        {"replicas": 3},
        {"monitoring": {"serviceMonitor": True}},
        {"rollout": {"onFailure": "Freeze"}},
    ):
        other = make(spec)
        assert bridge_revision(other, objects_for(other)) == bridge_revision(base, objects_for(base)), spec


def test_restart_nonce_and_restarted_at_annotation_roll_the_pods() -> None:
    base = bridge_revision(make())
    nonce1 = bridge_revision(make({"restartNonce": "1"}))
    nonce2 = bridge_revision(make({"restartNonce": "2"}))
    annotated = bridge_revision(make(annotations={naming.A_RESTARTED_AT: "2026-11-29T20:00:00Z"}))
    later = bridge_revision(make(annotations={naming.A_RESTARTED_AT: "2026-11-29T21:00:00Z"}))
    assert len({base, nonce1, nonce2, annotated, later}) == 5
    # Other annotations on the LighthouseBridge (Argo CD's tracking id, say) do not.
    assert bridge_revision(make(annotations={"argocd.argoproj.io/tracking-id": "x"})) == base


def test_secret_content_change_of_a_referenced_key_rolls_the_pods() -> None:
    lhb = make()
    n = naming.Names("demo")
    before = bridge_revision(lhb)
    rotated = objects_for(lhb, **{})
    rotated[("Secret", n.admin_secret)] = secret({"token": "t1"})
    assert bridge_revision(lhb, rotated) != before


def test_unreferenced_keys_and_objects_do_not_roll_the_pods() -> None:
    lhb = make()
    n = naming.Names("demo")
    before = bridge_revision(lhb)
    objs = objects_for(lhb)
    # The bridge reads only `url` from the PostgreSQL Secret (env secretKeyRef); `password` is not its business.
    objs[("Secret", n.postgres_secret)] = secret({"url": "postgresql://u:p@demo-postgres/db", "password": "new"})
    objs[("Secret", "someone-elses")] = secret({"x": "y"})
    objs[("ConfigMap", "unrelated")] = {"data": {"a": "b"}}
    assert bridge_revision(lhb, objs) == before


def test_configmap_mounted_as_a_volume_counts_every_key() -> None:
    lhb = make()
    n = naming.Names("demo")
    objs = objects_for(lhb)
    objs[("ConfigMap", n.bridge_config)] = {"data": {**bridge.config_data(lhb), "extra.yaml": "a: 1\n"}}
    assert bridge_revision(lhb, objs) != bridge_revision(lhb)
    objs[("ConfigMap", n.bridge_config)] = {"data": bridge.config_data(lhb), "binaryData": {"x": b64("y")}}
    assert bridge_revision(lhb, objs) != bridge_revision(lhb)


def test_an_external_secret_referenced_by_the_spec_is_part_of_the_revision() -> None:
    lhb = make({"postgres": {"mode": "external", "external": {"secretRef": {"name": "ext-pg", "key": "dsn"}}}})
    objs = objects_for(lhb, **{})
    objs[("Secret", "ext-pg")] = secret({"dsn": "postgresql://a"})
    first = bridge_revision(lhb, objs)
    objs[("Secret", "ext-pg")] = secret({"dsn": "postgresql://b"})
    assert bridge_revision(lhb, objs) != first


def test_absent_object_or_key_differs_from_present() -> None:
    lhb = make()
    n = naming.Names("demo")
    objs = objects_for(lhb)
    present = bridge_revision(lhb, objs)
    del objs[("Secret", n.admin_secret)]
    absent = bridge_revision(lhb, objs)
    objs[("Secret", n.admin_secret)] = secret({"other": "x"})
    no_key = bridge_revision(lhb, objs)
    assert len({present, absent, no_key}) == 3


def test_annotations_the_operator_does_not_own_never_enter_the_hash() -> None:
    template = bridge.deployment(make())["spec"]["template"]
    objs = objects_for(make())
    base = revision.compute(template, objs)
    restarted = copy.deepcopy(template)
    restarted["metadata"].setdefault("annotations", {})[naming.A_KUBECTL_RESTARTED_AT] = "2026-11-29T20:35:00Z"
    restarted["metadata"]["annotations"][naming.A_REVISION] = "something-else"
    assert revision.compute(restarted, objs) == base
    assert naming.A_KUBECTL_RESTARTED_AT in restarted["metadata"]["annotations"]  # not mutated


def test_stamp_sets_the_revision_and_never_applies_kubectls_annotation() -> None:
    dep = bridge.deployment(make())
    template_md = dep["spec"]["template"]["metadata"]
    template_md.setdefault("annotations", {})[naming.A_KUBECTL_RESTARTED_AT] = "2026-11-29T20:35:00Z"
    stamped = revision.stamp(dep, "abc123")
    ann = stamped["spec"]["template"]["metadata"]["annotations"]
    assert ann[naming.A_REVISION] == "abc123"
    assert naming.A_KUBECTL_RESTARTED_AT not in ann
    assert revision.template_revision(stamped) == "abc123"
    assert naming.A_KUBECTL_RESTARTED_AT in dep["spec"]["template"]["metadata"]["annotations"]  # input untouched


def test_store_templates_get_revisions_too() -> None:
    lhb = make()
    sts = stores.postgres_statefulset(lhb)
    objs = objects_for(lhb)
    base = revision.compute(sts["spec"]["template"], objs)
    newer = stores.postgres_statefulset(make({"postgres": {"managed": {"image": "docker.io/library/postgres:17"}}}))
    assert revision.compute(newer["spec"]["template"], objs) != base
    stamped = revision.stamp(sts, base)
    assert revision.template_revision(stamped) == base
    assert "annotations" not in sts["spec"]["template"]["metadata"]


# ------------------------------------------------------------------------------------------ ControllerRevisions


def test_controller_revision_is_owned_labelled_and_holds_the_template() -> None:
    lhb = make()
    template = revision.stamp(bridge.deployment(lhb), "r1")["spec"]["template"]
    cr = revision.controller_revision(lhb, naming.BRIDGE, "r1", template, 4)
    assert cr["apiVersion"] == "apps/v1" and cr["kind"] == "ControllerRevision"
    assert cr["metadata"]["name"] == "demo-bridge-r1"
    assert cr["metadata"]["ownerReferences"] == [lhb.owner_reference()]
    assert cr["metadata"]["ownerReferences"][0]["controller"] is True
    assert cr["revision"] == 4
    assert revision.stored_template(cr) == template
    assert revision.stored_template(cr) is not template
    labels = cr["metadata"]["labels"]
    assert labels[naming.L_REVISION] == "r1" and labels[naming.L_REVISION_OF] == naming.BRIDGE
    # Selected by the history selector, never by a StatefulSet's selector (which would try to claim it).
    sel = dict(p.split("=") for p in naming.history_selector("demo", naming.BRIDGE).split(","))
    assert all(labels.get(k) == v for k, v in sel.items())
    for component in (naming.POSTGRES, naming.REDIS, naming.BRIDGE):
        sts_selector = naming.selector("demo", component)
        assert not all(labels.get(k) == v for k, v in sts_selector.items())


def history(*pairs: tuple[str, int]) -> list[dict[str, Any]]:
    lhb = make()
    return [revision.controller_revision(lhb, naming.BRIDGE, rev, {"metadata": {}}, n) for rev, n in pairs]


def test_history_creates_a_new_revision_with_the_next_number() -> None:
    plan = revision.plan_history(make(), naming.BRIDGE, "r3", {"spec": {}}, history(("r1", 1), ("r2", 2)))
    assert plan.create is not None and plan.create["revision"] == 3
    assert plan.create["metadata"]["name"] == "demo-bridge-r3"
    assert plan.recreate is None and plan.prune == ()


def test_history_first_revision_is_number_one() -> None:
    plan = revision.plan_history(make(), naming.BRIDGE, "r1", {"spec": {}}, [])
    assert plan.create is not None and plan.create["revision"] == 1


def test_history_records_nothing_when_the_revision_is_already_newest() -> None:
    plan = revision.plan_history(make(), naming.BRIDGE, "r2", {"spec": {}}, history(("r1", 1), ("r2", 2)))
    assert plan == revision.HistoryPlan()


def test_history_renumbers_a_revision_that_comes_back() -> None:
    old = history(("r1", 1), ("r2", 2))
    old[0]["data"]["template"] = {"metadata": {"annotations": {"stored": "as it was"}}}
    plan = revision.plan_history(make(), naming.BRIDGE, "r1", {"spec": {}}, old)
    assert plan.create is None and plan.recreate is not None
    # The same revision and stored template under the next number (deleted and created: data is immutable).
    assert plan.recreate["metadata"]["name"] == "demo-bridge-r1" and plan.recreate["revision"] == 3
    assert plan.recreate["data"] == old[0]["data"]
    assert plan.recreate["metadata"]["labels"][naming.L_REVISION] == "r1"
    old[0]["metadata"]["uid"] = "uid-r1"
    writes = revision.plan_history(make(), naming.BRIDGE, "r1", {"spec": {}}, old).writes("ns")
    assert [(type(w).__name__, w.target[3], w.reason) for w in writes] == [
        ("Delete", "demo-bridge-r1", "RevisionReused"),
        ("Create", "demo-bridge-r1", "RevisionReused"),
    ]
    assert writes[0].uid == "uid-r1"  # never deletes a namesake that replaced it


def test_history_is_bounded_and_prunes_the_oldest_but_never_a_protected_one() -> None:
    old = history(*[(f"r{i}", i) for i in range(1, 11)])  # 10 stored, limit 10
    plan = revision.plan_history(make(), naming.BRIDGE, "r11", {"spec": {}}, old, protect=["r1", None])
    assert plan.create is not None and plan.create["revision"] == 11
    # r1 is lastGood (protected); r2 is the oldest unprotected one: pruned so that 10 remain.
    assert plan.prune == ("demo-bridge-r2",)
    plan = revision.plan_history(make(), naming.BRIDGE, "r11", {"spec": {}}, old, limit=3)
    assert set(plan.prune) == {f"demo-bridge-r{i}" for i in range(1, 9)}


def test_find_by_revision() -> None:
    h = history(("r1", 1), ("r2", 2))
    found = revision.find(h, "r2")
    assert found is not None and found["metadata"]["name"] == "demo-bridge-r2"
    assert revision.find(h, "r9") is None and revision.find(h, None) is None

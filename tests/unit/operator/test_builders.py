"""Builders are pure: golden files pin every manifest (UPDATE_GOLDEN=1 rewrites them), and targeted tests pin what
matters most (probes, surge-only rollout, FUSE per mode, labels, ownership, what exists when)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from lighthouse_operator import builders, k8s, naming, revision, validation
from lighthouse_operator.builders import backup, bridge, expose, monitoring, network, secrets, stores
from lighthouse_operator.models import LighthouseBridge

from tests.unit.chart.render import restricted_violations

GOLDEN = Path(__file__).parent / "golden"


class NoAliases(yaml.SafeDumper):
    """Shared sub-dicts must not become YAML anchors in the golden files."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


CASES: dict[str, dict[str, Any]] = {
    "minimal": {},
    "full": {
        "image": "registry.example/lighthouse-bridge:1.2.3",
        "replicas": 3,
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "podTemplate": {
            "labels": {"team": "platform", naming.L_COMPONENT: "ignored"},
            "annotations": {"example.com/owner": "platform"},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ai", "effect": "NoSchedule"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
            "priorityClassName": "high",
        },
        "bridge": {
            "logLevel": "debug",
            "experts": False,
            "policy": {
                "escalation_timeout_seconds": 30,
                "rules": [
                    {"id": "no-force-push", "tool": "Bash", "command": "git\\s+push.*--force", "action": "block"}
                ],
            },
            "env": [{"name": "LIGHTHOUSE_LOG_LEVEL", "value": "warning"}, {"name": "EXTRA", "value": "1"}],
        },
        "project": {"pvc": {"claimName": "project-src", "subPath": "repo"}},
        "fuse": {"mode": "devicePlugin", "devicePluginResource": "smarter-devices/fuse"},
        "redis": {"mode": "external", "external": {"secretRef": {"name": "shared-redis", "key": "uri"}}},
        "postgres": {
            "managed": {
                "image": "postgres:17",
                "resources": {"limits": {"memory": "1Gi"}},
                "storage": {"size": "20Gi", "storageClassName": "fast"},
            }
        },
        "backup": {
            "schedule": "0 3 * * *",
            "s3": {
                "bucket": "backups",
                "prefix": "lh",
                "endpoint": "http://s3:9000",
                "region": "eu-west-1",
                "credentialsSecret": "s3-creds",
                "pathStyle": True,
            },
            "retention": {"keepLast": 7, "maxAge": "720h"},
        },
        "rollout": {"onFailure": "Freeze", "progressDeadlineSeconds": 120},
        "restartNonce": "2026-11-29",
        "deletionPolicy": "Delete",
    },
    "privileged-external-postgres": {
        "fuse": {"mode": "privileged"},
        "postgres": {"mode": "external", "external": {"secretRef": {"name": "pg"}}},
        "networkPolicy": {"enabled": False},
        "podTemplate": {"serviceAccountName": "custom-sa"},
    },
    "fuse-disabled": {"fuse": {"enabled": False}, "replicas": 2},
    "fuse-csi": {"fuse": {"mode": "csi"}},
}


def make(spec: dict[str, Any], name: str = "demo", namespace: str = "team-a") -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {
            "metadata": {"name": name, "namespace": namespace, "uid": "0000-uid", "generation": 1},
            "spec": spec,
        }
    )


def render(lhb: LighthouseBridge) -> list[dict[str, Any]]:
    counter = itertools.count(1)
    return builders.desired_children(lhb) + secrets.generated_secrets(lhb, lambda: f"generated-{next(counter)}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    docs = render(make(CASES[case]))
    text = yaml.dump_all(docs, Dumper=NoAliases, sort_keys=True, width=120)
    path = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.exists(), f"missing {path}: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == path.read_text(), f"{case} differs from {path}; rerun with UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_child_is_labelled_and_owned(case: str) -> None:
    lhb = make(CASES[case])
    for doc in render(lhb):
        md = doc["metadata"]
        assert md["namespace"] == "team-a"
        assert md["name"].startswith("demo-")
        for key in (naming.L_NAME, naming.L_INSTANCE, naming.L_COMPONENT, naming.L_PART_OF, naming.L_MANAGED_BY):
            assert key in md["labels"], (doc["kind"], key)
        (ref,) = md["ownerReferences"]
        assert ref == {
            "apiVersion": "lighthouse.dev/v1alpha1",
            "kind": "LighthouseBridge",
            "name": "demo",
            "uid": "0000-uid",
            "controller": True,
            "blockOwnerDeletion": True,
        }


def test_children_names_are_unique_per_kind() -> None:
    docs = render(make(CASES["full"]))
    keys = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys))


def test_deployment_probes_ports_and_surge_only_rollout() -> None:
    dep = bridge.deployment(make({}))
    spec = dep["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    c = spec["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert "startupProbe" in c
    assert {p["containerPort"] for p in c["ports"]} == {8765, 9090}
    env = {e["name"]: e for e in c["env"]}
    assert env["LIGHTHOUSE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "demo-postgres-credentials",
        "key": "url",
    }
    assert env["LIGHTHOUSE_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "demo-redis-credentials"
    assert env["LIGHTHOUSE_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "demo-admin-token", "key": "token"}
    assert spec["selector"]["matchLabels"] == naming.selector("demo", "bridge")


def test_min_ready_seconds_only_when_asked_and_not_a_new_revision() -> None:
    plain = bridge.deployment(make({}))
    assert "minReadySeconds" not in plain["spec"]  # the server's default (0) stays implicit
    slow = bridge.deployment(make({"rollout": {"minReadySeconds": 10}}))
    assert slow["spec"]["minReadySeconds"] == 10
    # A Deployment setting, not a pod one: changing it rolls no pod.
    assert slow["spec"]["template"] == plain["spec"]["template"]


def test_user_env_overrides_in_place_without_duplicates() -> None:
    c = bridge.deployment(make(CASES["full"]))["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in c["env"]]
    assert len(names) == len(set(names))
    env = {e["name"]: e for e in c["env"]}
    assert env["LIGHTHOUSE_LOG_LEVEL"]["value"] == "warning"
    assert env["LIGHTHOUSE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "shared-redis", "key": "uri"}
    assert names[-1] == "EXTRA"


def test_pod_template_labels_cannot_break_the_selector() -> None:
    tpl = bridge.deployment(make(CASES["full"]))["spec"]["template"]["metadata"]
    assert tpl["labels"][naming.L_COMPONENT] == "bridge"
    assert tpl["labels"]["team"] == "platform"
    assert tpl["annotations"]["example.com/owner"] == "platform"
    # The health gate's stamp keeps the user's annotations beside the revision.
    stamped = revision.stamp(bridge.deployment(make(CASES["full"])), "r1")["spec"]["template"]["metadata"]
    assert stamped["annotations"] == {"example.com/owner": "platform", naming.A_REVISION: "r1"}


@pytest.mark.parametrize(
    ("fuse", "privileged", "caps", "hostpath", "device"),
    [
        ({"mode": "capabilities"}, None, ["SYS_ADMIN"], True, None),
        ({"mode": "privileged"}, True, None, False, None),
        (
            {"mode": "devicePlugin", "devicePluginResource": "smarter-devices/fuse"},
            None,
            ["SYS_ADMIN"],
            False,
            "smarter-devices/fuse",
        ),
        (
            {"mode": "userNamespaces", "devicePluginResource": "lighthouse.dev/fuse"},
            None,
            ["SYS_ADMIN"],
            False,
            "lighthouse.dev/fuse",
        ),
        ({"mode": "csi"}, None, None, False, None),
        ({"mode": "disabled"}, None, None, False, None),
        ({"enabled": False, "mode": "privileged"}, None, None, False, None),
    ],
)
def test_fuse_security_context_per_mode(fuse, privileged, caps, hostpath, device) -> None:
    pod = bridge.deployment(make({"fuse": fuse}))["spec"]["template"]["spec"]
    c = pod["containers"][0]
    sc = c["securityContext"]
    assert sc.get("privileged") == privileged
    assert sc.get("capabilities", {}).get("add") == caps
    has_hostpath = any("hostPath" in v for v in pod["volumes"])
    assert has_hostpath == hostpath
    limits = c.get("resources", {}).get("limits", {})
    assert (device in limits) if device else not any("/" in k for k in limits)
    if caps is None and privileged is None:
        assert sc["runAsNonRoot"] is True and sc["capabilities"]["drop"] == ["ALL"]


def test_pdb_only_with_more_than_one_replica() -> None:
    assert bridge.pdb(make({"replicas": 1})) is None
    assert bridge.pdb(make({"replicas": 0})) is None
    assert bridge.pdb(make({"replicas": 2}))["spec"]["maxUnavailable"] == 1


def test_network_policies_admit_only_bridge_and_backup_pods() -> None:
    pols = network.network_policies(make({}))
    assert {p["metadata"]["name"] for p in pols} == {"demo-redis", "demo-postgres"}
    for p in pols:
        (rule,) = p["spec"]["ingress"]
        (peer,) = rule["from"]
        assert peer["podSelector"]["matchLabels"][naming.L_INSTANCE] == "demo"
        (expr,) = peer["podSelector"]["matchExpressions"]
        assert "bridge" in expr["values"] and "backup" in expr["values"]
        assert "redis" not in expr["values"]
    assert network.network_policies(make({"networkPolicy": {"enabled": False}})) == []
    # External stores have nothing of ours to protect.
    ext = {"mode": "external", "external": {"secretRef": {"name": "x"}}}
    assert network.network_policies(make({"redis": ext, "postgres": ext})) == []


def test_statefulsets_keep_data_on_pvcs_and_probe_readiness() -> None:
    pg = stores.postgres_statefulset(make({"postgres": {"managed": {"storage": {"size": "5Gi"}}}}))
    c = pg["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in c["env"]}
    assert env["PGDATA"]["value"].startswith(stores.PGDATA_MOUNT + "/")
    assert "pg_isready" in " ".join(c["readinessProbe"]["exec"]["command"])
    (vct,) = pg["spec"]["volumeClaimTemplates"]
    assert vct["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert pg["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    rd = stores.redis_statefulset(make({}))
    cmd = " ".join(rd["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "--appendonly yes" in cmd and "--requirepass" in cmd
    assert "generated" not in cmd  # the password never appears in the manifest
    assert stores.redis_service(make({}))["spec"]["clusterIP"] == "None"


def test_cronjob_only_with_backup_and_bounded() -> None:
    assert backup.cronjob(make({})) is None
    cj = backup.cronjob(make(CASES["full"]))
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    assert cj["spec"]["successfulJobsHistoryLimit"] <= 5 and cj["spec"]["failedJobsHistoryLimit"] <= 5
    job = cj["spec"]["jobTemplate"]["spec"]
    assert 0 < job["backoffLimit"] <= 3
    c = job["template"]["spec"]["containers"][0]
    assert c["image"] == "registry.example/lighthouse-bridge:1.2.3" and c["args"] == ["backup"]
    assert job["template"]["metadata"]["labels"][naming.L_COMPONENT] == "backup"


def test_secrets_generated_only_for_managed_stores() -> None:
    ext = {"mode": "external", "external": {"secretRef": {"name": "x"}}}
    names = [s["metadata"]["name"] for s in secrets.generated_secrets(make({"redis": ext}), lambda: "p")]
    assert names == ["demo-postgres-credentials", "demo-admin-token"]
    pg = secrets.postgres_credentials(make({}), "s3cr3t")
    assert pg["stringData"]["url"] == "postgresql://lighthouse:s3cr3t@demo-postgres.team-a.svc:5432/lighthouse"
    assert secrets.new_password() != secrets.new_password()


def test_revision_follows_pod_shaping_fields_only() -> None:
    """The one revision source (revision.for_bridge, as the health gate stamps it) over what the builders make."""

    def rev(spec: dict[str, Any]) -> str:
        lhb = make(spec)
        return revision.for_bridge(lhb, bridge.deployment(lhb), {})

    base = rev({})
    assert rev({"replicas": 5}) == base
    assert rev({"rollout": {"minReadySeconds": 10}}) == base
    assert rev({"restartNonce": "1"}) != base
    assert rev({"image": "x:2"}) != base
    assert rev({"bridge": {"logLevel": "debug"}}) != base


def test_builders_leave_the_revision_to_the_health_gate() -> None:
    """No second revision algorithm: the built template carries none, the gate stamps revision.for_bridge's."""
    for case in CASES.values():
        dep = bridge.deployment(make(case))
        assert naming.A_REVISION not in dep["spec"]["template"]["metadata"].get("annotations", {})


def test_children_depend_on_spec() -> None:
    kinds = lambda spec: sorted(d["kind"] for d in builders.desired_children(make(spec)))  # noqa: E731
    assert kinds({}) == sorted(
        [
            "ServiceAccount",
            "ConfigMap",
            "NetworkPolicy",
            "NetworkPolicy",
            "Service",
            "Service",
            "Service",
            "Service",
            "StatefulSet",
            "StatefulSet",
            "Deployment",
        ]
    )
    ext = {"mode": "external", "external": {"secretRef": {"name": "x"}}}
    assert kinds(
        {
            "redis": ext,
            "postgres": ext,
            "networkPolicy": {"enabled": False},
            "podTemplate": {"serviceAccountName": "sa"},
        }
    ) == ["ConfigMap", "Deployment", "Service", "Service"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_cases_are_valid_specs(case: str) -> None:
    # A golden file of a spec the operator would refuse (Stalled, InvalidSpec) pins nothing anyone runs.
    assert validation.problems(make(CASES[case])) == []


EXPOSE = {
    "ingress": {
        "host": "lighthouse.example.com",
        "className": "nginx",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"},
        "tls": {"secretName": "lighthouse-tls"},
    },
    "gateway": {
        "parentRefs": [{"name": "shared", "namespace": "infra", "sectionName": "https"}, {"name": "local"}],
        "hostnames": ["lighthouse.example.com"],
        "path": "/api",
        "tls": {"secretName": "lighthouse-tls"},
    },
}


def test_golden_expose() -> None:
    lhb = make({"expose": EXPOSE})
    docs = [expose.ingress(lhb), expose.http_route(lhb), expose.reference_grant(lhb)]
    text = yaml.dump_all(docs, Dumper=NoAliases, sort_keys=True, width=120)
    path = GOLDEN / "expose.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"differs from {path}; rerun with UPDATE_GOLDEN=1 if intended"
    # Every one is owned and labelled like the other children (pruned with the bridge, found by its label).
    for doc in docs:
        assert doc is not None and doc["metadata"]["ownerReferences"][0]["uid"] == "0000-uid"
        assert doc["metadata"]["labels"][naming.L_INSTANCE] == "demo"
    assert bridge.endpoints(lhb)["external"] == "https://lighthouse.example.com"


def test_expose_only_what_is_asked() -> None:
    plain = make({})
    assert (expose.ingress(plain), expose.http_route(plain), expose.reference_grant(plain)) == (None, None, None)
    assert "external" not in bridge.endpoints(plain)
    # A Gateway in this namespace needs no ReferenceGrant for a Secret of this namespace; no TLS, none either.
    same = make(
        {
            "expose": {
                "gateway": {"parentRefs": [{"name": "gw", "namespace": "team-a"}], "tls": EXPOSE["gateway"]["tls"]}
            }
        }
    )
    assert expose.http_route(same) is not None and expose.reference_grant(same) is None
    assert (
        expose.reference_grant(make({"expose": {"gateway": {"parentRefs": [{"name": "gw", "namespace": "x"}]}}}))
        is None
    )
    http = make({"expose": {"ingress": {"host": "lh.example.com"}}})
    ing = expose.ingress(http)
    assert ing is not None and "tls" not in ing["spec"] and "ingressClassName" not in ing["spec"]
    assert bridge.endpoints(http)["external"] == "http://lh.example.com"


def test_the_api_client_knows_every_kind_the_operator_writes() -> None:
    # A kind missing from k8s.KINDS fails only at run time, in the middle of a reconcile (found by the expose test).
    full = make({**CASES["full"], "expose": EXPOSE, "monitoring": {"serviceMonitor": True}})
    docs = [*render(full), expose.ingress(full), expose.http_route(full), expose.reference_grant(full)]
    docs.append(monitoring.service_monitor(full))
    assert sorted({(d["apiVersion"], d["kind"]) for d in docs if d} - set(k8s.KINDS)) == []


@pytest.mark.parametrize(
    ("fuse", "restricted"),
    [
        ({"mode": "csi"}, True),
        ({"mode": "disabled"}, True),
        ({"mode": "devicePlugin", "devicePluginResource": "lighthouse.dev/fuse"}, False),
        ({"mode": "userNamespaces", "devicePluginResource": "lighthouse.dev/fuse"}, False),
        ({"mode": "privileged"}, False),
        ({"mode": "capabilities"}, False),
    ],
)
def test_pod_security_level_per_fuse_mode(fuse: dict[str, Any], restricted: bool) -> None:
    """The table in docs/fuse-modes.md: only csi and disabled keep the bridge pod within "restricted"."""
    pod = bridge.deployment(make({"fuse": fuse}))["spec"]["template"]["spec"]
    assert (restricted_violations(pod) == []) is restricted, restricted_violations(pod)


def test_csi_mode_mounts_the_node_plugins_volume() -> None:
    pod = bridge.deployment(make({"fuse": {"mode": "csi"}}))["spec"]["template"]["spec"]
    (mnt,) = [v for v in pod["volumes"] if v["name"] == "mnt"]
    assert mnt == {
        "name": "mnt",
        "csi": {"driver": "fuse.lighthouse.dev", "volumeAttributes": {"uid": "10001", "gid": "10001"}},
    }
    c = pod["containers"][0]
    (m,) = [m for m in c["volumeMounts"] if m["name"] == "mnt"]
    assert m == {"name": "mnt", "mountPath": "/mnt/lighthouse", "mountPropagation": "HostToContainer"}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["LIGHTHOUSE_FUSE_FD_SOCKET"] == "/mnt/lighthouse/.lighthouse-fuse.sock"
    assert env["LIGHTHOUSE_MOUNT_POINT"] == "/mnt/lighthouse/project"
    assert c["securityContext"]["runAsUser"] == 10001 and "hostUsers" not in pod


def test_user_namespaces_mode_asks_for_a_user_namespace() -> None:
    spec = {"fuse": {"mode": "userNamespaces", "devicePluginResource": "lighthouse.dev/fuse"}}
    pod = bridge.deployment(make(spec))["spec"]["template"]["spec"]
    assert pod["hostUsers"] is False
    assert bridge.deployment(make({}))["spec"]["template"]["spec"].get("hostUsers") is None

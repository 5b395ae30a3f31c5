"""The plugin's pure parts: kubectl flag handling, the status tree, diffs, rollback planning, redaction, requests."""

from __future__ import annotations

import base64
import datetime
import io
import json
import tarfile
from typing import Any

import pytest
from kubectl_lighthouse import bridge_api, cli, diff, gather, redact, report, rollback, tree
from kubectl_lighthouse.kube import split_kubectl_flags
from lighthouse_operator import revision
from lighthouse_operator.builders import bridge as bridge_builder
from lighthouse_operator.models import LighthouseBridge

NOW = datetime.datetime(2026, 11, 29, 12, 0, 0, tzinfo=datetime.UTC)


# ------------------------------------------------------------------------------------------------ kubectl flags


def test_kubectl_connection_flags_are_passed_on_and_the_namespace_taken() -> None:
    own, flags, ns = split_kubectl_flags(
        [
            "status",
            "demo",
            "-n",
            "team-a",
            "--context",
            "prod",
            "--kubeconfig=/k",
            "--as",
            "alice",
            "--insecure-skip-tls-verify",
            "-o",
            "json",
        ]
    )
    assert own == ["status", "demo", "-o", "json"]
    assert flags == ["--context", "prod", "--kubeconfig=/k", "--as", "alice", "--insecure-skip-tls-verify"]
    assert ns == "team-a"
    assert split_kubectl_flags(["status", "--namespace=x"])[2] == "x"
    assert split_kubectl_flags(["status", "-nteam-b"])[2] == "team-b"
    # After --, everything belongs to the command (psql's own -n would otherwise be eaten).
    assert split_kubectl_flags(["psql", "demo", "--", "-n", "x"]) == (["psql", "demo", "--", "-n", "x"], [], None)


def test_every_command_parses() -> None:
    p = cli.build_parser()
    assert p.parse_args(["token", "demo", "--agent", "b1"]).role == "builder"
    assert p.parse_args(["backup", "demo", "--timeout", "10m"]).timeout == 600
    assert p.parse_args(["restore", "demo", "--to", "copy", "--from", "2026"]).backup == "2026"
    for argv in (
        ["status"],
        ["rollback", "demo", "--dry-run"],
        ["logs", "demo", "-c", "postgres"],
        ["psql", "demo"],
        ["connect", "demo", "--agent", "a"],
        ["health", "demo"],
        ["report", "demo"],
        ["version"],
    ):
        assert p.parse_args(argv).func is not None
    with pytest.raises(SystemExit):
        p.parse_args(["token", "demo"])  # --agent is required
    args, flags, ns = cli.parse(["connect", "demo", "--agent", "dev", "-n", "x", "--", "env", "-i", "-n", "y"])
    assert (args.agent, args.trailing, ns, flags) == ("dev", ["env", "-i", "-n", "y"], "x", [])
    assert cli.parse(["psql", "demo", "--", "-c", "select 1"])[0].trailing == ["-c", "select 1"]
    with pytest.raises(SystemExit):
        cli.parse(["status", "demo", "--", "oops"])


# ------------------------------------------------------------------------------------------------ tree


def obj(kind: str, name: str, uid: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "uid": uid, **extra.pop("md", {})}, **extra}


LHB = {
    "kind": "LighthouseBridge",
    "metadata": {"name": "demo", "namespace": "team-a", "uid": "u0", "generation": 3},
    "spec": {"backup": {"schedule": "0 3 * * *"}},
    "status": {
        "observedGeneration": 3,
        "phase": "Ready",
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "All components are ready",
                "lastTransitionTime": "2026-11-29T11:55:00Z",
            },
            {
                "type": "BackupSucceeded",
                "status": "True",
                "reason": "BackupSucceeded",
                "message": "ok",
                "lastTransitionTime": "2026-11-29T03:01:00Z",
            },
        ],
        "revisions": {"desired": "abc", "serving": "abc", "lastGood": "abc"},
        "lastBackup": {"name": "20261129T030000Z", "time": "2026-11-29T03:00:40Z", "size": 1234},
        "components": {"bridge": {"ready": 2, "desired": 2, "message": "2/2 ready"}},
    },
}


def test_status_tree_shows_conditions_revisions_backup_children_and_pods() -> None:
    children = [
        obj("Service", "demo-bridge", "s1", spec={"clusterIP": "10.0.0.5"}),
        obj(
            "Deployment",
            "demo-bridge",
            "d1",
            spec={"replicas": 2, "selector": {"matchLabels": {"c": "bridge"}}},
            status={"readyReplicas": 2},
        ),
        obj("StatefulSet", "demo-postgres", "p1", spec={"replicas": 1}, status={"readyReplicas": 1}),
    ]
    pods = [
        obj(
            "Pod",
            "demo-bridge-x",
            "px",
            md={"labels": {"c": "bridge"}, "ownerReferences": [{"uid": "rs1"}]},
            status={"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        ),
        obj(
            "Pod",
            "demo-postgres-0",
            "pp",
            md={"labels": {"c": "postgres"}, "ownerReferences": [{"uid": "p1"}]},
            status={
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
            },
        ),
    ]
    out = tree.render(tree.build(LHB, children, pods, NOW))
    assert out.splitlines()[0] == "LighthouseBridge team-a/demo  phase Ready  generation 3"
    assert "├── Conditions\n│   ├── Ready=True  Ready: All components are ready  (5m)\n" in out
    assert "│   └── lastGood: abc\n" in out
    assert "last: 20261129T030000Z at 2026-11-29T03:00:40Z, 1234 bytes (8h ago)" in out
    # Deployment first (kind order), its pod under it (by selector), the StatefulSet's pod under it (by owner).
    lines = out.splitlines()
    dep = lines.index("    ├── Deployment demo-bridge  2/2 ready")
    assert lines[dep + 1] == "    │   └── Pod demo-bridge-x  Running Ready"
    sts = lines.index("    ├── StatefulSet demo-postgres  1/1 ready")
    assert lines[sts + 1] == "    │   └── Pod demo-postgres-0  Running NotReady (CrashLoopBackOff) restarts=4"
    assert lines[-1] == "    └── Service demo-bridge  10.0.0.5"


def test_status_tree_of_a_resource_the_operator_has_not_seen() -> None:
    fresh = {"kind": "LighthouseBridge", "metadata": {"name": "n", "namespace": "x", "generation": 1}, "spec": {}}
    out = tree.render(tree.build(fresh, [], [], NOW))
    assert "phase ?  generation 1 (observed None)" in out
    assert "none yet (has the operator seen this resource?)" in out
    assert "not configured (spec.backup)" in out and out.endswith("└── Children\n    └── none\n")


# ------------------------------------------------------------------------------------------------ diff, rollback


def test_paths_compare_named_lists_by_name() -> None:
    a = {"spec": {"containers": [{"name": "bridge", "image": "a", "env": [{"name": "X", "value": "1"}]}]}}
    b = {"spec": {"containers": [{"name": "bridge", "image": "b", "env": [{"name": "X", "value": "2"}]}]}}
    assert diff.paths(a, b) == ["spec.containers[bridge].env[X].value", "spec.containers[bridge].image"]
    assert diff.paths(a, a) == [] and diff.unified(a, a, "x", "y") == ""


def lhb_model(spec: dict[str, Any]) -> LighthouseBridge:
    return LighthouseBridge.from_body(
        {"metadata": {"name": "demo", "namespace": "ns", "uid": "u", "generation": 2}, "spec": spec}
    )


def history_entry(spec: dict[str, Any], number: int) -> tuple[str, dict[str, Any]]:
    """A ControllerRevision exactly as the operator stores it for this spec."""
    model = lhb_model(spec)
    deployment = bridge_builder.deployment(model)
    rev = revision.for_bridge(model, deployment, {})  # as the gate computes it (no referenced objects here)
    template = revision.stamp(deployment, rev)["spec"]["template"]
    return rev, revision.controller_revision(model, "bridge", rev, template, number)


def test_rollback_restores_image_and_resources_from_the_stored_template() -> None:
    good_spec = {
        "image": "reg/bridge:1.0",
        "resources": {"limits": {"memory": "512Mi"}},
        "fuse": {"mode": "devicePlugin", "devicePluginResource": "smarter-devices/fuse"},
    }
    bad_spec = {**good_spec, "image": "reg/bridge:2.0", "resources": {"limits": {"memory": "1Gi", "cpu": "2"}}}
    good_rev, good_cr = history_entry(good_spec, 1)
    bad_rev, bad_cr = history_entry(bad_spec, 2)
    lhb = {
        "metadata": {"name": "demo"},
        "spec": bad_spec,
        "status": {"revisions": {"desired": bad_rev, "serving": good_rev, "lastGood": good_rev}},
    }
    plan = rollback.plan(lhb, [good_cr, bad_cr])
    assert plan.target == good_rev
    # The FUSE device plugin's resource, which the operator adds to the container, is not put into spec.resources.
    assert plan.patch == {
        "spec": {"image": "reg/bridge:1.0", "resources": {"limits": {"memory": "512Mi", "cpu": None}}}
    }
    assert plan.spec_after["resources"] == {"limits": {"memory": "512Mi"}}
    assert '-  "image": "reg/bridge:2.0",' in plan.spec_diff and '+  "image": "reg/bridge:1.0",' in plan.spec_diff
    assert plan.unrestored == []
    # Applying the patch gives back exactly the last good revision.
    after = lhb_model(plan.spec_after)
    assert revision.for_bridge(after, bridge_builder.deployment(after), {}) == good_rev


def test_rollback_names_what_it_cannot_restore() -> None:
    good_rev, good_cr = history_entry({"image": "reg/bridge:1.0"}, 1)
    bad_spec = {"image": "reg/bridge:2.0", "bridge": {"logLevel": "debug"}}
    bad_rev, bad_cr = history_entry(bad_spec, 2)
    lhb = {
        "metadata": {"name": "demo"},
        "spec": bad_spec,
        "status": {"revisions": {"desired": bad_rev, "lastGood": good_rev}},
    }
    plan = rollback.plan(lhb, [good_cr, bad_cr])
    assert plan.patch == {"spec": {"image": "reg/bridge:1.0"}}
    assert plan.unrestored == ["spec.containers[bridge].env[LIGHTHOUSE_LOG_LEVEL].value"]


def test_rollback_refuses_when_there_is_nothing_to_do_or_nothing_to_go_back_to() -> None:
    rev, cr = history_entry({"image": "reg/bridge:1.0"}, 1)
    same = {
        "metadata": {"name": "demo"},
        "spec": {"image": "reg/bridge:1.0"},
        "status": {"revisions": {"desired": rev, "lastGood": rev}},
    }
    with pytest.raises(rollback.RollbackError, match="nothing to roll back"):
        rollback.plan(same, [cr])
    with pytest.raises(rollback.RollbackError, match="never rolled out healthily"):
        rollback.plan({"spec": {}, "status": {}}, [cr])
    with pytest.raises(rollback.RollbackError, match="ControllerRevision of the last good revision zzz is missing"):
        rollback.plan({"spec": {}, "status": {"revisions": {"lastGood": "zzz"}}}, [cr])


# ------------------------------------------------------------------------------------------------ redaction


def test_secrets_and_credentials_are_redacted_and_nothing_else() -> None:
    secret = {
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "annotations": {redact.LAST_APPLIED: '{"data":{"x":"c2Vj"}}'},
            "managedFields": [{"manager": "m"}],
        },
        "data": {"token": base64.b64encode(b"s3cret").decode()},
        "stringData": {"url": "postgresql://u:p@h/db"},
    }
    out = redact.resource(secret)
    assert out["data"] == {"token": "REDACTED (8 bytes)"} and out["stringData"] == {"url": "REDACTED (21 bytes)"}
    assert "annotations" not in out["metadata"] and "managedFields" not in out["metadata"]
    assert secret["data"]["token"] != "REDACTED (8 bytes)"  # the input is not changed
    dep = {
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "bridge",
                            "image": "img:1",
                            "args": ["--db", "postgresql://lh:pw@pg:5432/lh"],
                            "env": [
                                {"name": "LIGHTHOUSE_ADMIN_TOKEN", "value": "abc"},
                                {"name": "LIGHTHOUSE_LOG_LEVEL", "value": "info"},
                                {
                                    "name": "LIGHTHOUSE_DATABASE_URL",
                                    "valueFrom": {"secretKeyRef": {"name": "x", "key": "url"}},
                                },
                            ],
                        }
                    ]
                }
            }
        },
    }
    c = redact.resource(dep)["spec"]["template"]["spec"]["containers"][0]
    assert [e.get("value") for e in c["env"]] == ["REDACTED", "info", None]
    assert c["env"][2]["valueFrom"] == {"secretKeyRef": {"name": "x", "key": "url"}}
    assert c["args"] == ["--db", "postgresql://lh:REDACTED@pg:5432/lh"] and c["image"] == "img:1"
    line = "GET /x Authorization: Bearer abc.def token=lh1.eyJ4IjoxfQ.c2ln redis://:hunter2@redis:6379/0 ok"
    assert redact.text(line) == "GET /x Authorization: Bearer REDACTED token=REDACTED redis://:REDACTED@redis:6379/0 ok"


def test_report_bundle_has_every_part_and_no_secret_value() -> None:
    snap = gather.Snapshot(
        LHB,
        [
            {
                "kind": "Secret",
                "metadata": {"name": "demo-admin-token", "uid": "s"},
                "data": {"token": "c2VjcmV0LXZhbHVl"},
            }
        ],
        [
            {
                "kind": "Pod",
                "metadata": {"name": "demo-bridge-x", "uid": "p"},
                "spec": {"containers": [{"name": "bridge"}]},
                "status": {"containerStatuses": [{"name": "bridge", "restartCount": 1}]},
            }
        ],
    )
    logs = {"logs/demo-bridge-x/bridge.log": "connected to postgresql://lh:pw@pg/lh\n"}
    files = report.entries(snap, [{"kind": "Event", "metadata": {"name": "e"}, "reason": "Created"}], logs, "v1\n")
    names = [f for f, _ in files]
    assert names == [
        "README.txt",
        "lighthousebridge.json",
        "children/Secret-demo-admin-token.json",
        "pods/demo-bridge-x.json",
        "events.json",
        "logs/demo-bridge-x/bridge.log",
        "versions.txt",
    ]
    everything = b"".join(data for _, data in files)
    assert b"c2VjcmV0LXZhbHVl" not in everything and b"secret-value" not in everything and b":pw@" not in everything
    assert list(report.containers(snap.pods[0])) == [("bridge", True)]  # a restart: its previous log is wanted too
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert len(tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()) == len(files)


# ------------------------------------------------------------------------------------------------ token, restore


def test_mint_request_from_the_admin_secret() -> None:
    secret = {"data": {"token": base64.b64encode(b"adm1n").decode()}}
    token = bridge_api.admin_token(secret, "demo")
    req = bridge_api.mint_request("http://127.0.0.1:4000/", token, "builder-1", "builder", 3600)
    assert req.url == "http://127.0.0.1:4000/session/create"
    assert req.body == {"agent_id": "builder-1", "role": "builder", "ttl_seconds": 3600}
    u = req.urllib_request()
    assert u.get_header("Authorization") == "Bearer adm1n" and json.loads(u.data or b"") == req.body
    assert "adm1n" not in json.dumps(req.describe())
    with pytest.raises(bridge_api.BridgeAPIError, match="Secret demo-admin-token not found"):
        bridge_api.admin_token(None, "demo")
    with pytest.raises(bridge_api.BridgeAPIError, match="role must be one of"):
        bridge_api.mint_request("http://x", token, "a", "root", None)


def test_restore_manifest_copies_the_spec_and_names_the_source() -> None:
    source = {
        "metadata": {"name": "demo", "namespace": "prod"},
        "spec": {
            "replicas": 2,
            "paused": True,
            "backup": {"schedule": "0 3 * * *", "s3": {"bucket": "b"}},
            "expose": {"ingress": {"host": "lighthouse.example.com"}},
        },
    }
    m = cli.restore_manifest(source, "demo-copy", "staging", "latest")
    assert m["metadata"] == {"name": "demo-copy", "namespace": "staging"}
    assert m["spec"]["restore"] == {"from": "latest", "sourceName": "demo", "sourceNamespace": "prod"}
    assert m["spec"]["backup"] == source["spec"]["backup"] and "paused" not in m["spec"]
    assert "expose" not in m["spec"]  # the live bridge keeps its hostname
    assert "sourceNamespace" not in cli.restore_manifest(source, "c", "prod", "x")["spec"]["restore"]
    with pytest.raises(cli.Failure, match=r"no spec\.backup"):
        cli.restore_manifest({"metadata": {"name": "n", "namespace": "x"}, "spec": {}}, "c", "x", "latest")


def test_in_place_runbook_is_filled_from_the_live_objects() -> None:
    dep = {"spec": {"template": {"spec": {"containers": [{"image": "reg/bridge:1.0"}]}}}}
    source = {
        "metadata": {"name": "demo", "namespace": "team-a"},
        "spec": {"replicas": 3, "backup": {"s3": {"bucket": "bk", "credentialsSecret": "s3"}}},
    }
    text = cli.in_place_runbook(source, dep, "20261129T030000Z")
    for line in (
        "NS=team-a",
        "NAME=demo",
        "IMAGE=reg/bridge:1.0",
        "REPLICAS=3",
        "S3_BUCKET=bk",
        "S3_SECRET=s3",
        "DB_SECRET=demo-postgres-credentials",
        "BACKUP=20261129T030000Z",
    ):
        assert f"\n{line}\n" in text, line

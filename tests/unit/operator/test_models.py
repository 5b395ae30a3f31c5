"""The typed LighthouseBridge API: defaults live in the model, wire names are camelCase, bad input is refused."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pydantic
import pytest
from lighthouse_operator import models
from lighthouse_operator.__main__ import apply_defaults, parse_args
from lighthouse_operator.drift import parse_quantity
from lighthouse_operator.validation import InvalidSpec, cron_problem, parse


def body(spec: dict | None = None, name: str = "demo") -> dict:
    return {
        "apiVersion": models.API_VERSION,
        "kind": models.KIND,
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1", "generation": 3},
        "spec": spec or {},
    }


def test_empty_spec_gets_operator_defaults() -> None:
    lhb = parse(body())
    s = lhb.spec
    assert s.replicas == 1
    assert s.bridge_image == models.DEFAULT_BRIDGE_IMAGE
    assert s.redis.mode == "managed" and s.postgres.mode == "managed"
    assert s.deletion_policy == "Retain"
    assert s.network_policy.enabled is True
    assert s.fuse.active and s.fuse.mode == "capabilities"
    assert s.rollout.crash_loop_restarts == 3
    assert s.backup is None and s.restore is None


def test_wire_names_are_camel_case() -> None:
    spec = {
        "podTemplate": {"nodeSelector": {"a": "b"}, "priorityClassName": "high"},
        "redis": {"mode": "external", "external": {"secretRef": {"name": "r"}}},
        "restore": {"from": "2026-01-01T00-00-00Z", "s3": {"bucket": "bkt", "pathStyle": True}},
        "restartNonce": "1",
    }
    s = parse(body(spec)).spec
    assert s.pod_template.node_selector == {"a": "b"}
    assert s.redis.external and s.redis.external.secret_ref and s.redis.external.secret_ref.key == "url"
    assert s.restore and s.restore.from_ == "2026-01-01T00-00-00Z" and s.restore.s3 and s.restore.s3.path_style
    dumped = s.model_dump(by_alias=True, exclude_none=True)
    assert dumped["restore"]["from"] == "2026-01-01T00-00-00Z"
    assert "podTemplate" in dumped and "restartNonce" in dumped


def test_unknown_field_is_refused() -> None:
    with pytest.raises(InvalidSpec) as e:
        parse(body({"replicaz": 2}))
    assert "replicaz" in str(e.value)


@pytest.mark.parametrize(
    ("q", "value"),
    [("1Gi", 2**30), ("500m", Decimal("0.5")), ("2", 2), (3, 3), ("1.5", Decimal("1.5")), ("1e3", 1000)],
)
def test_quantities_accepted(q: int | str, value: Decimal) -> None:
    r = models.ResourceRequirements.model_validate({"limits": {"memory": q}, "requests": {"cpu": q}})
    # Passed to the pod as written (the API server canonicalises it, not the operator)...
    assert r.to_k8s() == {"limits": {"memory": q}, "requests": {"cpu": q}}
    # ... and readable by drift.py, which compares the server's canonical form by value (an unreadable quantity
    # would look changed on every pass and be re-applied forever).
    assert parse_quantity(q) == value


@pytest.mark.parametrize("q", ["1 GB", "lots", "1Gib", ""])
def test_bad_quantity_refused(q: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="not a Kubernetes quantity"):
        models.StorageSpec.model_validate({"size": q})


@pytest.mark.parametrize("sched", ["0 3 * * *", "*/15 * * * *", "0 0 1 jan-jun mon-fri", "@daily", "5,10 1-4/2 * * 0"])
def test_cron_accepted(sched: str) -> None:
    assert cron_problem(sched) is None


@pytest.mark.parametrize(
    "sched", ["0 3 * *", "61 * * * *", "* 24 * * *", "* * * * mon-sun-x", "*/0 * * * *", "x y z a b"]
)
def test_cron_refused(sched: str) -> None:
    assert cron_problem(sched)


def test_semantic_problems_collected() -> None:
    spec = {
        "backup": {"schedule": "every day", "s3": {"bucket": "bkt"}, "retention": {"maxAge": "a month"}},
        "fuse": {"mode": "devicePlugin", "devicePluginResource": "no slash"},
    }
    with pytest.raises(InvalidSpec) as e:
        parse(body(spec))
    assert len(e.value.problems) == 3
    assert any("backup.schedule" in p for p in e.value.problems)
    assert any("maxAge" in p for p in e.value.problems)
    assert any("devicePluginResource" in p for p in e.value.problems)


def test_device_modes_need_a_resource_from_the_spec_or_the_operators_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # The CRD cannot require it: the operator's default (the chart's defaults.fuse) fills it in.
    with pytest.raises(InvalidSpec) as e:
        parse(body({"fuse": {"mode": "devicePlugin"}}))
    assert e.value.problems == [
        "fuse.devicePluginResource (for example lighthouse.dev/fuse) is required when fuse.mode is devicePlugin and "
        "the operator has no default (--default-fuse-device-plugin-resource)"
    ]
    monkeypatch.setattr(models.DEFAULTS, "fuse_device_plugin_resource", "lighthouse.dev/fuse")
    assert parse(body({"fuse": {"mode": "userNamespaces"}})).spec.fuse.device_plugin_resource == "lighthouse.dev/fuse"


def test_min_ready_seconds_must_stay_below_the_progress_deadline() -> None:
    assert parse(body({"rollout": {"minReadySeconds": 10, "progressDeadlineSeconds": 30}}))
    with pytest.raises(InvalidSpec, match=r"rollout.minReadySeconds \(600\) must be less than"):
        parse(body({"rollout": {"minReadySeconds": 600}}))  # the default deadline is 600


def test_restore_needs_a_location() -> None:
    with pytest.raises(InvalidSpec, match="restore needs"):
        parse(body({"restore": {"from": "latest"}}))


def test_status_dump_is_camel_case_and_sparse() -> None:
    st = models.LighthouseBridgeStatus(
        observed_generation=2,
        conditions=[models.Condition(type="Ready", status="True", reason="Ready")],
        ready_replicas=1,
    )
    d = st.dump()
    assert d == {
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": ""}],
        "readyReplicas": 1,
    }


def test_examples_are_valid() -> None:
    import pathlib

    import yaml

    root = pathlib.Path(__file__).resolve().parents[3] / "examples"
    found = 0
    for path in sorted(root.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == models.KIND:
                parse(doc)
                found += 1
    assert found >= 2


def test_policy_the_bridge_would_refuse_is_invalid_spec() -> None:
    # What examples/production.yaml used to say: keys the bridge does not know, so it ran on its default policy.
    with pytest.raises(InvalidSpec) as e:
        parse(body({"bridge": {"policy": {"blocked": ["rm -rf /"], "escalateTimeoutSeconds": 60}}}))
    assert e.value.problems == [
        "bridge.policy.blocked: Extra inputs are not permitted",
        "bridge.policy.escalateTimeoutSeconds: Extra inputs are not permitted",
    ]
    bad_rules = {"rules": [{"id": "x", "command": "([", "action": "block"}, {"id": "x", "action": "approve"}]}
    with pytest.raises(InvalidSpec, match=r"bridge\.policy\.rules\[0\]\.command: Value error, invalid regex '\(\['"):
        parse(body({"bridge": {"policy": bad_rules}}))
    with pytest.raises(InvalidSpec, match="duplicate rule id 'x'"):
        parse(body({"bridge": {"policy": {"rules": [{"id": "x", "action": "block"}, {"id": "x", "action": "block"}]}}}))
    with pytest.raises(InvalidSpec, match=r"bridge\.policy\.rules\[0\]\.tool"):
        parse(body({"bridge": {"policy": {"rules": [{"tool": 5, "action": "block"}]}}}))
    # A valid one passes, and is kept as written (the ConfigMap gets exactly this).
    good = {"rules": [{"tool": ["Bash"], "command": "^make\\b", "action": "approve"}], "default_action": "block"}
    assert parse(body({"bridge": {"policy": good}})).spec.bridge.policy == good


@pytest.fixture
def installation_defaults():
    """models.DEFAULTS as `lighthouse-operator --default-*` sets it, restored afterwards."""
    saved = dataclasses.replace(models.DEFAULTS)
    yield models.DEFAULTS
    for f in dataclasses.fields(saved):
        setattr(models.DEFAULTS, f.name, getattr(saved, f.name))


def test_operator_flags_set_the_defaults_of_omitted_fields(installation_defaults) -> None:
    args = parse_args(
        [
            "--default-postgres-image=localhost/lighthouse-postgres:15",
            "--default-redis-image=localhost/lighthouse-redis:7.0",
            "--default-bridge-image=registry.example/bridge:2",
            "--default-fuse-mode=devicePlugin",
            "--default-fuse-device-plugin-resource=lighthouse.dev/fuse",
        ]
    )
    apply_defaults(args, installation_defaults)
    s = parse(body()).spec
    assert (s.postgres_image, s.redis_image, s.bridge_image) == (
        "localhost/lighthouse-postgres:15",
        "localhost/lighthouse-redis:7.0",
        "registry.example/bridge:2",
    )
    assert (s.fuse.mode, s.fuse.device_plugin_resource) == ("devicePlugin", "lighthouse.dev/fuse")
    # What a resource says still wins.
    own = parse(body({"image": "mine:1", "fuse": {"mode": "disabled"}, "postgres": {"managed": {"image": "pg:15"}}}))
    assert (own.spec.bridge_image, own.spec.fuse.mode, own.spec.postgres_image) == ("mine:1", "disabled", "pg:15")


def test_operator_defaults_without_flags_are_the_built_in_ones(installation_defaults) -> None:
    apply_defaults(parse_args([]), installation_defaults)
    s = parse(body()).spec
    assert s.postgres_image == models.DEFAULT_POSTGRES_IMAGE and s.fuse.mode == "capabilities"


@pytest.mark.parametrize("mode", ["devicePlugin", "userNamespaces"])
def test_default_device_plugin_mode_needs_a_resource(capsys, mode: str) -> None:
    with pytest.raises(SystemExit):
        parse_args([f"--default-fuse-mode={mode}"])
    assert f"{mode} needs --default-fuse-device-plugin-resource" in capsys.readouterr().err

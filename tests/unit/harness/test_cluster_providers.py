"""The cluster fixture's safety and skip logic, without a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness.cluster import (
    REPO_ROOT,
    UnsafeContextError,
    WaitTimeout,
    _namespace_name,
    check_test_context,
    docker_unavailable_reason,
    wait_for,
)


@pytest.mark.parametrize(
    ("context", "cluster"),
    [
        ("kind-lighthouse", "kind-lighthouse"),
        ("kwok-lighthouse", "kwok-lighthouse"),
        ("minikube", "minikube"),
        ("k3d-dev", "k3d-dev"),
        ("ci-test", "gke_project_zone_name"),  # the context name alone is enough
        ("admin@cluster", "local"),  # so is the cluster's
        ("Docker-LOCAL", None),
    ],
)
def test_test_contexts_are_accepted(context: str, cluster: str | None) -> None:
    check_test_context(context, cluster)


@pytest.mark.parametrize(
    ("context", "cluster", "needle"),
    [
        ("gke_acme_europe-west1_main", "gke_acme_europe-west1_main", "not plainly a test cluster"),
        ("arn:aws:eks:eu-west-1:123:cluster/shop", None, "not plainly a test cluster"),
        # Tokens, not substrings: these only look like test names.
        ("latest-kindergarten", "contest", "not plainly a test cluster"),
        # A production marker wins over a test marker.
        ("kind-prod", "kind-prod", "prod"),
        ("test", "production-eu", "production"),
        (None, None, "no current context"),
        ("", "kind", "no current context"),
    ],
)
def test_other_contexts_are_refused(context: str | None, cluster: str | None, needle: str) -> None:
    with pytest.raises(UnsafeContextError, match=needle) as info:
        check_test_context(context, cluster)
    if context:
        assert "LIGHTHOUSE_ALLOW_ANY_CONTEXT=1" in str(info.value)


def test_allow_any_context_lifts_the_guard() -> None:
    check_test_context("gke_acme_europe-west1_main", "prod", allow_any=True)


def test_missing_docker_cli_is_a_reason() -> None:
    reason = docker_unavailable_reason("definitely-not-a-docker-cli")
    assert reason is not None
    assert "no Docker engine" in reason


def test_wait_for_returns_the_first_truthy_value() -> None:
    calls = iter([None, ValueError("not yet"), 0, "ready"])

    def predicate() -> object:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_for(predicate, timeout=5, interval=0) == "ready"


def test_wait_for_reports_the_last_result_on_timeout() -> None:
    def predicate() -> None:
        raise LookupError("pod web-0 not found")

    with pytest.raises(WaitTimeout, match=r"web-0 Ready.*pod web-0 not found"):
        wait_for(predicate, timeout=0.05, interval=0.01, message="web-0 Ready")


def test_namespace_names_are_valid_dns_labels() -> None:
    name = _namespace_name("test_rollout[broken-image-Ready]" + "x" * 80)
    assert len(name) <= 63
    assert name.startswith("lh-test-rollout-broken-image-ready")
    assert all(c.isdigit() or c.islower() or c == "-" for c in name)
    assert _namespace_name("a") != _namespace_name("a")


def test_kind_provider_skips_with_the_reason(tmp_path: Path) -> None:
    """A session with --cluster-provider=kind skips cluster tests and says why (no Docker engine here)."""
    if docker_unavailable_reason() is None:
        pytest.skip("a Docker engine answers on this machine, so the kind provider would start a real cluster")
    test_file = tmp_path / "test_uses_cluster.py"
    test_file.write_text(
        textwrap.dedent(
            """
            def test_needs_a_cluster(cluster):
                raise AssertionError("the kind provider should have skipped")
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("LIGHTHOUSE_CLUSTER_PROVIDER", None)
    args = ["-p", "tests.harness.cluster", "--cluster-provider=kind", "-rs", "-q", "-p", "no:cacheprovider"]
    args += ["-c", os.devnull, "--rootdir", str(tmp_path), str(test_file)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "1 skipped" in out, out
    assert "--cluster-provider=kind: no Docker engine" in out, out

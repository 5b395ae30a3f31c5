"""Shared pytest configuration: tier markers follow the directory a test lives in; tests that share cluster-wide
state run in one xdist worker (hack/test.sh runs the tiers with pytest-xdist, `--dist loadgroup`)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.harness.services",
    "tests.harness.cluster",
]

TESTS = Path(__file__).parent
TIERS = ("unit", "integration", "e2e")

# Tests are isolated by namespace, database, Redis prefix and bucket, so they run in parallel workers. These share
# something cluster-wide and run one at a time, in one worker (node ids by prefix):
SERIAL_GROUPS = {
    # Helm releases adopt the one LighthouseBridge CRD and own cluster-wide RBAC.
    "tests/e2e/test_chart.py": "helm",
    "tests/e2e/test_operator_rbac.py": "helm",
    # The monitoring.coreos.com stand-in CRDs exist only while test_manifests runs; the ServiceMonitor test
    # checks both their presence and their absence.
    "tests/e2e/test_manifests.py": "monitoring-crds",
    "tests/integration/operator/test_operator.py::test_service_monitor_follows_the_spec": "monitoring-crds",
    # Installs and removes the Gateway API CRDs (it checks the operator both without and with them).
    "tests/integration/operator/test_expose.py::test_gateway_route_reported_without_the_crds_and_applied_with_them": (
        "gateway-api-crds"
    ),
}


def serial_group(nodeid: str) -> str | None:
    for prefix, group in SERIAL_GROUPS.items():
        if nodeid == prefix or nodeid.startswith(prefix + "::"):
            return group
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(TESTS.resolve())
        tier = rel.parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        group = serial_group(item.nodeid)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))

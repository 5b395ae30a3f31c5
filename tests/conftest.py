"""Shared pytest configuration: tier markers follow the directory a test lives in; tests that share cluster-wide
state run in one xdist worker (hack/test.sh runs the tiers with pytest-xdist, `--dist loadgroup`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadGroupScheduling

pytest_plugins = [
    "tests.harness.services",
    "tests.harness.cluster",
]

TESTS = Path(__file__).parent
TIERS = ("unit", "integration", "e2e", "node")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here rather than in pyproject.toml, whose contents key the image builds' dependency wheels.
    config.addinivalue_line("markers", "node: pods run by the real node's kubelet (hack/node.sh)")
    config.addinivalue_line(
        "markers", "disruptive: stops or restarts the real node; hack/test.sh runs these after the others, alone"
    )


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


class SerialGroupScheduling(LoadGroupScheduling):
    """`--dist loadgroup` with SERIAL_GROUPS as the groups. xdist's own xdist_group marks travel as a node-id suffix
    that pytest 9.2 no longer lets a plugin set (nodes keep `_id`, xdist writes `_nodeid`): the marks were silently
    ignored and the helm tests ran side by side. The scheduler sees every node id, so it groups them itself."""

    def _split_scope(self, nodeid: str) -> str:
        group = serial_group(nodeid)
        return f"group:{group}" if group else super()._split_scope(nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> SerialGroupScheduling | None:
    if config.getvalue("dist") != "loadgroup":
        return None
    return SerialGroupScheduling(config, log)

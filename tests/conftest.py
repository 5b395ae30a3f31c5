"""Shared pytest configuration: tier markers follow the directory a test lives in."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = [
    "tests.harness.services",
    "tests.harness.cluster",
]

TESTS = Path(__file__).parent
TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(TESTS.resolve())
        tier = rel.parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))

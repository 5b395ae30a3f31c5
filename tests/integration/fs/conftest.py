"""Fixtures for the FUSE integration tests: a real bridge on PostgreSQL + Redis, and real mounts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.pyfuse3_build import unpack_stock_pyfuse3
from tests.integration.fs.harness import FUSE_SKIP_REASON, Bridge, Mount


@pytest.fixture
def bridge(postgres_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Bridge]:
    b = Bridge(postgres_url, redis_url, tmp_path / "bridge.log", LIGHTHOUSE_REDIS_PREFIX=redis_prefix,
               LIGHTHOUSE_STREAM_HEARTBEAT="1")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def mount_factory(bridge: Bridge, tmp_path: Path) -> Iterator[Callable[..., Mount]]:
    if FUSE_SKIP_REASON:
        pytest.skip(FUSE_SKIP_REASON)
    mounts: list[Mount] = []

    def make(**kw: Any) -> Mount:
        root = tmp_path / f"m{len(mounts)}"
        root.mkdir(exist_ok=True)
        m = Mount(bridge.url, root, **kw)
        mounts.append(m)
        return m

    yield make
    for m in mounts:
        m.stop()


@pytest.fixture
def mount(mount_factory: Callable[..., Mount]) -> Mount:
    return mount_factory()


@pytest.fixture
def rw_mount(mount_factory: Callable[..., Mount]) -> Mount:
    return mount_factory(writable=True)


@pytest.fixture(scope="session")
def stock_pyfuse3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The released pyfuse3, for a mount process's PYTHONPATH (the open/release path must keep working with it)."""
    return unpack_stock_pyfuse3(tmp_path_factory.mktemp("stock-pyfuse3"))

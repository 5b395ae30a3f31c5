"""memory.py: the memory report (off without its variable; with it, SIGUSR2 writes RSS, the allocators' view, the
objects by type and the watch cache's entries and bytes per kind), and the trim that gives freed heap back."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lighthouse_operator import memory, naming
from lighthouse_operator.cache import Informer

pytestmark = pytest.mark.unit


def config_map(name: str) -> dict[str, Any]:
    labels = {naming.L_INSTANCE: "demo", naming.L_MANAGED_BY: naming.MANAGED_BY}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns",
            "resourceVersion": "1", "labels": labels}, "data": {"k": "v" * 100}}  # fmt: skip


@pytest.fixture
def restore_sigusr2() -> Any:
    before = signal.getsignal(signal.SIGUSR2)
    yield
    signal.signal(signal.SIGUSR2, before)


def test_nothing_is_installed_without_the_variable(monkeypatch: pytest.MonkeyPatch, restore_sigusr2: Any) -> None:
    monkeypatch.delenv(memory.ENV, raising=False)
    before = signal.getsignal(signal.SIGUSR2)
    memory.install(lambda: None)
    assert signal.getsignal(signal.SIGUSR2) is before


def test_sigusr2_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_sigusr2: Any) -> None:
    configmaps = Informer(None, "v1", "ConfigMap", "ns")
    for i in range(3):
        configmaps.apply("ADDED", config_map(f"c{i}"))
    bridges = Informer(None, "lighthouse.dev/v1alpha1", "LighthouseBridge", "")
    fake_cache = SimpleNamespace(informers={("ConfigMap", "ns"): configmaps}, bridges=bridges)
    path = tmp_path / "memory.json"
    monkeypatch.setenv(memory.ENV, str(path))
    memory.install(lambda: fake_cache)
    os.kill(os.getpid(), signal.SIGUSR2)
    report = json.loads(path.read_text())
    assert report["rss"]["VmRSS"] > 0 and report["rss"]["VmHWM"] >= report["rss"]["VmRSS"]
    assert report["pymalloc"]["arenas"] > 0 and report["pymalloc"]["allocated"] > 0
    assert report["cache"]["ConfigMap"]["objects"] == 3
    assert 0 < report["cache"]["ConfigMap"]["blob_bytes"] < 3 * len(json.dumps(config_map("c0")))
    assert report["cache"]["LighthouseBridge"] == {"objects": 0, "blob_bytes": 0}
    assert any(row["type"] == "builtins.dict" and row["count"] > 0 for row in report["gc"])


def test_trim_gives_freed_heap_back() -> None:
    """What glibc keeps after Python frees a busy spell's buffers (strings past pymalloc's 512 bytes, one in ten kept
    so that the heap's top cannot simply shrink) goes back to the kernel."""
    if getattr(memory._libc(), "malloc_trim", None) is None:
        pytest.skip("no glibc malloc_trim here")
    kept, freed = [], []
    for i in range(60_000):
        (kept if i % 10 == 0 else freed).append(f"{i:08d}" + "x" * 1500)
    del freed
    before = memory.rss()["VmRSS"]
    assert memory.trim()
    after = memory.rss()["VmRSS"]
    assert before - after > 30 * 2**20, (before, after)  # some 75 MiB were freed
    assert len(kept) == 6000

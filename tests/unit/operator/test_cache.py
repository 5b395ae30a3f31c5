"""The watch cache's pure parts: slimming, the codec, resourceVersion order, relist differences, label lookups.
(The watches themselves run against the real API server in tests/integration/operator.)"""

from __future__ import annotations

import asyncio
import copy
import json
import zlib
from typing import Any

import pytest
from lighthouse_operator import cache, naming
from lighthouse_operator.api import ApiError, Forbidden, NotFound
from lighthouse_operator.cache import YIELD_EVERY, Codec, Informer, newer, parse_selector, slim

pytestmark = pytest.mark.unit


def obj(kind: str, name: str, rv: str, instance: str = "demo", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": rv,
            "labels": {naming.L_INSTANCE: instance, naming.L_MANAGED_BY: naming.MANAGED_BY},
            "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {}}}],
        },
        **extra,
    }


def informer(changes: list[tuple[str, str]] | None = None) -> Informer:
    def on_change(kind: str, o: dict[str, Any]) -> None:
        if changes is not None:
            changes.append((kind, o["metadata"]["name"]))

    return Informer(None, "v1", "ConfigMap", "ns", on_change=on_change)


def test_slim_keeps_what_the_reconcile_reads_and_drops_the_rest() -> None:
    pod = obj(
        "Pod",
        "p",
        "5",
        spec={"containers": [{"name": "c", "image": "x" * 1000}], "nodeName": "n1"},
        status={
            "phase": "Running",
            "podIP": "10.0.0.1",
            "podIPs": [{"ip": "10.0.0.1"}],
            "qosClass": "BestEffort",
            "containerStatuses": [
                {
                    "name": "c",
                    "ready": True,
                    "restartCount": 2,
                    "imageID": "sha256:" + "f" * 64,
                    "state": {},
                    "containerID": "containerd://1",
                }
            ],
        },
    )
    pod["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "big": "y" * 5000,
        "small": "ok",
        "lighthouse.dev/revision": "r" * 3000,
    }
    s = slim(pod)
    # FuseAvailable asks a pod a runtime started (containerID) on its address, and reads its node.
    assert s["spec"] == {"nodeName": "n1"} and "managedFields" not in s["metadata"]
    assert s["status"] == {
        "phase": "Running",
        "podIP": "10.0.0.1",
        "containerStatuses": [
            {"name": "c", "ready": True, "restartCount": 2, "state": {}, "containerID": "containerd://1"}
        ],
    }
    assert s["metadata"]["annotations"] == {"small": "ok", "lighthouse.dev/revision": "r" * 3000}
    rs = obj("ReplicaSet", "rs", "1", spec={"replicas": 2, "template": {"metadata": {"a": 1}, "spec": {"big": 1}}})
    assert slim(rs)["spec"] == {"replicas": 2, "template": {"metadata": {"a": 1}}}
    dep = obj("Deployment", "d", "1", spec={"template": {"spec": {"containers": []}}})
    assert slim(dep)["spec"] == dep["spec"]  # the applier compares children whole
    assert pod["metadata"]["managedFields"], "slim() must not change its argument"


def test_codec_round_trips_and_shares_its_dictionary() -> None:
    c = Codec()
    first = slim(obj("Deployment", "a-bridge", "1", spec={"template": {"spec": {"containers": [{"name": "x" * 300}]}}}))
    second = copy.deepcopy(first)
    second["metadata"]["name"] = "b-bridge"
    blob_a, blob_b = c.encode(first), c.encode(second)
    assert c.decode(blob_a) == first and c.decode(blob_b) == second
    alone = zlib.compress(json.dumps(second, separators=(",", ":")).encode(), 1)
    assert len(blob_b) < len(alone) / 3, "the second object should compress against the first"


def test_resource_versions_compare_as_numbers() -> None:
    assert newer("10", "9") and not newer("9", "10") and not newer("7", "7")
    assert newer("abc", "7")  # opaque: taken as newer


def test_selectors_the_cache_can_answer() -> None:
    assert parse_selector("a=b,c==d") == {"a": "b", "c": "d"}
    assert parse_selector(None) == {}
    assert parse_selector("a!=b") is None and parse_selector("a in (b)") is None and parse_selector("a") is None


def test_events_never_go_back_in_time() -> None:
    changes: list[tuple[str, str]] = []
    inf = informer(changes)
    assert inf.apply("ADDED", obj("ConfigMap", "c", "10", data={"k": "1"}))
    # A write's result got here first (rv 12); the watch's older event (rv 11) must not undo it.
    assert inf.apply("MODIFIED", obj("ConfigMap", "c", "12", data={"k": "3"}))
    assert not inf.apply("MODIFIED", obj("ConfigMap", "c", "11", data={"k": "2"}))
    got = inf.get("ns", "c")
    assert got is not None and got["data"] == {"k": "3"} and got["metadata"]["resourceVersion"] == "12"
    # The same content at a newer resourceVersion is no change (managedFields, an unrelated annotation dropped).
    assert not inf.apply("MODIFIED", obj("ConfigMap", "c", "13", data={"k": "3"}))
    assert inf.get("ns", "c")["metadata"]["resourceVersion"] == "13"  # type: ignore[index]
    assert not inf.apply("DELETED", obj("ConfigMap", "c", "12"))  # older than what is held
    assert inf.apply("DELETED", obj("ConfigMap", "c", "14"))
    assert inf.get("ns", "c") is None
    assert changes == [("ConfigMap", "c")] * 3


def test_a_relist_reports_what_changed_while_no_watch_ran() -> None:
    changes: list[tuple[str, str]] = []
    inf = informer(changes)
    inf.replace([obj("ConfigMap", n, "5", data={"v": n}) for n in ("same", "edited", "deleted")], "5", notify=False)
    assert changes == []
    inf.apply("ADDED", obj("ConfigMap", "written", "20"), notify=False)  # our own write, newer than the next list
    inf.replace(
        [
            obj("ConfigMap", "same", "5", data={"v": "same"}),
            obj("ConfigMap", "edited", "9", data={"v": "new"}),
            obj("ConfigMap", "created", "8"),
        ],
        "10",
        notify=True,
    )
    assert sorted(changes) == [("ConfigMap", "created"), ("ConfigMap", "deleted"), ("ConfigMap", "edited")]
    assert inf.get("ns", "deleted") is None and inf.get("ns", "written") is not None


async def test_a_long_relist_lets_other_tasks_run() -> None:
    # The leader's Lease renewal shares the event loop with the cache: a LIST of thousands must not hold it.
    changes: list[tuple[str, str]] = []
    inf = informer(changes)
    inf.apply("ADDED", obj("ConfigMap", "gone", "1"), notify=False)
    turns, done = 0, False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(other_task())
    await asyncio.sleep(0)
    n = 5 * YIELD_EVERY
    before = turns
    assert await inf.replace_yielding([obj("ConfigMap", f"c{i}", "5") for i in range(n)], "5", notify=True) == n + 1
    during = turns - before
    done = True
    await task
    assert during >= 5
    assert len(changes) == n + 1 and inf.get("ns", "gone") is None


def test_lists_by_label_use_the_instance_index() -> None:
    inf = informer()
    inf.apply("ADDED", obj("ConfigMap", "a-1", "1", instance="a"))
    inf.apply("ADDED", obj("ConfigMap", "b-1", "1", instance="b"))
    other = obj("ConfigMap", "a-2", "1", instance="a")
    other["metadata"]["labels"][naming.L_COMPONENT] = "bridge"
    inf.apply("ADDED", other)
    names = [o["metadata"]["name"] for o in inf.list("ns", {naming.L_INSTANCE: "a"})]
    assert names == ["a-1", "a-2"]
    assert [o["metadata"]["name"] for o in inf.list("ns", {naming.L_INSTANCE: "a", naming.L_COMPONENT: "bridge"})] == [
        "a-2"
    ]
    assert [o["metadata"]["name"] for o in inf.list("ns", {naming.L_COMPONENT: "bridge"})] == ["a-2"]
    assert inf.list("other", {naming.L_INSTANCE: "a"}) == []
    # A relabelled object moves in the index.
    moved = obj("ConfigMap", "a-1", "2", instance="b")
    inf.apply("MODIFIED", moved)
    assert [o["metadata"]["name"] for o in inf.list("ns", {naming.L_INSTANCE: "b"})] == ["a-1", "b-1"]
    got = inf.list("ns", {naming.L_INSTANCE: "b"})[0]
    got["metadata"]["name"] = "changed"  # a fresh copy: the cache is not changed through it
    assert inf.get("ns", "a-1") is not None


class Refusing:
    """A source whose LIST fails as the API server answers for a kind with no CRD (404) or one RBAC forbids (403)."""

    def __init__(self, error: type[ApiError]):
        self.error, self.lists = error, 0

    async def list_page(self, *args: Any, **kwargs: Any) -> Any:
        self.lists += 1
        raise self.error(404 if self.error is NotFound else 403, self.error.__name__, "refused")


async def test_an_absent_kind_is_listed_again_only_when_a_write_shows_it_exists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Forbidden kinds are tried again on a timer (RBAC may be granted); absent ones are not (idle means Lease only).
    monkeypatch.setattr(cache, "RETRY_FORBIDDEN", 0.01)
    absent, forbidden = Refusing(NotFound), Refusing(Forbidden)
    informers = [Informer(src, "monitoring.coreos.com/v1", "ServiceMonitor", "ns") for src in (absent, forbidden)]
    for inf in informers:
        inf.start()
    try:
        for _ in range(100):  # 0.5 s: forbidden retries dozens of times meanwhile
            await asyncio.sleep(0.005)
        assert [inf.state for inf in informers] == ["absent", "forbidden"]
        assert absent.lists == 1 and forbidden.lists > 3, (absent.lists, forbidden.lists)
        informers[0].retry()  # what Cache.observe does when a write of the kind succeeded
        for _ in range(20):
            await asyncio.sleep(0.005)
        assert absent.lists == 2
    finally:
        for inf in informers:
            await inf.stop()

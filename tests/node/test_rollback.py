"""Health-gated rollouts on real failures: the kubelet's own CrashLoopBackOff, and readiness that never comes. The old
pod keeps serving throughout: a pod requests /health through the Service every 0.5 s and the Service's ready
endpoints are sampled from the API; neither ever sees zero."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.harness.cluster import wait_for
from tests.integration.operator.conftest import condition

from .conftest import Bridge, Kubectl, RealNode, Sampler, node_namespace, node_operator

ROLLOUT = {"crashLoopRestarts": 2, "progressDeadlineSeconds": 45}


@pytest.fixture(scope="module")
def bridge(real_node: RealNode, crd: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with node_namespace(real_node.cluster, "rollback") as ns:
        log = tmp_path_factory.mktemp("rollback") / "operator.log"
        with node_operator(real_node, [ns], log):
            b = Bridge(Kubectl(real_node.cluster, ns), "roll")
            b.apply({"rollout": ROLLOUT})
            b.wait_ready()
            yield b


def rolled_back(b: Bridge, timeout: float) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = b.obj()
        c = condition(obj, "RolledBack")
        return (
            obj
            if c and c["status"] == "True" and c.get("observedGeneration") == obj["metadata"]["generation"]
            else None
        )

    try:
        return wait_for(check, timeout=timeout, message="RolledBack")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{b.describe()}") from None


def only_good_pods(b: Bridge, good_image: str) -> bool:
    return all(p["spec"]["containers"][0]["image"] == good_image for p in b.pods())


def bad_pods(b: Bridge, bad_url: str) -> list[dict[str, Any]]:
    return [p for p in b.pods() if any(e.get("value") == bad_url for e in p["spec"]["containers"][0].get("env", []))]


def assert_served_throughout(sampler: Sampler) -> None:
    results = sampler.results()
    assert results and set(results) == {"ok"}, [line for line in sampler.lines() if not line.startswith("ok")][:10]
    assert sampler.ready_counts and min(sampler.ready_counts) >= 1, sampler.ready_counts


def test_a_process_that_exits_at_start_is_rolled_back(bridge: Bridge, real_node: RealNode) -> None:
    good = bridge.obj()["status"]["revisions"]["lastGood"]
    good_image = bridge.pod()["spec"]["containers"][0]["image"]
    with Sampler(bridge, real_node.refs["bridge"]) as sampler:
        bridge.apply({"rollout": ROLLOUT, "image": real_node.refs["exits"]})
        # The kubelet's own back-off: the new pod's container exits and is restarted with growing delays.
        crashing = wait_for(
            lambda: next(
                (
                    p
                    for p in bridge.pods()
                    if (p["status"].get("containerStatuses") or [{}])[0]
                    .get("state", {})
                    .get("waiting", {})
                    .get("reason")
                    == "CrashLoopBackOff"
                ),
                None,
            ),
            timeout=120,
            message="a pod of the new revision in CrashLoopBackOff",
        )
        last = crashing["status"]["containerStatuses"][0]["lastState"]["terminated"]
        assert last["exitCode"] == 1, last
        obj = rolled_back(bridge, timeout=180)
        wait_for(lambda: only_good_pods(bridge, good_image), timeout=120, message="only pods of the old revision")
        wait_for(lambda: bridge.pods(ready_only=True), timeout=60, message="a ready pod")
    assert_served_throughout(sampler)
    assert "CrashLoopBackOff" in condition(obj, "RolledBack")["message"]
    revs = obj["status"]["revisions"]
    assert revs["serving"] == revs["lastGood"] == good != revs["desired"]
    assert bridge.obj()["spec"]["image"] == real_node.refs["exits"]  # the spec is left as written


def test_a_revision_that_never_gets_ready_is_rolled_back_at_the_deadline(bridge: Bridge, real_node: RealNode) -> None:
    """A wrong database address (a port nothing listens on): the new pod starts, keeps waiting for PostgreSQL, and
    never passes its probes. (A wrong password makes the bridge exit at once: a crash loop, as above.)"""
    bridge.apply({"rollout": ROLLOUT})
    bridge.wait_ready()
    good = bridge.obj()["status"]["revisions"]["lastGood"]
    good_image = bridge.pod()["spec"]["containers"][0]["image"]
    url = urlsplit(bridge.secret(f"{bridge.name}-postgres-credentials", "url"))
    bad_url = url._replace(netloc=f"{url.username}:{url.password}@{url.hostname}:5433").geturl()
    with Sampler(bridge, real_node.refs["bridge"]) as sampler:
        env = [
            {"name": "LIGHTHOUSE_DATABASE_URL", "value": bad_url},
            {"name": "LIGHTHOUSE_DATABASE_CONNECT_TIMEOUT", "value": "600"},  # keep waiting, never exit
        ]
        bridge.apply({"rollout": ROLLOUT, "bridge": {"env": env}})
        new = wait_for(lambda: bad_pods(bridge, bad_url), timeout=60, message="a pod of the new revision")
        wait_for(
            lambda: "Waiting for PostgreSQL" in bridge.k("logs", "-n", bridge.ns, new[0]["metadata"]["name"]).stdout,
            timeout=60,
            message="the new pod retrying PostgreSQL",
        )
        obj = rolled_back(bridge, timeout=ROLLOUT["progressDeadlineSeconds"] + 120)
        wait_for(
            lambda: only_good_pods(bridge, good_image) and not bad_pods(bridge, bad_url),
            timeout=120,
            message="the new revision's pods gone",
        )
    assert_served_throughout(sampler)
    message = condition(obj, "RolledBack")["message"]
    assert "deadline" in message.lower() or "ProgressDeadlineExceeded" in message, message
    assert obj["status"]["revisions"]["serving"] == good

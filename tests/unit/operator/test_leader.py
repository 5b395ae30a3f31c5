"""Lease leader election against the in-memory fake (optimistic writes on resourceVersion, watches): at most one
leader, a release hands over at once, a dead leader's Lease is taken only after it expired, a leader that finds
someone else holding the Lease gives up. Timings are shortened; the real API server and processes are in
tests/integration/operator/test_leader_election.py."""

from __future__ import annotations

import asyncio

import pytest
from lighthouse_operator.leader import LeaseElector, Timings

from .fakes import FakeKube

pytestmark = pytest.mark.unit

FAST = Timings(duration=1.0, renew=0.1, deadline=0.6, retry=0.05, request=0.5)


def elector(kube: FakeKube, identity: str) -> LeaseElector:
    return LeaseElector(kube, "ns", "lighthouse-operator", identity, FAST)  # type: ignore[arg-type]


def holder(kube: FakeKube) -> str | None:
    lease = kube.objects.get(("Lease", "ns", "lighthouse-operator"))
    return (lease or {}).get("spec", {}).get("holderIdentity")


def test_timings_must_leave_the_leader_time_to_stop_before_a_standby_takes_over() -> None:
    with pytest.raises(ValueError, match="deadline"):
        Timings(duration=10, renew=3, deadline=12)
    with pytest.raises(ValueError):
        Timings(duration=10, renew=9, deadline=8)


async def test_one_leader_and_a_release_hands_over_at_once() -> None:
    kube = FakeKube()
    a, b = elector(kube, "a"), elector(kube, "b")
    lost: list[str] = []
    await a.acquire()
    a.keep(lost.append)
    assert a.leading and holder(kube) == "a"
    standby = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(FAST.duration * 1.5)  # a renews all along: b must not take over
    assert not standby.done() and not b.leading and holder(kube) == "a"
    await a.release()
    assert holder(kube) is None and not a.leading
    # Well before the Lease would have expired: the release, seen through the watch, is what b acts on.
    await asyncio.wait_for(standby, FAST.duration / 2)
    assert b.leading and holder(kube) == "b" and lost == []
    lease = kube.objects[("Lease", "ns", "lighthouse-operator")]
    assert lease["spec"]["leaseTransitions"] == 1
    await b.release()


async def test_a_dead_leaders_lease_is_taken_only_after_it_expired() -> None:
    kube = FakeKube()
    a, b = elector(kube, "a"), elector(kube, "b")
    await a.acquire()
    a.keep(lambda why: None)
    standby = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(0.2)
    # kill -9: the renewals stop, nothing is released.
    a._stop_watchdog.set()
    for task in a._tasks:
        task.cancel()
    killed = asyncio.get_running_loop().time()
    await asyncio.wait_for(standby, FAST.duration * 4)
    waited = asyncio.get_running_loop().time() - killed
    assert b.leading and holder(kube) == "b"
    # Not before the Lease's duration had passed since its last renewal (which was at most `renew` before the kill).
    assert waited >= FAST.duration - FAST.renew
    await b.release()


async def test_a_leader_that_finds_another_holder_gives_up() -> None:
    kube = FakeKube()
    a = elector(kube, "a")
    lost: list[str] = []
    await a.acquire()
    a.keep(lost.append)
    kube.edit("Lease", "ns", "lighthouse-operator", lambda o: o["spec"].update(holderIdentity="intruder"))
    for _ in range(100):
        if lost:
            break
        await asyncio.sleep(0.02)
    assert lost and "intruder" in lost[0] and not a.leading
    await a.release()
    assert holder(kube) == "intruder", "a release must never clear someone else's hold"

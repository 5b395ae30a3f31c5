"""Lease leader election against the in-memory fake (optimistic writes on resourceVersion, watches): at most one
leader, a release hands over at once, a dead leader's Lease is taken only after it expired, a leader that finds
someone else holding the Lease gives up. Timings are shortened; the real API server and processes are in
tests/integration/operator/test_leader_election.py."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from typing import Any

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
    renewed_by_a: list[float] = []
    patch = kube.patch

    async def recording_patch(*args: Any, **kwargs: Any) -> Any:
        out = await patch(*args, **kwargs)
        if holder(kube) == "a":
            renewed_by_a.append(time.monotonic())
        return out

    kube.patch = recording_patch  # type: ignore[method-assign]
    await a.acquire()
    a.keep(lambda why: None)
    standby = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(0.2)
    # kill -9: the renewals stop, nothing is released.
    a._stop_renewing()
    await asyncio.wait_for(standby, FAST.duration * 4)
    assert b.leading and holder(kube) == "b"
    # Not before the Lease's duration had passed since a's last renewal (measured from a's write, so the time b
    # took to see it only adds; a loaded machine's late renewals or late kill do not matter).
    assert renewed_by_a and time.monotonic() - renewed_by_a[-1] >= FAST.duration
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


def renew_time(kube: FakeKube) -> str:
    return str(kube.objects[("Lease", "ns", "lighthouse-operator")]["spec"]["renewTime"])


async def test_a_leader_keeps_renewing_while_its_event_loop_is_blocked() -> None:
    """A new leader's first LISTs and reconciles can hold the loop for seconds: the Lease must not lapse meanwhile
    (the renewals run on a thread of their own), and nobody else may take it."""
    kube = FakeKube()
    a, b = elector(kube, "a"), elector(kube, "b")
    lost: list[str] = []
    await a.acquire()
    a.keep(lost.append)
    standby = asyncio.ensure_future(b.acquire())
    await asyncio.sleep(0.05)
    before, seen = renew_time(kube), set()
    blocked_until = time.monotonic() + FAST.duration * 2  # well past the deadline and the Lease's duration
    while time.monotonic() < blocked_until:  # the loop is held: nothing on it runs, not even b
        time.sleep(FAST.renew / 2)  # noqa: ASYNC251 (blocking the loop is the point)
        seen.add(renew_time(kube))
    assert lost == [] and a.leading and holder(kube) == "a"
    seen.discard(before)
    assert len(seen) >= 4, f"renewTime advanced only to {sorted(seen)}"
    # b, running again, sees a Lease renewed all along: it stands by.
    await asyncio.sleep(FAST.duration / 2)
    assert not standby.done() and holder(kube) == "a"
    await a.release()
    await asyncio.wait_for(standby, FAST.duration)
    assert b.leading
    await b.release()


async def test_a_leader_that_cannot_renew_steps_down_even_while_its_loop_is_blocked() -> None:
    """The API unreachable: past the deadline a standby may lead, so `on_lost` comes from the renewal thread in
    time, whatever the main loop is doing."""
    kube = FakeKube()
    a = elector(kube, "a")
    lost: list[str] = []
    await a.acquire()
    a.keep(lost.append)

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise OSError("connection refused")

    kube.patch = unreachable  # type: ignore[method-assign]
    blocked_until = time.monotonic() + FAST.duration
    while time.monotonic() < blocked_until and not lost:
        time.sleep(0.01)  # noqa: ASYNC251 (blocking the loop is the point)
    # Within the Lease's duration (the loop above ends there), from the renewal thread: the main loop never ran.
    assert lost and "no renewal" in lost[0] and not a.leading
    await a.release()


async def test_renewals_keep_their_period_when_the_api_server_is_slow() -> None:
    """A renewal starts `renew` seconds after the last one started, not after its answer: at 1,000 bridges and load
    17 a renewal took 1.4 s, the next one timed out, and the retry came too late for the deadline (the leader exited
    32 s after it led). Here every renewal takes as long as the period: starts stay a period apart, not two."""
    timings = Timings(duration=3.0, renew=0.4, deadline=2.0, retry=0.1, request=1.0)
    kube = FakeKube()
    a = LeaseElector(kube, "ns", "lighthouse-operator", "a", timings)  # type: ignore[arg-type]
    await a.acquire()
    starts: list[float] = []
    fast_patch = kube.patch

    async def slow_patch(*args: Any, **kwargs: Any) -> Any:
        starts.append(time.monotonic())
        await asyncio.sleep(timings.renew)
        return await fast_patch(*args, **kwargs)

    kube.patch = slow_patch  # type: ignore[method-assign]
    lost: list[str] = []
    a.keep(lost.append)
    await asyncio.sleep(timings.renew * 7.5)
    await a.release()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert lost == [] and len(gaps) >= 4, (lost, gaps)
    # 0.4 s apart when counted from the starts, 0.8 s when counted from the answers: a loaded machine only adds.
    assert statistics.median(gaps) < timings.renew * 1.5, gaps

"""benchmarks/scale_bench.py counts the operator's writes besides its Lease from the API server's audit log: a count
that cannot go negative (it once printed -1 from subtracting the process's Lease attempts from its request counter)
and leaves out the killed leader's requests received before the kill."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks._scale_harness import writes_besides_lease

pytestmark = pytest.mark.unit


def event(verb: str, resource: str, received: str = "2026-12-05T12:30:00.000000Z") -> dict[str, Any]:
    return {"verb": verb, "objectRef": {"resource": resource}, "requestReceivedTimestamp": received}


def test_only_writes_other_than_the_lease_count() -> None:
    events = [event("patch", "leases"), event("update", "leases"), event("get", "deployments"),
              event("list", "pods"), event("watch", "secrets"), event("patch", "services"),
              event("create", "events"), event("patch", "services"), event("delete", "jobs")]  # fmt: skip
    assert writes_besides_lease(events) == {"create events": 1, "delete jobs": 1, "patch services": 2}
    assert writes_besides_lease([event("patch", "leases")] * 40 + [event("get", "leases")]) == {}


def test_since_leaves_out_requests_received_before_it() -> None:
    kill = 1796473800.5  # 2026-12-05T12:30:00.5Z
    events = [event("patch", "deployments", "2026-12-05T12:30:00.400000Z"),  # the old leader's, in flight
              event("patch", "deployments", "2026-12-05T12:30:09.000000Z"),
              event("create", "events", "2026-12-05T12:30:10.000000Z")]  # fmt: skip
    assert writes_besides_lease(events, since=kill) == {"create events": 1, "patch deployments": 1}
    assert writes_besides_lease(events) == {"create events": 1, "patch deployments": 2}

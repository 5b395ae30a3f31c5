"""What the alerts read: waiting responses stay out of the latency histogram, refusals are counted by reason.

Against the in-process bridge on real PostgreSQL and Redis, read back through GET /metrics (what Prometheus scrapes).
"""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.integration.agents.conftest import Bridge

ESCALATION = "/escalations/{escalation_id}"


async def scrape(bridge: Bridge) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await bridge.client().get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def count(samples: dict, histogram: str, route: str) -> float:
    return sum(
        v for (name, labels), v in samples.items() if name == f"{histogram}_count" and ("route", route) in labels
    )


def auth(samples: dict, status: str, reason: str) -> float:
    key = ("lighthouse_bridge_auth_failures_total", (("reason", reason), ("status", status)))
    return samples.get(key, 0.0)


async def test_escalation_long_polls_and_streams_are_not_in_the_latency_histogram(bridge: Bridge) -> None:
    builder = await bridge.as_role("builder-1", "builder")
    esc = (await builder.post("/validate", json={"tool_name": "Bash", "tool_input": {"command": "npm i x"}})).json()
    assert esc["decision"] == "escalated", esc
    before = await scrape(bridge)
    # A hook waiting on the escalation (answered after ~0.3 s) and one asking without waiting.
    waited = await builder.get(f"/escalations/{esc['escalation_id']}", params={"wait": 0.3})
    assert waited.status_code == 200 and waited.json()["decision"] == "escalated"
    assert (await builder.get(f"/escalations/{esc['escalation_id']}")).status_code == 200
    # A stream that closes after 0.2 idle seconds.
    async with builder.stream("GET", "/events/stream", params={"idle_timeout": 0.2}) as r:
        assert r.status_code == 200
        await r.aread()
    after = await scrape(bridge)

    short, long_ = "lighthouse_bridge_request_duration_seconds", "lighthouse_bridge_long_request_duration_seconds"
    assert count(after, short, ESCALATION) - count(before, short, ESCALATION) == 1  # the one without wait
    assert count(after, long_, ESCALATION) - count(before, long_, ESCALATION) == 1  # the long-poll
    assert count(after, short, "/events/stream") == count(before, short, "/events/stream")
    assert count(after, long_, "/events/stream") - count(before, long_, "/events/stream") == 1
    # Both still count as requests (the error-rate ratio needs every request).
    requests = sum(
        v
        for (name, labels), v in after.items()
        if name == "lighthouse_bridge_requests_total" and ("route", ESCALATION) in labels
    )
    assert requests >= 2


async def test_authentication_failures_are_counted_by_status_and_reason(bridge: Bridge) -> None:
    viewer = await bridge.as_role("viewer-1", "viewer")
    before = await scrape(bridge)
    assert (await bridge.client().get("/pending")).status_code == 401  # no token
    assert (await bridge.client("lh1.eyJmb28iOjF9.AAAA").get("/pending")).status_code == 401  # forged
    r = await viewer.post("/validate", json={"tool_name": "Bash", "tool_input": {"command": "ls"}})
    assert r.status_code == 403  # a viewer may not validate
    r = await viewer.post("/session/create", json={"agent_id": "x", "role": "builder"})
    assert r.status_code == 403
    await asyncio.sleep(0)
    after = await scrape(bridge)
    assert auth(after, "401", "missing_token") - auth(before, "401", "missing_token") == 1
    assert auth(after, "401", "bad_signature") - auth(before, "401", "bad_signature") == 1
    assert auth(after, "403", "role") - auth(before, "403", "role") >= 1
    # Every label value comes from a short fixed set (free text would explode the series count).
    reasons = {
        dict(labels)["reason"] for (name, labels), _ in after.items() if name == "lighthouse_bridge_auth_failures_total"
    }
    assert reasons <= {
        "missing_token",
        "wrong_token",
        "malformed",
        "bad_signature",
        "expired",
        "unknown_token",
        "revoked",
        "mismatch",
        "role",
        "mint",
        "enrolment_scope",
        "identity",
        "capability",
        "denied",
        "invalid",
    }, reasons


async def test_recent_responses_count_this_windows_errors(bridge: Bridge) -> None:
    # What the health check rates errors from (the last 5 minutes): the middleware records every response.
    # (Absolute counts: a difference between two scrapes could lose a bucket that left the window meanwhile.)
    assert (await bridge.client().get("/pending")).status_code == 401
    assert (await bridge.client().get("/health")).status_code == 200
    after = await scrape(bridge)
    responses = after[("lighthouse_bridge_recent_responses", ())]
    errors = after[("lighthouse_bridge_recent_errors", ())]
    assert responses >= 2 and 1 <= errors < responses, (responses, errors)

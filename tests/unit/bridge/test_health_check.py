"""Pure evaluation of `lighthouse-bridge health`: runbook thresholds, worst-status aggregation, no early stop."""

from __future__ import annotations

import json

import pytest
from lighthouse_bridge import metrics as bridge_metrics
from lighthouse_bridge.health_check import (
    CACHE_HITS,
    CACHE_REQUESTS,
    DEGRADED,
    ERRORS_TOTAL,
    HEALTHY,
    MEMORY_LIMIT,
    MEMORY_USAGE,
    RECENT_ERRORS,
    RECENT_RESPONSES,
    REQUESTS_TOTAL,
    UNHEALTHY,
    Fetched,
    check_cache,
    check_dependencies,
    check_error_rate,
    check_fuse,
    check_memory,
    evaluate,
    parse_metrics,
    render,
    worst,
)
from prometheus_client import generate_latest

_HEALTHY_DOCS = {
    "/health/detailed": Fetched({"status": "healthy", "version": "x", "components": {"projection": {"lag_events": 0}}}),
    "/health/dependencies": Fetched({"postgres": {"status": "connected"}, "redis": {"status": "connected"}}),
    "/metrics": Fetched(f"{MEMORY_USAGE} 10\n{MEMORY_LIMIT} 100\n"),
    "/status": Fetched({"mode": "normal", "components": {"fuse_mount": "unavailable"}}),
}


def test_metric_names_are_the_ones_the_bridge_exports() -> None:
    text = generate_latest(bridge_metrics.REGISTRY).decode()
    names = (MEMORY_USAGE, MEMORY_LIMIT, REQUESTS_TOTAL, ERRORS_TOTAL, RECENT_RESPONSES, RECENT_ERRORS, CACHE_HITS,
             CACHE_REQUESTS)  # fmt: skip
    for name in names:
        assert f"# HELP {name} " in text, name


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (69, HEALTHY),
        (70, HEALTHY),
        (85, HEALTHY),
        (86, DEGRADED),
        (95, DEGRADED),
        (96, UNHEALTHY),
    ],
)
def test_memory_thresholds(usage: int, expected: str) -> None:
    assert check_memory({MEMORY_USAGE: usage, MEMORY_LIMIT: 100}).status == expected


def test_memory_without_limit_is_not_evaluated() -> None:
    result = check_memory({MEMORY_USAGE: 10**12})
    assert result.status == HEALTHY and "not evaluated" in result.detail


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (0, HEALTHY),
        (10, HEALTHY),
        (11, DEGRADED),
        (50, DEGRADED),
        (51, UNHEALTHY),
    ],
)
def test_error_rate_thresholds(errors: int, expected: str) -> None:
    assert check_error_rate({REQUESTS_TOTAL: 1000, ERRORS_TOTAL: errors}).status == expected


def test_error_rate_without_requests() -> None:
    assert check_error_rate({ERRORS_TOTAL: 3}).status == HEALTHY


def test_error_rate_over_the_last_minutes_when_exported() -> None:
    # An outage's 503s long ago (lifetime 200/1000) do not count once the last 5 minutes are clean.
    lifetime = {REQUESTS_TOTAL: 1000, ERRORS_TOTAL: 200}
    recent = check_error_rate({**lifetime, RECENT_RESPONSES: 300, RECENT_ERRORS: 0})
    assert recent.status == HEALTHY and recent.detail == "0.00% (0/300 responses >= 400 in the last 5 minutes)"
    assert check_error_rate({**lifetime, RECENT_RESPONSES: 100, RECENT_ERRORS: 6}).status == UNHEALTHY
    assert check_error_rate({**lifetime, RECENT_RESPONSES: 0}).detail == "no requests in the last 5 minutes"
    older = check_error_rate(lifetime)  # a bridge without the recent gauges
    assert older.status == UNHEALTHY and older.detail.endswith("since start)")


def test_recent_responses_forget_what_left_the_window() -> None:
    now = [1000.0]
    recent = bridge_metrics.RecentResponses(window=300, step=10, clock=lambda: now[0])
    for _ in range(5):
        recent.record(error=True)
    now[0] += 150
    recent.record(error=False)
    assert recent.totals() == (6, 5)
    now[0] += 160  # the errors' bucket is now older than 300 s; the good response's is not
    assert recent.totals() == (1, 0)
    now[0] += 3600
    recent.record(error=False)
    assert recent.totals() == (1, 0) and len(recent._buckets) == 1  # bounded without a scrape


@pytest.mark.parametrize(
    ("hits", "expected"),
    [
        (60, HEALTHY),
        (59, DEGRADED),
        (40, DEGRADED),
        (39, UNHEALTHY),
        (0, UNHEALTHY),
    ],
)
def test_cache_thresholds(hits: int, expected: str) -> None:
    assert check_cache({CACHE_REQUESTS: 100, CACHE_HITS: hits}).status == expected


def test_cache_needs_100_lookups() -> None:
    result = check_cache({CACHE_REQUESTS: 99, CACHE_HITS: 0})
    assert result.status == HEALTHY and "not evaluated" in result.detail


def test_parse_metrics_sums_label_sets() -> None:
    text = f'# TYPE {REQUESTS_TOTAL} counter\n{REQUESTS_TOTAL}{{route="/a"}} 3\n{REQUESTS_TOTAL}{{route="/b"}} 4\n'
    assert parse_metrics(text)[REQUESTS_TOTAL] == 7


def test_dependencies() -> None:
    results = check_dependencies(
        Fetched({"postgres": {"status": "connected"}, "redis": {"status": "disconnected", "error": "refused"}})
    )
    assert [(r.name, r.status) for r in results] == [("postgres", HEALTHY), ("redis", DEGRADED)]
    results = check_dependencies(Fetched({"postgres": {"status": "disconnected"}, "redis": {"status": "connected"}}))
    assert [r.status for r in results] == [UNHEALTHY, HEALTHY]


def test_fuse_from_status_and_readyz() -> None:
    assert check_fuse(Fetched({"mode": "normal", "components": {"fuse_mount": "operational"}})).status == HEALTHY
    assert check_fuse(Fetched({"mode": "normal", "components": {"fuse_mount": "unavailable"}})).status == HEALTHY
    assert (
        check_fuse(Fetched({"mode": "degraded_no_fuse", "components": {"fuse_mount": "unavailable"}})).status
        == DEGRADED
    )
    failed = Fetched(error="HTTP 500")
    assert check_fuse(failed, Fetched({"checks": {"fuse": {"status": "not_mounted"}}})).status == DEGRADED
    assert check_fuse(failed, Fetched({"checks": {"fuse": {"status": "disabled"}}})).status == HEALTHY
    assert check_fuse(failed, None).status == UNHEALTHY


def test_worst() -> None:
    assert worst([]) == HEALTHY
    assert worst([HEALTHY, DEGRADED, HEALTHY]) == DEGRADED
    assert worst([DEGRADED, UNHEALTHY, HEALTHY]) == UNHEALTHY
    assert worst(["bogus"]) == UNHEALTHY


def test_all_healthy() -> None:
    status, results = evaluate(_HEALTHY_DOCS)
    assert status == HEALTHY
    assert [r.name for r in results] == [
        "bridge",
        "postgres",
        "redis",
        "memory",
        "error_rate",
        "cache_hit_rate",
        "fuse",
    ]


def test_keeps_checking_after_a_failure() -> None:
    docs = {
        **_HEALTHY_DOCS,
        "/health/detailed": Fetched(error="ConnectError"),
        "/metrics": Fetched(f"{MEMORY_USAGE} 90\n{MEMORY_LIMIT} 100\n{REQUESTS_TOTAL} 100\n{ERRORS_TOTAL} 2\n"),
    }
    status, results = evaluate(docs)
    by_name = {r.name: r.status for r in results}
    assert status == UNHEALTHY
    assert by_name == {
        "bridge": UNHEALTHY,
        "postgres": HEALTHY,
        "redis": HEALTHY,
        "memory": DEGRADED,
        "error_rate": DEGRADED,
        "cache_hit_rate": HEALTHY,
        "fuse": HEALTHY,
    }


def test_unreachable_reports_every_check_unhealthy() -> None:
    down = Fetched(error="ConnectError: refused")
    status, results = evaluate(
        {p: down for p in ("/health/detailed", "/health/dependencies", "/metrics", "/status", "/readyz")}
    )
    assert status == UNHEALTHY
    assert len(results) == 7 and all(r.status == UNHEALTHY for r in results)


def test_render_modes() -> None:
    status, results = evaluate(_HEALTHY_DOCS)
    doc = json.loads(render(status, results, "json"))
    assert doc["status"] == HEALTHY
    assert all(set(c) == {"name", "status", "detail"} for c in doc["checks"])
    assert len(render(status, results, "verbose").splitlines()) == len(results) + 1
    assert render(status, results, "summary").count("\n") == 0

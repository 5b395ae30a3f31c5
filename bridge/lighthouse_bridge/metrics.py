"""Prometheus metrics with the runbook's lighthouse_bridge_* names.

Metrics live in one module-level registry (several apps in one test process share it); memory is read at scrape
time from the process and the cgroup limit.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "lighthouse_bridge_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY
)
# Request/response routes only: the runbook's P95 latency alert reads this histogram. Responses that wait on purpose
# (escalation long-polls, /events/stream) would drag its P95 to the top bucket, so they go to LONG_DURATION.
DURATION = Histogram(
    "lighthouse_bridge_request_duration_seconds",
    "HTTP request duration of request/response routes",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LONG_DURATION = Histogram(
    "lighthouse_bridge_long_request_duration_seconds",
    "Duration of long-polls and streams (waiting is their job)",
    ["method", "route"],
    registry=REGISTRY,
    buckets=(0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0),
)
ERRORS = Counter(
    "lighthouse_bridge_errors_total", "HTTP responses with status >= 400", ["route", "status"], registry=REGISTRY
)
STORE_FAILURES = Counter(
    "lighthouse_bridge_event_store_failures_total",
    "Event store operations that failed",
    ["operation"],
    registry=REGISTRY,
)
EVENTS_APPENDED = Counter(
    "lighthouse_bridge_events_appended_total", "Events appended by this replica", registry=REGISTRY
)
CACHE_HITS = Counter("lighthouse_bridge_speed_layer_cache_hits_total", "Redis cache hits", ["kind"], registry=REGISTRY)
CACHE_REQUESTS = Counter(
    "lighthouse_bridge_speed_layer_cache_requests_total", "Redis cache lookups", ["kind"], registry=REGISTRY
)
CACHE_ERRORS = Counter("lighthouse_bridge_cache_errors_total", "Redis calls that failed", registry=REGISTRY)
REDIS_UP = Gauge("lighthouse_bridge_redis_connection_status", "1 when Redis answers", registry=REGISTRY)
POSTGRES_UP = Gauge("lighthouse_bridge_postgres_connection_status", "1 when PostgreSQL answers", registry=REGISTRY)
FUSE_MOUNTED = Gauge(
    "lighthouse_bridge_fuse_mount_status", "1 when the FUSE status file says mounted", registry=REGISTRY
)
ACTIVE_CONNECTIONS = Gauge("lighthouse_bridge_active_connections", "HTTP requests in flight", registry=REGISTRY)
STREAM_CLIENTS = Gauge("lighthouse_bridge_stream_clients", "Open /events/stream responses", registry=REGISTRY)
PROJECTION_POSITION = Gauge(
    "lighthouse_bridge_projection_position", "Last position applied to this replica's tree", registry=REGISTRY
)
STORE_HEAD = Gauge("lighthouse_bridge_store_head_position", "Highest committed position known", registry=REGISTRY)
PROJECTION_LAG_EVENTS = Gauge(
    "lighthouse_bridge_projection_lag_events", "Head minus applied position", registry=REGISTRY
)
PROJECTION_LAG_SECONDS = Gauge(
    "lighthouse_bridge_projection_lag_seconds",
    "Seconds since the oldest unapplied position became known",
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "lighthouse_bridge_auth_failures_total",
    "Refused requests: 401 (credentials) and 403 (not allowed), by a short fixed reason",
    ["status", "reason"],
    registry=REGISTRY,
)

# Routes that wait on purpose: always (a stream), or when the named query parameter asks for a wait > 0.
# The Claude Code hook may wait for an escalation; /mcp carries SSE streams and tools that long-poll.
LONG_ROUTES: dict[str, str | None] = {
    "/events/stream": None,
    "/escalations/{escalation_id}": "wait",
    "/elicitation/{elicitation_id}": "wait",
    "/hooks/claude-code": None,
    "/mcp": None,
}


def is_long_request(route: str, query_string: bytes) -> bool:
    """Whether a request belongs in LONG_DURATION rather than DURATION."""
    if route not in LONG_ROUTES:
        return False
    param = LONG_ROUTES[route]
    if param is None:
        return True
    for value in parse_qs(query_string.decode("latin-1")).get(param, []):
        try:
            if float(value) > 0:
                return True
        except ValueError:
            pass  # the route answers 422; a quick request
    return False


def _cgroup_limit() -> float | None:
    for p in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            raw = p.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:
            return float(raw)
    return None


class _MemoryCollector(Collector):
    def __init__(self) -> None:
        self._proc = psutil.Process(os.getpid())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "lighthouse_bridge_memory_usage_bytes",
            "Resident memory of this process",
            value=float(self._proc.memory_info().rss),
        )
        limit = _cgroup_limit() or float(psutil.virtual_memory().total)
        yield GaugeMetricFamily(
            "lighthouse_bridge_memory_limit_bytes", "cgroup memory limit (host RAM if none)", value=limit
        )


REGISTRY.register(_MemoryCollector())


class RecentResponses(Collector):
    """Responses and error responses (status >= 400) in the last `window` seconds, counted in buckets of `step`
    seconds. The health check rates errors from these: the lifetime counters would keep an outage's 503s in the
    rate long after it ended (the alerts use rate() over the counters instead)."""

    def __init__(self, window: float = 300.0, step: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.window, self.step, self.clock = window, step, clock
        self._buckets: dict[int, list[int]] = {}  # bucket index -> [responses, errors]

    def record(self, error: bool) -> None:
        index = int(self.clock() // self.step)
        counts = self._buckets.get(index)
        if counts is None:
            self._prune()  # a new bucket: drop the expired ones (bounded without any scrape)
            counts = self._buckets[index] = [0, 0]
        counts[0] += 1
        counts[1] += error

    def _prune(self) -> None:
        oldest = int((self.clock() - self.window) // self.step) + 1
        for old in [i for i in self._buckets if i < oldest]:
            del self._buckets[old]

    def totals(self) -> tuple[int, int]:
        """(responses, errors) in the window."""
        self._prune()
        return sum(c[0] for c in self._buckets.values()), sum(c[1] for c in self._buckets.values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        responses, errors = self.totals()
        minutes = f"{self.window / 60:g}"
        yield GaugeMetricFamily(
            "lighthouse_bridge_recent_responses", f"HTTP responses in the last {minutes} minutes", value=responses
        )
        yield GaugeMetricFamily(
            "lighthouse_bridge_recent_errors",
            f"HTTP responses with status >= 400 in the last {minutes} minutes",
            value=errors,
        )


RECENT = RecentResponses()
REGISTRY.register(RECENT)

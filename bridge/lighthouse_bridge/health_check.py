"""`lighthouse-bridge health`: the upstream runbook's health check against a running bridge.

Pure evaluation functions turn parsed responses into per-check results; a small httpx runner fetches them. Every
check runs and is reported even after one fails; the exit code is the worst status: 0 healthy, 1 degraded,
2 unhealthy (an unreachable bridge is unhealthy).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from lighthouse_bridge.core.config import DEFAULT_BRIDGE_URL, ClientSettings, load

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
_RANK = {HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
EXIT_CODES = dict(_RANK)

# Exported names from lighthouse_bridge.metrics (the runbook's names).
MEMORY_USAGE = "lighthouse_bridge_memory_usage_bytes"
MEMORY_LIMIT = "lighthouse_bridge_memory_limit_bytes"
REQUESTS_TOTAL = "lighthouse_bridge_requests_total"
ERRORS_TOTAL = "lighthouse_bridge_errors_total"
RECENT_RESPONSES = "lighthouse_bridge_recent_responses"  # the last 5 minutes (metrics.RecentResponses)
RECENT_ERRORS = "lighthouse_bridge_recent_errors"
CACHE_HITS = "lighthouse_bridge_speed_layer_cache_hits_total"
CACHE_REQUESTS = "lighthouse_bridge_speed_layer_cache_requests_total"

# Runbook thresholds.
MEMORY_NORMAL, MEMORY_DEGRADED, MEMORY_UNHEALTHY = 0.70, 0.85, 0.95
ERROR_DEGRADED, ERROR_UNHEALTHY = 0.01, 0.05
CACHE_DEGRADED, CACHE_UNHEALTHY, CACHE_MIN_REQUESTS = 0.60, 0.40, 100


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str


@dataclass(frozen=True)
class Fetched:
    """One HTTP response: parsed body (JSON document or metrics text) or the reason there is none."""

    body: Any = None
    error: str | None = None


def worst(statuses: Iterable[str]) -> str:
    result = HEALTHY
    for s in statuses:
        if _RANK.get(s, 2) > _RANK[result]:
            result = s if s in _RANK else UNHEALTHY
    return result


def check_detailed(resp: Fetched) -> CheckResult:
    """/health/detailed: the bridge's own verdict from its background probes."""
    if resp.error is not None:
        return CheckResult("bridge", UNHEALTHY, f"/health/detailed: {resp.error}")
    doc = resp.body if isinstance(resp.body, dict) else {}
    status = doc.get("status")
    if status not in _RANK:
        return CheckResult("bridge", UNHEALTHY, f"/health/detailed: unexpected status {status!r}")
    lag = doc.get("components", {}).get("projection", {}).get("lag_events")
    return CheckResult("bridge", status, f"status={status} version={doc.get('version')} lag_events={lag}")


def check_dependencies(resp: Fetched) -> list[CheckResult]:
    """/health/dependencies: PostgreSQL down is unhealthy (no event store); Redis down is degraded (speed layer)."""
    results = []
    for name, down in (("postgres", UNHEALTHY), ("redis", DEGRADED)):
        if resp.error is not None:
            results.append(CheckResult(name, UNHEALTHY, f"/health/dependencies: {resp.error}"))
            continue
        dep = resp.body.get(name) if isinstance(resp.body, dict) else None
        status = dep.get("status") if isinstance(dep, dict) else None
        if status == "connected" and isinstance(dep, dict):
            results.append(CheckResult(name, HEALTHY, f"connected latency_ms={dep.get('latency_ms')}"))
        else:
            error = dep.get("error") if isinstance(dep, dict) else None
            results.append(CheckResult(name, down, f"status={status} error={error}"))
    return results


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: sum over all label sets}."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return totals


def check_memory(metrics: dict[str, float]) -> CheckResult:
    usage, limit = metrics.get(MEMORY_USAGE), metrics.get(MEMORY_LIMIT)
    if usage is None or not limit:
        return CheckResult("memory", HEALTHY, "no memory limit metric; not evaluated")
    ratio = usage / limit
    if ratio > MEMORY_UNHEALTHY:
        status = UNHEALTHY
    elif ratio > MEMORY_DEGRADED:
        status = DEGRADED
    else:
        status = HEALTHY
    note = " (above the 70% normal range)" if status == HEALTHY and ratio >= MEMORY_NORMAL else ""
    return CheckResult("memory", status, f"{ratio:.1%} of limit ({int(usage)}/{int(limit)} bytes){note}")


def check_error_rate(metrics: dict[str, float]) -> CheckResult:
    """Over the last 5 minutes where the bridge exports it, so an outage that ended stops counting; since the pod
    started otherwise (an older bridge)."""
    if RECENT_RESPONSES in metrics:
        requests, errors, span = metrics[RECENT_RESPONSES], metrics.get(RECENT_ERRORS, 0.0), "in the last 5 minutes"
    else:
        requests, errors, span = metrics.get(REQUESTS_TOTAL, 0.0), metrics.get(ERRORS_TOTAL, 0.0), "since start"
    if requests <= 0:
        return CheckResult("error_rate", HEALTHY, f"no requests {span}")
    rate = errors / requests
    status = UNHEALTHY if rate > ERROR_UNHEALTHY else DEGRADED if rate > ERROR_DEGRADED else HEALTHY
    return CheckResult("error_rate", status, f"{rate:.2%} ({int(errors)}/{int(requests)} responses >= 400 {span})")


def check_cache(metrics: dict[str, float]) -> CheckResult:
    lookups, hits = metrics.get(CACHE_REQUESTS, 0.0), metrics.get(CACHE_HITS, 0.0)
    if lookups < CACHE_MIN_REQUESTS:
        return CheckResult("cache_hit_rate", HEALTHY, f"{int(lookups)} lookups (< {CACHE_MIN_REQUESTS}); not evaluated")
    rate = hits / lookups
    status = UNHEALTHY if rate < CACHE_UNHEALTHY else DEGRADED if rate < CACHE_DEGRADED else HEALTHY
    return CheckResult("cache_hit_rate", status, f"{rate:.1%} ({int(hits)}/{int(lookups)} lookups)")


def check_metrics(resp: Fetched) -> list[CheckResult]:
    names = ("memory", "error_rate", "cache_hit_rate")
    if resp.error is not None:
        return [CheckResult(n, UNHEALTHY, f"/metrics: {resp.error}") for n in names]
    try:
        metrics = parse_metrics(str(resp.body))
    except ValueError as exc:
        return [CheckResult(n, UNHEALTHY, f"/metrics: unparsable: {exc}") for n in names]
    return [check_memory(metrics), check_error_rate(metrics), check_cache(metrics)]


def check_fuse(status: Fetched, readyz: Fetched | None = None) -> CheckResult:
    """FUSE mount from /status (mode normal + fuse_mount unavailable = disabled), else /readyz checks.fuse."""
    if status.error is None and isinstance(status.body, dict):
        mount = status.body.get("components", {}).get("fuse_mount")
        mode = status.body.get("mode")
        if mount == "operational":
            return CheckResult("fuse", HEALTHY, "mounted")
        if mode == "normal":
            return CheckResult("fuse", HEALTHY, "fuse mode disabled")
        return CheckResult("fuse", DEGRADED, f"fuse_mount={mount} mode={mode}")
    if readyz is not None and readyz.error is None and isinstance(readyz.body, dict):
        fuse = readyz.body.get("checks", {}).get("fuse", {})
        state = fuse.get("status") if isinstance(fuse, dict) else None
        if state == "mounted":
            return CheckResult("fuse", HEALTHY, "mounted")
        if state == "disabled":
            return CheckResult("fuse", HEALTHY, "fuse mode disabled")
        return CheckResult("fuse", DEGRADED, f"status={state} error={fuse.get('error')}")
    reason = status.error or "no status document"
    if readyz is not None and readyz.error:
        reason += f"; /readyz: {readyz.error}"
    return CheckResult("fuse", UNHEALTHY, f"/status: {reason}")


def evaluate(responses: dict[str, Fetched]) -> tuple[str, list[CheckResult]]:
    """All checks over the fetched endpoints (keys are paths); returns (overall status, results in order)."""
    missing = Fetched(error="not fetched")
    results = [check_detailed(responses.get("/health/detailed", missing))]
    results += check_dependencies(responses.get("/health/dependencies", missing))
    results += check_metrics(responses.get("/metrics", missing))
    results.append(check_fuse(responses.get("/status", missing), responses.get("/readyz")))
    return worst(r.status for r in results), results


# ---------------------------------------------------------------- runner
def fetch_all(url: str, token: str | None, timeout: float) -> dict[str, Fetched]:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out: dict[str, Fetched] = {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout) as client:

        def get(path: str, accept_503: bool = False) -> Fetched:
            try:
                resp = client.get(path)
            except httpx.HTTPError as exc:
                return Fetched(error=f"{type(exc).__name__}: {exc}")
            if resp.status_code != 200 and not (accept_503 and resp.status_code == 503):
                return Fetched(error=f"HTTP {resp.status_code}: {resp.text[:200]}")
            if path == "/metrics":
                return Fetched(body=resp.text)
            try:
                return Fetched(body=resp.json())
            except ValueError:
                return Fetched(error=f"HTTP {resp.status_code}: body is not JSON")

        for path in ("/health/detailed", "/health/dependencies", "/metrics", "/status"):
            out[path] = get(path)
        if out["/status"].error is not None:
            out["/readyz"] = get("/readyz", accept_503=True)  # 503 still carries the per-check document
    return out


def render(status: str, results: list[CheckResult], mode: str) -> str:
    if mode == "json":
        return json.dumps({"status": status, "checks": [asdict(r) for r in results]}, indent=2)
    if mode == "verbose":
        lines = [f"{r.status:<9} {r.name}: {r.detail}" for r in results]
        return "\n".join([*lines, f"overall: {status}"])
    bad = [f"{r.name} ({r.status})" for r in results if r.status != HEALTHY]
    return f"{status}: " + (", ".join(bad) if bad else f"all {len(results)} checks passed")


def cmd_health(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        print("lighthouse-bridge health: --timeout must be > 0", file=sys.stderr)
        return 2
    settings = load(ClientSettings, prog="lighthouse-bridge health")
    status, results = evaluate(fetch_all(args.url or settings.url, args.token or settings.token_or_admin, args.timeout))
    print(render(status, results, "json" if args.json else "verbose" if args.verbose else "summary"))
    return EXIT_CODES[status]


def add_subcommands(sub: Any) -> None:
    p = sub.add_parser("health", help="check a running bridge (exit 0 healthy, 1 degraded, 2 unhealthy)")
    p.add_argument(
        "--url",
        default=None,
        help=f"bridge URL (env LIGHTHOUSE_BRIDGE_URL, default {DEFAULT_BRIDGE_URL} on LIGHTHOUSE_PORT)",
    )
    p.add_argument("--token", default=None, help="bearer token (env LIGHTHOUSE_TOKEN, then LIGHTHOUSE_ADMIN_TOKEN)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--verbose", action="store_true", help="one line per check")
    out.add_argument("--json", action="store_true", help='{"status": ..., "checks": [{"name","status","detail"}]}')
    p.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds (default 5)")
    p.set_defaults(func=cmd_health)

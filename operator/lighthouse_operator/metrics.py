"""Operator metrics (kopf has none built in): reconciles by outcome, their durations, writes, API requests, backups."""

from __future__ import annotations

import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "lighthouse_operator_reconciles_total", "Reconciles by trigger and outcome", ["trigger", "outcome"]
)
RECONCILE_SECONDS = Histogram(
    "lighthouse_operator_reconcile_duration_seconds",
    "Reconcile duration by outcome",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS = Counter("lighthouse_operator_reconcile_errors_total", "Failed reconciles by error type", ["error"])
CHILD_WRITES = Counter(
    "lighthouse_operator_child_writes_total",
    "Writes by the applier to objects the operator owns (children, Jobs, ControllerRevisions, Events), by kind and "
    "action (create, update, delete)",
    ["kind", "action"],
)
STATUS_WRITES = Counter("lighthouse_operator_status_writes_total", "Status patches of LighthouseBridges")
API_REQUESTS = Counter(
    "lighthouse_operator_api_requests_total", "Requests to the API server by verb and code", ["verb", "code"]
)
CACHE_OBJECTS = Gauge("lighthouse_operator_cache_objects", "Objects held by the watch cache, by kind", ["kind"])
CACHE_READS = Counter(
    "lighthouse_operator_cache_reads_total",
    "Reads by the reconcile, by kind and where they were served from: cache (a watch), remembered (a recent GET of an "
    "object the operator does not label), api (a request)",
    ["kind", "source"],
)
WATCH_RESTARTS = Counter(
    "lighthouse_operator_watch_restarts_total",
    "Watches of the cache that ended, by kind and reason: ended (server timeout, resumed), expired (410 Gone, "
    "relisted), error (connection or server error, resumed after a backoff)",
    ["kind", "reason"],
)
LEADER = Gauge("lighthouse_operator_leader", "1 while this process holds the leader Lease (and reconciles)")
LEASE_WRITES = Counter(
    "lighthouse_operator_lease_writes_total",
    "Write requests to the leader Lease (create, acquire, renew: ok or failed; release)",
    ["result"],
)
QUEUE_DEPTH = Gauge("lighthouse_operator_queue_depth", "LighthouseBridges waiting for a reconcile")
MANAGED = Gauge("lighthouse_operator_managed_bridges", "LighthouseBridges seen by this operator")
ROLLBACKS = Counter(
    "lighthouse_operator_rollbacks_total",
    "Rollouts ended by the health gate, by component, action (rollback or freeze) and reason",
    ["component", "action", "reason"],
)
# Backups, per LighthouseBridge (series are removed when the bridge goes). Alert on BACKUP_MISSED == 1, or on
# time() - BACKUP_LAST_SUCCESS for a fixed threshold.
BACKUP_MISSED = Gauge(
    "lighthouse_operator_backup_missed",
    "1 when no backup succeeded within two schedule intervals (BackupSucceeded=False, reason BackupMissed)",
    ["namespace", "name"],
)
BACKUP_LAST_SUCCESS = Gauge(
    "lighthouse_operator_backup_last_success_timestamp_seconds",
    "Completion time of the newest successful backup (Unix seconds)",
    ["namespace", "name"],
)
BACKUP_MISSES = Counter(
    "lighthouse_operator_backup_misses_total", "Transitions into a missed backup schedule", ["namespace", "name"]
)
BACKUP_JOBS = Counter(
    "lighthouse_operator_backup_jobs_created_total",
    "Backup Jobs the operator created, by trigger (request: lighthouse.dev/backup-now, final: deletionPolicy Snapshot)",
    ["trigger"],
)


def record_backups(
    namespace: str,
    name: str,
    *,
    configured: bool,
    missed: bool,
    newly_missed: bool,
    last_success: datetime.datetime | None,
    requested: int,
) -> None:
    """One pass's backup judgement for one bridge."""
    if configured:
        BACKUP_MISSED.labels(namespace=namespace, name=name).set(1 if missed else 0)
    if last_success is not None:
        BACKUP_LAST_SUCCESS.labels(namespace=namespace, name=name).set(last_success.timestamp())
    if newly_missed:
        BACKUP_MISSES.labels(namespace=namespace, name=name).inc()
    if requested:
        BACKUP_JOBS.labels(trigger="request").inc(requested)


# Per LighthouseBridge, from the status the operator computes (what `kubectl get lhb` shows). The bridge-down alerts
# read these: they work without kube-state-metrics, and for pods that never answer a scrape.
BRIDGE_READY = Gauge(
    "lighthouse_operator_bridge_ready", "1 when the LighthouseBridge's Ready condition is True", ["namespace", "name"]
)
BRIDGE_READY_REPLICAS = Gauge(
    "lighthouse_operator_bridge_ready_replicas", "Ready bridge pods (status.readyReplicas)", ["namespace", "name"]
)
BRIDGE_DESIRED_REPLICAS = Gauge(
    "lighthouse_operator_bridge_desired_replicas", "Bridge pods asked for (status.replicas)", ["namespace", "name"]
)
# One series per phase, 1 for the current one (as kube-state-metrics does for pod phases).
PHASES = ["Progressing", "Ready", "Degraded", "Stalled", "RolledBack", "Frozen", "Paused", "Restoring", "Deleting"]
BRIDGE_PHASE = Gauge(
    "lighthouse_operator_bridge_phase",
    "1 for the LighthouseBridge's status.phase, 0 for the others",
    ["namespace", "name", "phase"],
)


def record_bridge(namespace: str, name: str, status: dict[str, Any]) -> None:
    """Set the per-bridge gauges from a status the operator computed (whether or not it had to be written)."""
    ready = next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None:
        return  # no roll-up yet: says nothing about the pods
    BRIDGE_READY.labels(namespace=namespace, name=name).set(1 if ready == "True" else 0)
    BRIDGE_READY_REPLICAS.labels(namespace=namespace, name=name).set(status.get("readyReplicas") or 0)
    BRIDGE_DESIRED_REPLICAS.labels(namespace=namespace, name=name).set(status.get("replicas") or 0)
    current = status.get("phase")
    if current and current not in PHASES:
        PHASES.append(current)  # a phase this list does not know yet still gets its series (and is zeroed later)
    for phase in PHASES:
        BRIDGE_PHASE.labels(namespace=namespace, name=name, phase=phase).set(1 if current == phase else 0)


def forget_bridge(namespace: str, name: str) -> None:
    """Drop a deleted bridge's series."""
    for family in (
        BACKUP_MISSED,
        BACKUP_LAST_SUCCESS,
        BACKUP_MISSES,
        BRIDGE_READY,
        BRIDGE_READY_REPLICAS,
        BRIDGE_DESIRED_REPLICAS,
    ):
        try:
            family.remove(namespace, name)
        except KeyError:
            pass
    for phase in PHASES:
        try:
            BRIDGE_PHASE.remove(namespace, name, phase)
        except KeyError:
            pass

"""Operator metrics (kopf has none built in): reconciles by outcome, their durations, writes, API requests, backups."""

from __future__ import annotations

import datetime

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


def forget_bridge(namespace: str, name: str) -> None:
    """Drop a deleted bridge's series."""
    for family in (BACKUP_MISSED, BACKUP_LAST_SUCCESS, BACKUP_MISSES):
        try:
            family.remove(namespace, name)
        except KeyError:
            pass

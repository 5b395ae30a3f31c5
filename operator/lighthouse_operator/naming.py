"""Names, labels and annotations of everything the operator creates or reads for one LighthouseBridge.

Every label and annotation key the operator writes or reads lives here (the Kubernetes ones included), so that a
rename happens in one place and nothing spells a key by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

FIELD_MANAGER = "lighthouse-operator"
MANAGED_BY = "lighthouse-operator"
PART_OF = "lighthouse"
APP_NAME = "lighthouse"

L_NAME = "app.kubernetes.io/name"
L_INSTANCE = "app.kubernetes.io/instance"
L_COMPONENT = "app.kubernetes.io/component"
L_PART_OF = "app.kubernetes.io/part-of"
L_MANAGED_BY = "app.kubernetes.io/managed-by"
L_RETAINED = "lighthouse.dev/retained"
# Backup Jobs: request (lighthouse.dev/backup-now) or final (deletionPolicy Snapshot); the CronJob's carry none.
L_BACKUP_TRIGGER = "lighthouse.dev/backup-trigger"
# ControllerRevisions. No app.kubernetes.io/component on them: a StatefulSet claims ControllerRevisions matching its
# selector (name, instance, component), and these must never look like the StatefulSet's own.
L_REVISION_OF = "lighthouse.dev/revision-of"
L_REVISION = "lighthouse.dev/revision"
# Set by Kubernetes controllers.
L_JOB_NAME = "batch.kubernetes.io/job-name"
L_CONTROLLER_REVISION_HASH = "controller-revision-hash"

A_HASH = "lighthouse.dev/applied-hash"
A_REVISION = "lighthouse.dev/revision"  # on pod templates: the revision they run (revision.py)
A_GENERATED = "lighthouse.dev/generated"
A_BACKUP_REQUEST = "lighthouse.dev/backup-request"  # on an on-demand backup Job: the backup-now value it serves
A_RESTORE_SPEC = "lighthouse.dev/restore-spec"  # on the restore Job: digest of its spec (a new spec needs a new Job)
# Set by users on the LighthouseBridge.
A_BACKUP_NOW = "lighthouse.dev/backup-now"  # any new value runs exactly one backup
A_RESTARTED_AT = "lighthouse.dev/restartedAt"  # rolls the pods (`kubectl annotate lhb/x ...=$(date -u +%FT%TZ)`)
# Set by others: `kubectl rollout restart` (in pod templates), the Deployment controller (on ReplicaSets).
A_KUBECTL_RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
A_DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"

FINALIZER = "lighthouse.dev/finalizer"

BRIDGE, REDIS, POSTGRES, BACKUP, RESTORE = "bridge", "redis", "postgres", "backup", "restore"

API_PORT = 8765
METRICS_PORT = 9090
REDIS_PORT = 6379
POSTGRES_PORT = 5432


def labels(instance: str, component: str) -> dict[str, str]:
    return {
        L_NAME: APP_NAME,
        L_INSTANCE: instance,
        L_COMPONENT: component,
        L_PART_OF: PART_OF,
        L_MANAGED_BY: MANAGED_BY,
    }


def selector(instance: str, component: str) -> dict[str, str]:
    """Immutable pod selector labels (a subset of labels(); never add to it: selectors cannot change)."""
    return {L_NAME: APP_NAME, L_INSTANCE: instance, L_COMPONENT: component}


def selector_string(instance: str, component: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(instance, component).items())


def instance_selector(instance: str, component: str | None = None) -> str:
    """Every child of one LighthouseBridge (of one component: e.g. its backup Jobs)."""
    out = f"{L_INSTANCE}={instance},{L_MANAGED_BY}={MANAGED_BY}"
    return f"{out},{L_COMPONENT}={component}" if component else out


def history_selector(instance: str, component: str) -> str:
    """The ControllerRevisions recording one workload's pod templates."""
    return f"{instance_selector(instance)},{L_REVISION_OF}={component}"


@dataclass(frozen=True)
class Names:
    instance: str

    @property
    def bridge(self) -> str:
        return f"{self.instance}-bridge"

    @property
    def bridge_metrics(self) -> str:
        return f"{self.instance}-bridge-metrics"

    @property
    def bridge_config(self) -> str:
        return f"{self.instance}-bridge-config"

    @property
    def redis(self) -> str:
        return f"{self.instance}-redis"

    @property
    def postgres(self) -> str:
        return f"{self.instance}-postgres"

    @property
    def backup(self) -> str:
        return f"{self.instance}-backup"

    @property
    def restore(self) -> str:
        return f"{self.instance}-restore"

    @property
    def postgres_secret(self) -> str:
        return f"{self.instance}-postgres-credentials"

    @property
    def redis_secret(self) -> str:
        return f"{self.instance}-redis-credentials"

    @property
    def admin_secret(self) -> str:
        return f"{self.instance}-admin-token"

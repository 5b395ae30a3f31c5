"""Names and labels of everything the operator creates for one LighthouseBridge."""

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

A_HASH = "lighthouse.dev/applied-hash"
A_REVISION = "lighthouse.dev/revision"
A_GENERATED = "lighthouse.dev/generated"

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


def instance_selector(instance: str) -> str:
    """Every child of one LighthouseBridge."""
    return f"{L_INSTANCE}={instance},{L_MANAGED_BY}={MANAGED_BY}"


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

"""Managed Redis and PostgreSQL: one-replica StatefulSets with their data on PVCs, and their Services."""

from __future__ import annotations

from .. import naming
from ..models import LighthouseBridge, ManagedStore
from .common import Manifest, meta, pvc_template, restricted_container_security, secret_env, service
from .secrets import POSTGRES_DB, POSTGRES_USER

REDIS_UID = 999  # the redis user in the official images
POSTGRES_UID = 70  # the postgres user in the official alpine images
PGDATA_MOUNT = "/var/lib/postgresql/data"


def _statefulset(
    lhb: LighthouseBridge, name: str, component: str, container: Manifest, uid: int, managed: ManagedStore
) -> Manifest:
    labels = naming.labels(lhb.name, component)
    resources = managed.resources.to_k8s()
    if resources:
        container = {**container, "resources": resources}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(lhb, name, component),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": naming.selector(lhb.name, component)},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            # Data survives the StatefulSet; the LighthouseBridge's deletionPolicy decides the PVC's fate.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": uid,
                        "runAsGroup": uid,
                        "fsGroup": uid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "run", "emptyDir": {}}],
                },
            },
            "volumeClaimTemplates": [
                pvc_template("data", dict(labels), managed.storage.size, managed.storage.storage_class_name)
            ],
        },
    }


def redis_statefulset(lhb: LighthouseBridge) -> Manifest:
    n = naming.Names(lhb.name)
    managed = lhb.spec.redis.managed or ManagedStore()
    # The password comes from the environment (never from args in the manifest); redis-cli reads REDISCLI_AUTH.
    container: Manifest = {
        "name": "redis",
        "image": lhb.spec.redis_image,
        "command": [
            "sh",
            "-c",
            'exec redis-server --appendonly yes --appendfsync everysec --dir /data --requirepass "$REDIS_PASSWORD"',
        ],
        "env": [
            secret_env("REDIS_PASSWORD", n.redis_secret, "password"),
            secret_env("REDISCLI_AUTH", n.redis_secret, "password"),
        ],
        "ports": [{"name": "redis", "containerPort": naming.REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", "redis-cli ping | grep -q PONG"]},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
        },
        "livenessProbe": {
            "exec": {"command": ["sh", "-c", "redis-cli ping | grep -q PONG"]},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 6,
        },
        "securityContext": restricted_container_security(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    return _statefulset(lhb, n.redis, naming.REDIS, container, REDIS_UID, managed)


def redis_service(lhb: LighthouseBridge) -> Manifest:
    return _governing_service(lhb, naming.Names(lhb.name).redis, naming.REDIS, "redis", naming.REDIS_PORT)


def postgres_statefulset(lhb: LighthouseBridge) -> Manifest:
    n = naming.Names(lhb.name)
    managed = lhb.spec.postgres.managed or ManagedStore()
    ready = ["sh", "-c", 'pg_isready -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB"']
    container: Manifest = {
        "name": "postgres",
        "image": lhb.spec.postgres_image,
        "env": [
            secret_env("POSTGRES_USER", n.postgres_secret, "username"),
            secret_env("POSTGRES_PASSWORD", n.postgres_secret, "password"),
            secret_env("POSTGRES_DB", n.postgres_secret, "database"),
            # A subdirectory: the volume root may hold lost+found, which initdb refuses.
            {"name": "PGDATA", "value": f"{PGDATA_MOUNT}/pgdata"},
        ],
        "ports": [{"name": "postgres", "containerPort": naming.POSTGRES_PORT, "protocol": "TCP"}],
        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 5, "timeoutSeconds": 3},
        "livenessProbe": {"exec": {"command": ready}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6},
        "securityContext": restricted_container_security(),
        "volumeMounts": [
            {"name": "data", "mountPath": PGDATA_MOUNT},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
        ],
    }
    return _statefulset(lhb, n.postgres, naming.POSTGRES, container, POSTGRES_UID, managed)


def postgres_service(lhb: LighthouseBridge) -> Manifest:
    return _governing_service(lhb, naming.Names(lhb.name).postgres, naming.POSTGRES, "postgres", naming.POSTGRES_PORT)


def _governing_service(lhb: LighthouseBridge, name: str, component: str, port_name: str, port: int) -> Manifest:
    # Headless, as a StatefulSet's governing Service should be: stable per-pod DNS, no cluster IP spent.
    return service(lhb, name, component, port_name, port, headless=True, type_=None)


__all__ = [
    "POSTGRES_DB",
    "POSTGRES_USER",
    "postgres_service",
    "postgres_statefulset",
    "redis_service",
    "redis_statefulset",
]

"""Pure builders: (LighthouseBridge) -> manifest dicts. Only the applier talks to the API server."""

from __future__ import annotations

from ..models import LighthouseBridge
from . import backup, bridge, expose, network, restore, secrets, stores
from .common import Manifest, digest

# Kinds the operator owns and prunes when the spec no longer wants them, in apply order (dependencies first).
# Secrets and PVCs are not pruned: they hold data and follow spec.deletionPolicy.
PRUNABLE = [
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("policy/v1", "PodDisruptionBudget"),
    ("batch/v1", "CronJob"),
]


def desired_children(lhb: LighthouseBridge) -> list[Manifest]:
    """Every child except generated Secrets (create-once, see secrets.py), in a safe apply order."""
    out: list[Manifest | None] = [bridge.service_account(lhb), bridge.configmap(lhb)]
    out += network.network_policies(lhb)
    if lhb.spec.postgres.mode == "managed":
        out += [stores.postgres_service(lhb), stores.postgres_statefulset(lhb)]
    if lhb.spec.redis.mode == "managed":
        out += [stores.redis_service(lhb), stores.redis_statefulset(lhb)]
    out += [bridge.api_service(lhb), bridge.metrics_service(lhb), bridge.deployment(lhb), bridge.pdb(lhb)]
    out.append(backup.cronjob(lhb))
    return [m for m in out if m is not None]


__all__ = [
    "PRUNABLE",
    "Manifest",
    "backup",
    "bridge",
    "desired_children",
    "digest",
    "expose",
    "network",
    "restore",
    "secrets",
    "stores",
]

"""NetworkPolicies: Redis and PostgreSQL accept connections only from this bridge's own pods (bridge, backup,
restore). The bridge itself stays reachable as any Service is."""

from __future__ import annotations

from .. import naming
from ..models import LighthouseBridge
from .common import Manifest, meta

CLIENTS = [naming.BRIDGE, naming.BACKUP, naming.RESTORE]


def _policy(lhb: LighthouseBridge, name: str, component: str, port: int) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(lhb, name, component),
        "spec": {
            "podSelector": {"matchLabels": naming.selector(lhb.name, component)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "podSelector": {
                                "matchLabels": {naming.L_NAME: naming.APP_NAME, naming.L_INSTANCE: lhb.name},
                                "matchExpressions": [{"key": naming.L_COMPONENT, "operator": "In", "values": CLIENTS}],
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }


def network_policies(lhb: LighthouseBridge) -> list[Manifest]:
    if not lhb.spec.network_policy.enabled:
        return []
    n = naming.Names(lhb.name)
    out = []
    if lhb.spec.redis.mode == "managed":
        out.append(_policy(lhb, n.redis, naming.REDIS, naming.REDIS_PORT))
    if lhb.spec.postgres.mode == "managed":
        out.append(_policy(lhb, n.postgres, naming.POSTGRES, naming.POSTGRES_PORT))
    return out

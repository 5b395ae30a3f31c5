"""A Prometheus Operator ServiceMonitor for the bridge's metrics Service (spec.monitoring.serviceMonitor)."""

from __future__ import annotations

from .. import naming
from ..models import LighthouseBridge
from .common import Manifest, meta


def service_monitor(lhb: LighthouseBridge) -> Manifest | None:
    if not lhb.spec.monitoring.service_monitor:
        return None
    labels = naming.labels(lhb.name, naming.BRIDGE)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(lhb, naming.Names(lhb.name).bridge, naming.BRIDGE),
        "spec": {
            # The metrics Service carries the same labels as the API Service; the port name tells them apart.
            "selector": {"matchLabels": {k: labels[k] for k in (naming.L_NAME, naming.L_INSTANCE, naming.L_COMPONENT)}},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        },
    }

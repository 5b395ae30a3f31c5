"""Shared pieces of every manifest: metadata with app.kubernetes.io labels and the controller ownerReference."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import naming
from ..models import LighthouseBridge

Manifest = dict[str, Any]


def meta(lhb: LighthouseBridge, name: str, component: str, annotations: dict[str, str] | None = None) -> Manifest:
    m: Manifest = {
        "name": name,
        "namespace": lhb.namespace,
        "labels": naming.labels(lhb.name, component),
        "ownerReferences": [lhb.owner_reference()],
    }
    if annotations:
        m["annotations"] = dict(annotations)
    return m


def digest(obj: Any, length: int = 12) -> str:
    """A stable short hash of any JSON-able value (sorted keys, so dict order never matters)."""
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:length]


def secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def restricted_container_security() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


def pvc_template(name: str, labels: dict[str, str], size: int | str, storage_class: str | None) -> Manifest:
    spec: Manifest = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}

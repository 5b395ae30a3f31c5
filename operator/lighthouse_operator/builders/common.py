"""Shared pieces of every manifest: metadata with app.kubernetes.io labels and the controller ownerReference."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import naming
from ..models import LighthouseBridge, S3Location

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


def service(
    lhb: LighthouseBridge,
    name: str,
    component: str,
    port_name: str,
    port: int,
    *,
    headless: bool,
    type_: str | None = "ClusterIP",
) -> Manifest:
    """A Service in front of one component's pods, on one named port. `type_` None leaves the type to the server's
    default (the stores' Services never set it, and setting it now would re-apply them for nothing)."""
    spec: Manifest = {
        "selector": naming.selector(lhb.name, component),
        "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}],
    }
    if type_:
        spec["type"] = type_
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(lhb, name, component), "spec": spec}


def digest(obj: Any, length: int = 12) -> str:
    """A stable short hash of any JSON-able value (sorted keys, so dict order never matters)."""
    raw = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:length]


def secret_env(name: str, secret: str, key: str) -> Manifest:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def s3_env(s3: S3Location) -> list[Manifest]:
    """Where a backup lives, in the variables `lighthouse-bridge backup|restore` reads (docs/backup-tool.md)."""
    env: list[Manifest] = [
        {"name": "LIGHTHOUSE_S3_BUCKET", "value": s3.bucket},
        {"name": "LIGHTHOUSE_S3_PREFIX", "value": s3.prefix},
        {"name": "LIGHTHOUSE_S3_PATH_STYLE", "value": "true" if s3.path_style else "false"},
    ]
    if s3.endpoint:
        env.append({"name": "LIGHTHOUSE_S3_ENDPOINT", "value": s3.endpoint})
    if s3.region:
        env.append({"name": "LIGHTHOUSE_S3_REGION", "value": s3.region})
    if s3.credentials_secret:
        env.append(secret_env("AWS_ACCESS_KEY_ID", s3.credentials_secret, "AWS_ACCESS_KEY_ID"))
        env.append(secret_env("AWS_SECRET_ACCESS_KEY", s3.credentials_secret, "AWS_SECRET_ACCESS_KEY"))
    return env


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

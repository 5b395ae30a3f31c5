"""The bridge itself: Deployment, API and metrics Services, ConfigMap, ServiceAccount, PodDisruptionBudget.

Contract with the bridge image: `lighthouse-bridge run` reads LIGHTHOUSE_* environment variables (the list:
`lighthouse-bridge config`) and the policy file /etc/lighthouse/policy.yaml, serves the API on 8765 (/livez,
/readyz) and metrics on 9090, and mounts the FUSE view at /mnt/lighthouse/project when FUSE is enabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from .. import naming
from ..models import FUSE_CSI_DRIVER, FUSE_MODES_WITH_DEVICE, LighthouseBridge
from . import expose
from .common import Manifest, meta, restricted_container_security, secret_env, service

CONFIG_DIR = "/etc/lighthouse"
RUN_DIR = "/run/lighthouse"
DATA_DIR = "/var/lib/lighthouse"
PROJECT_DIR = "/project"
MNT_DIR = "/mnt/lighthouse"
FUSE_MOUNTPOINT = f"{MNT_DIR}/project"  # in mode csi: the node plugin's mount directory in the CSI volume
FUSE_SOCKET_NAME = ".lighthouse-fuse.sock"  # in mode csi: the node plugin's socket (lighthouse_fusefd.SOCKET_NAME)
FUSE_UID = 10001  # the bridge's user wherever it needs no root


def config_data(lhb: LighthouseBridge) -> dict[str, str]:
    """The validation policy, a file the bridge reloads (LIGHTHOUSE_POLICY_FILE). Plain settings are env vars."""
    return {"policy.yaml": yaml.safe_dump(lhb.spec.bridge.policy or {}, sort_keys=True)}


def configmap(lhb: LighthouseBridge) -> Manifest:
    n = naming.Names(lhb.name)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(lhb, n.bridge_config, naming.BRIDGE),
        "data": config_data(lhb),
    }


def _env(lhb: LighthouseBridge, fuse_env: list[Manifest]) -> list[Manifest]:
    """The bridge's settings (see `lighthouse-bridge config`)."""
    s, n = lhb.spec, naming.Names(lhb.name)
    env: list[Manifest] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "LIGHTHOUSE_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "LIGHTHOUSE_NAME", "value": lhb.name},
        # The bridge binds to loopback by default; in a pod the kubelet probes and the Service need the pod IP.
        {"name": "LIGHTHOUSE_HOST", "value": "0.0.0.0"},
        {"name": "LIGHTHOUSE_PORT", "value": str(naming.API_PORT)},
        {"name": "LIGHTHOUSE_METRICS_PORT", "value": str(naming.METRICS_PORT)},
        {"name": "LIGHTHOUSE_LOG_LEVEL", "value": s.bridge.log_level},
        {"name": "LIGHTHOUSE_EXPERTS", "value": "true" if s.bridge.experts else "false"},
        {"name": "LIGHTHOUSE_POLICY_FILE", "value": f"{CONFIG_DIR}/policy.yaml"},
        {"name": "LIGHTHOUSE_FUSE_MODE", "value": "enabled" if s.fuse.active else "disabled"},
        {"name": "LIGHTHOUSE_MOUNT_POINT", "value": FUSE_MOUNTPOINT},
        {"name": "LIGHTHOUSE_FUSE_STATUS_FILE", "value": f"{RUN_DIR}/fuse-status.json"},
        {"name": "LIGHTHOUSE_AUDIT_LOG", "value": f"{DATA_DIR}/audit.log"},
        *fuse_env,
    ]
    if s.project.pvc:
        env.append({"name": "LIGHTHOUSE_PROJECT_PATH", "value": PROJECT_DIR})
    env.append(database_url_env(lhb))
    env.append(redis_url_env(lhb))
    env.append(secret_env("LIGHTHOUSE_ADMIN_TOKEN", n.admin_secret, "token"))
    # User env overrides ours by name, in place, so no name appears twice.
    user = {e.name: e.model_dump(by_alias=True, exclude_none=True) for e in s.bridge.env}
    env = [user.pop(e["name"], e) for e in env]
    env.extend(user.values())
    return env


def database_url_env(lhb: LighthouseBridge) -> Manifest:
    pg = lhb.spec.postgres
    if pg.mode == "external" and pg.external and pg.external.secret_ref:
        return secret_env("LIGHTHOUSE_DATABASE_URL", pg.external.secret_ref.name, pg.external.secret_ref.key)
    return secret_env("LIGHTHOUSE_DATABASE_URL", naming.Names(lhb.name).postgres_secret, "url")


def redis_url_env(lhb: LighthouseBridge) -> Manifest:
    r = lhb.spec.redis
    if r.mode == "external" and r.external and r.external.secret_ref:
        return secret_env("LIGHTHOUSE_REDIS_URL", r.external.secret_ref.name, r.external.secret_ref.key)
    return secret_env("LIGHTHOUSE_REDIS_URL", naming.Names(lhb.name).redis_secret, "url")


@dataclass
class FusePod:
    """What a FUSE mode puts into the bridge pod."""

    security: Manifest  # the bridge container's securityContext
    mnt_volume: Manifest = field(default_factory=lambda: {"name": "mnt", "emptyDir": {}})  # holds the mount point
    mnt_propagation: str | None = None
    volumes: list[Manifest] = field(default_factory=list)
    mounts: list[Manifest] = field(default_factory=list)
    limits: Manifest = field(default_factory=dict)  # extra resources (a device plugin's)
    env: list[Manifest] = field(default_factory=list)
    pod: Manifest = field(default_factory=dict)  # pod-level fields


def _fuse(lhb: LighthouseBridge) -> FusePod:
    """The pod shape of each fuse.mode (docs/fuse-modes.md)."""
    fuse = lhb.spec.fuse
    non_root = restricted_container_security() | {"runAsNonRoot": True, "runAsUser": FUSE_UID, "runAsGroup": FUSE_UID}
    if not fuse.active:
        return FusePod(non_root)
    if fuse.mode == "csi":
        # Restricted: the node plugin mounts, the pod's FUSE process only serves the descriptor it is handed. The
        # mount appears after the container started, hence HostToContainer.
        attrs = {"uid": str(FUSE_UID), "gid": str(FUSE_UID)}
        volume = {"name": "mnt", "csi": {"driver": FUSE_CSI_DRIVER, "volumeAttributes": attrs}}
        env = [{"name": "LIGHTHOUSE_FUSE_FD_SOCKET", "value": f"{MNT_DIR}/{FUSE_SOCKET_NAME}"}]
        return FusePod(non_root, mnt_volume=volume, mnt_propagation="HostToContainer", env=env)
    # mount(2) needs CAP_SYS_ADMIN. Only uid 0 holds capabilities after exec (container runtimes set no ambient
    # capabilities, and privileged does not change that), and no_new_privs disables the setuid fusermount3 a non-root
    # process would need: so root.
    if fuse.mode == "privileged":
        return FusePod({"privileged": True, "runAsUser": 0, "readOnlyRootFilesystem": True})
    # Otherwise SYS_ADMIN is root's only capability; the default AppArmor profile of many hosts forbids FUSE mounts.
    sc: Manifest = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsUser": 0,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
        "appArmorProfile": {"type": "Unconfined"},
    }
    if fuse.mode in FUSE_MODES_WITH_DEVICE:
        limits = {fuse.device_plugin_resource or "": 1}
        # userNamespaces: uid 0 and SYS_ADMIN exist only in the pod's user namespace (containerd 2, runc 1.2+).
        pod = {"hostUsers": False} if fuse.mode == "userNamespaces" else {}
        return FusePod(sc, limits=limits, pod=pod)
    volumes = [{"name": "dev-fuse", "hostPath": {"path": "/dev/fuse", "type": "CharDevice"}}]
    mounts = [{"name": "dev-fuse", "mountPath": "/dev/fuse"}]
    return FusePod(sc, volumes=volumes, mounts=mounts)


def service_account_name(lhb: LighthouseBridge) -> str:
    return lhb.spec.pod_template.service_account_name or naming.Names(lhb.name).bridge


def _pod_template(lhb: LighthouseBridge) -> Manifest:
    """The pod template (the health gate adds its revision annotation)."""
    s, n = lhb.spec, naming.Names(lhb.name)
    pt = s.pod_template
    fuse = _fuse(lhb)
    resources = s.resources.to_k8s()
    if fuse.limits:
        resources = {**resources, "limits": {**resources.get("limits", {}), **fuse.limits}}
        resources["requests"] = {**resources.get("requests", {}), **fuse.limits}

    volumes: list[Manifest] = [
        {"name": "config", "configMap": {"name": n.bridge_config}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "run", "emptyDir": {}},
        {"name": "data", "emptyDir": {}},
        fuse.mnt_volume,
    ]
    # The root filesystem is read-only: everything the bridge writes goes to these.
    mounts: list[Manifest] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "run", "mountPath": RUN_DIR},
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "mnt", "mountPath": MNT_DIR}
        | ({"mountPropagation": fuse.mnt_propagation} if fuse.mnt_propagation else {}),
    ]
    if s.project.pvc:
        volumes.append(
            {"name": "project", "persistentVolumeClaim": {"claimName": s.project.pvc.claim_name, "readOnly": True}}
        )
        m: Manifest = {"name": "project", "mountPath": PROJECT_DIR, "readOnly": True}
        if s.project.pvc.sub_path:
            m["subPath"] = s.project.pvc.sub_path
        mounts.append(m)
    volumes += fuse.volumes
    mounts += fuse.mounts

    container: Manifest = {
        "name": "bridge",
        "image": s.bridge_image,
        # `run` serves the API and, when LIGHTHOUSE_FUSE_MODE is enabled, mounts the FUSE view beside it.
        "args": ["run"],
        "ports": [
            {"name": "http", "containerPort": naming.API_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": naming.METRICS_PORT, "protocol": "TCP"},
        ],
        "env": _env(lhb, fuse.env),
        "startupProbe": {"httpGet": {"path": "/livez", "port": "http"}, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": "http"},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "securityContext": fuse.security,
        "volumeMounts": mounts,
    }
    if resources:
        container["resources"] = resources

    # User labels first so that ours (the selector) always win.
    pod_labels = {**pt.labels, **naming.labels(lhb.name, naming.BRIDGE)}
    pod_annotations = dict(pt.annotations)
    pod_spec: Manifest = {
        "serviceAccountName": service_account_name(lhb),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 10001},
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
        **fuse.pod,
    }
    if pt.node_selector:
        pod_spec["nodeSelector"] = dict(pt.node_selector)
    if pt.tolerations:
        pod_spec["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in pt.tolerations]
    if pt.affinity:
        pod_spec["affinity"] = pt.affinity
    if pt.priority_class_name:
        pod_spec["priorityClassName"] = pt.priority_class_name

    metadata: Manifest = {"labels": pod_labels}
    if pod_annotations:
        metadata["annotations"] = pod_annotations
    return {"metadata": metadata, "spec": pod_spec}


def deployment(lhb: LighthouseBridge) -> Manifest:
    s, n = lhb.spec, naming.Names(lhb.name)
    # The health gate stamps the revision (lighthouse.dev/revision) into the template: revision.for_bridge.
    template = _pod_template(lhb)
    spec: Manifest = {
        "replicas": s.replicas,
        "selector": {"matchLabels": naming.selector(lhb.name, naming.BRIDGE)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "progressDeadlineSeconds": s.rollout.progress_deadline_seconds,
        "revisionHistoryLimit": 10,
        "template": template,
    }
    if s.rollout.min_ready_seconds:
        # Set only when asked for: 0 is the server's default, and leaving it out keeps existing manifests as they were.
        spec["minReadySeconds"] = s.rollout.min_ready_seconds
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(lhb, n.bridge, naming.BRIDGE), "spec": spec}


def api_service(lhb: LighthouseBridge) -> Manifest:
    return service(lhb, naming.Names(lhb.name).bridge, naming.BRIDGE, "http", naming.API_PORT, headless=False)


def metrics_service(lhb: LighthouseBridge) -> Manifest:
    # Headless: Prometheus scrapes every pod by its endpoint (a load-balanced scrape would mix pods), and no
    # cluster IP is spent on it.
    name = naming.Names(lhb.name).bridge_metrics
    return service(lhb, name, naming.BRIDGE, "metrics", naming.METRICS_PORT, headless=True)


def service_account(lhb: LighthouseBridge) -> Manifest | None:
    if lhb.spec.pod_template.service_account_name:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(lhb, naming.Names(lhb.name).bridge, naming.BRIDGE),
        "automountServiceAccountToken": False,
    }


def pdb(lhb: LighthouseBridge) -> Manifest | None:
    if lhb.spec.replicas <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(lhb, naming.Names(lhb.name).bridge, naming.BRIDGE),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": naming.selector(lhb.name, naming.BRIDGE)}},
    }


def endpoints(lhb: LighthouseBridge) -> dict[str, Any]:
    n = naming.Names(lhb.name)
    out = {
        "api": f"http://{n.bridge}.{lhb.namespace}.svc:{naming.API_PORT}",
        "metrics": f"http://{n.bridge_metrics}.{lhb.namespace}.svc:{naming.METRICS_PORT}/metrics",
    }
    if (external := expose.url(lhb)) is not None:
        out["external"] = external
    return out

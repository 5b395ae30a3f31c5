"""kopf registrations only; the work happens in reconcile.py.

Why `on.event` + a timer instead of on.create/on.update/on.resume: the reconcile is level-based, so it only needs to
be woken up; kopf's change handlers would also write progress and diff-base annotations into the user's object on
every change, and the operator keeps its hands off metadata it does not need (GitOps) and writes nothing when idle.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf

from . import metrics, naming
from .api import ApiError, Obj
from .applier import Applier
from .k8s import Kube, PodProber
from .models import GROUP, KIND, PLURAL, VERSION
from .reconcile import Reconciler

log = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("LIGHTHOUSE_OPERATOR_RESYNC_SECONDS", "30"))
CHILD_FILTER = {naming.L_MANAGED_BY: naming.MANAGED_BY}


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """No last-handled-configuration annotation: nothing here needs kopf's spec diffs."""

    def fetch(self, *, body: Any) -> None:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


@dataclass
class Runtime:
    settings: kopf.OperatorSettings | None = None
    kube: Kube | None = None
    prober: PodProber | None = None
    reconciler: Reconciler | None = None

    def credentials(self) -> kopf.ConnectionInfo:
        # Called again after a 401, so rotated service-account tokens are picked up.
        assert self.settings is not None, "login has not run yet"
        info = login_any(self.settings)
        if info is None:
            raise kopf.LoginError("no kubeconfig and no in-cluster service account found")
        return info


RUNTIME = Runtime()


def login_any(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    if os.environ.get("KUBECONFIG") or not os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"):
        return kopf.login_with_kubeconfig(settings=settings)
    return kopf.login_with_service_account(settings=settings)


def reconciler() -> Reconciler:
    """The one client, read by the reconcile and written through the applier only."""
    if RUNTIME.reconciler is None:
        RUNTIME.kube = Kube(RUNTIME.credentials)
        RUNTIME.prober = PodProber()
        RUNTIME.reconciler = Reconciler(RUNTIME.kube, Applier(RUNTIME.kube, RUNTIME.kube), RUNTIME.prober)
    return RUNTIME.reconciler


def parent_of(child: Obj) -> tuple[str, str] | None:
    """(namespace, name) of the LighthouseBridge controlling a child, from its ownerReference (or its labels)."""
    for ref in child.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/") and ref.get("controller"):
            return child["metadata"]["namespace"], ref["name"]
    labels = child.get("metadata", {}).get("labels") or {}
    if labels.get(naming.L_MANAGED_BY) == naming.MANAGED_BY and naming.L_INSTANCE in labels:
        return child["metadata"]["namespace"], labels[naming.L_INSTANCE]
    return None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    RUNTIME.settings = settings
    settings.persistence.finalizer = naming.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="lighthouse.dev")
    settings.persistence.diffbase_storage = NoDiffBase(prefix="lighthouse.dev")
    # kopf would turn handler log lines into Events on the object (writes); Events are posted deliberately instead.
    settings.posting.enabled = False
    # Without these a silently dropped watch connection hangs forever (a known kopf/aiohttp trap).
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 30


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    RUNTIME.settings = settings
    return login_any(settings)


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    if RUNTIME.kube is not None:
        await RUNTIME.kube.close()
    if RUNTIME.prober is not None:
        await RUNTIME.prober.close()


@kopf.on.probe(id="bridges")
def probe_bridges(**_: Any) -> int:
    return len(reconciler().known)


async def _run(namespace: str, name: str, trigger: str) -> None:
    try:
        await reconciler().trigger(namespace, name, trigger)
    except (ApiError, aiohttp.ClientError, TimeoutError) as e:
        # The timer retries; one failed pass is not worth kopf's stack trace.
        log.warning("Reconcile failed name=%s namespace=%s trigger=%s error=%s", name, namespace, trigger, e)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def bridge_event(type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    r = reconciler()
    if type == "DELETED":
        r.forget(namespace or "", name)
        metrics.MANAGED.set(len(r.known))
        return
    r.known.add((namespace or "", name))
    metrics.MANAGED.set(len(r.known))
    if r.is_own_write(namespace or "", name, body.metadata.get("resourceVersion")):
        return
    await _run(namespace or "", name, "event")


@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
async def resync(namespace: str | None, name: str, **_: Any) -> None:
    await _run(namespace or "", name, "timer")


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def finalize(namespace: str | None, name: str, **_: Any) -> None:
    await reconciler().finalize(namespace or "", name)


async def _child_event(body: kopf.Body, trigger: str) -> None:
    parent = parent_of(dict(body))
    if parent is not None and parent in reconciler().known:
        await _run(*parent, trigger)


@kopf.on.event("apps", "v1", "deployments", labels=CHILD_FILTER)
async def deployment_event(body: kopf.Body, **_: Any) -> None:
    await _child_event(body, "deployment")


@kopf.on.event("apps", "v1", "statefulsets", labels=CHILD_FILTER)
async def statefulset_event(body: kopf.Body, **_: Any) -> None:
    await _child_event(body, "statefulset")


# Backup Jobs (the CronJob's, on-demand and final ones) carry the managed-by and instance labels: a finished Job
# updates status.lastBackup and BackupSucceeded at once instead of on the next resync.
@kopf.on.event("batch", "v1", "jobs", labels=CHILD_FILTER)
async def job_event(body: kopf.Body, **_: Any) -> None:
    await _child_event(body, "job")


# The health gate reads pod status (CrashLoopBackOff, ErrImagePull, Unschedulable rarely change the Deployment's
# own status), so pods of our workloads wake their LighthouseBridge at once instead of on the next resync.
@kopf.on.event("", "v1", "pods", labels=CHILD_FILTER)
async def pod_event(body: kopf.Body, **_: Any) -> None:
    await _child_event(body, "pod")


async def _referenced(namespace: str | None, kind: str, name: str) -> None:
    # Only Secrets/ConfigMaps a bridge's pods read (gate.Gate.watched): a content change means a new revision.
    for parent in sorted(reconciler().gate.parents_of(namespace or "", kind, name)):
        if (namespace or "", parent) in reconciler().known:
            await _run(namespace or "", parent, kind.lower())


@kopf.on.event("", "v1", "secrets")
async def secret_event(namespace: str | None, name: str, **_: Any) -> None:
    await _referenced(namespace, "Secret", name)


@kopf.on.event("", "v1", "configmaps")
async def configmap_event(namespace: str | None, name: str, **_: Any) -> None:
    await _referenced(namespace, "ConfigMap", name)

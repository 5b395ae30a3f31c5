"""kopf registrations, and the one place that builds the API clients (k8s.Kube) and what stands on them: the watch
cache the reconcile reads from, the reconcile's work queue, the leader Lease's elector. The work happens in
reconcile.py; __main__.py runs it all (standby first when leader election is on).

kopf watches only LighthouseBridges: their events wake the reconcile and feed the cache (`Cache.observe`), and kopf
keeps the finalizer. Children, pods, Jobs and generated Secrets come from the cache's own watches (cache.py), whose
changes wake the parent bridge. Why `on.event` instead of on.create/on.update/on.resume: the reconcile is
level-based, so it only needs to be woken up; kopf's change handlers would also write progress and diff-base
annotations into the user's object on every change, and the operator keeps its hands off metadata it does not need
(GitOps) and writes nothing when idle. The periodic resync is the reconcile's own loop (`Reconciler.resync`), spread
over the interval, not a kopf timer per object.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import kopf

from . import cache, memory, metrics, naming
from .api import Obj
from .applier import Applier
from .k8s import Kube, PodProber
from .leader import LeaseElector, Timings
from .models import GROUP, KIND, PLURAL, VERSION
from .reconcile import Reconciler

log = logging.getLogger(__name__)

RESYNC_SECONDS = float(os.environ.get("LIGHTHOUSE_OPERATOR_RESYNC_SECONDS", "30"))


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """No last-handled-configuration annotation: nothing here needs kopf's spec diffs."""

    def fetch(self, *, body: Any) -> None:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


@dataclass
class Runtime:
    settings: kopf.OperatorSettings = field(default_factory=kopf.OperatorSettings)
    namespaces: list[str] | None = None  # None: the whole cluster
    resync: float = RESYNC_SECONDS
    workers: int = 16
    watch_secrets: bool = True
    kube: Kube | None = None
    prober: PodProber | None = None
    cache: cache.Cache | None = None
    reconciler: Reconciler | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def credentials(self) -> kopf.ConnectionInfo:
        # Called again after a 401, so rotated service-account tokens are picked up.
        info = login_any(self.settings)
        if info is None:
            raise kopf.LoginError("no kubeconfig and no in-cluster service account found")
        return info


RUNTIME = Runtime()


def setup(namespaces: list[str] | None, resync: float, workers: int, watch_secrets: bool = True) -> None:
    """What __main__ decided: the scope (None: cluster-wide), the resync interval, concurrent reconciles, and
    whether the Secrets the operator generates may be watched (else they are read by name)."""
    RUNTIME.namespaces, RUNTIME.resync, RUNTIME.workers = namespaces, resync, workers
    RUNTIME.watch_secrets = watch_secrets


def login_any(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    if os.environ.get("KUBECONFIG") or not os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"):
        return kopf.login_with_kubeconfig(settings=settings)
    return kopf.login_with_service_account(settings=settings)


def reconciler() -> Reconciler:
    """The one client, behind the watch cache: read by the reconcile, written through the applier only."""
    if RUNTIME.reconciler is None:
        RUNTIME.kube = Kube(RUNTIME.credentials)
        RUNTIME.prober = PodProber()
        RUNTIME.cache = cache.Cache(
            RUNTIME.kube,
            namespaces=RUNTIME.namespaces,
            ttl=RUNTIME.resync,
            on_change=child_changed,
            by_name=() if RUNTIME.watch_secrets else ("Secret",),
        )
        RUNTIME.reconciler = Reconciler(RUNTIME.cache, Applier(RUNTIME.cache, RUNTIME.cache), RUNTIME.prober)
    return RUNTIME.reconciler


def the_cache() -> cache.Cache:
    reconciler()
    assert RUNTIME.cache is not None
    return RUNTIME.cache


def elector(namespace: str, name: str, identity: str, timings: Timings) -> LeaseElector:
    """The leader Lease's elector, on clients of its own: renewals never queue behind the reconcile's requests, and
    they run on the renewal thread's loop (leader.py), so a busy reconcile loop cannot make the Lease lapse."""
    return LeaseElector(
        Kube(RUNTIME.credentials, max_concurrency=2),
        namespace,
        name,
        identity,
        timings,
        renew_client=lambda: Kube(RUNTIME.credentials, max_concurrency=1),
    )


def details() -> dict[str, Any]:
    """For the liveness endpoint's body."""
    r = RUNTIME.reconciler
    return {"bridges": len(r.known)} if r is not None else {}


def parent_of(child: Obj) -> tuple[str, str] | None:
    """(namespace, name) of the LighthouseBridge controlling a child, from its ownerReference (or its labels)."""
    for ref in child.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/") and ref.get("controller"):
            return child["metadata"]["namespace"], ref["name"]
    labels = child.get("metadata", {}).get("labels") or {}
    if labels.get(naming.L_MANAGED_BY) == naming.MANAGED_BY and naming.L_INSTANCE in labels:
        return child["metadata"]["namespace"], labels[naming.L_INSTANCE]
    return None


def child_changed(kind: str, obj: Obj) -> None:
    """A watched object changed: wake its LighthouseBridge (and, for a Secret or ConfigMap, every bridge whose pods
    read it: gate.Gate.watched)."""
    r = reconciler()
    md = obj.get("metadata") or {}
    parents = set()
    if (parent := parent_of(obj)) is not None:
        parents.add(parent)
    if kind in ("Secret", "ConfigMap"):
        ns = md.get("namespace") or ""
        parents.update((ns, p) for p in r.gate.parents_of(ns, kind, md.get("name") or ""))
    for p in sorted(parents):
        if p in r.known:
            r.enqueue(*p, kind.lower())


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
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
    r = reconciler()
    RUNTIME.tasks += [
        asyncio.ensure_future(r.work(RUNTIME.workers)),
        asyncio.ensure_future(r.resync(RUNTIME.resync)),
        asyncio.ensure_future(memory.trim_forever()),
    ]


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    RUNTIME.settings = settings
    return login_any(settings)


@kopf.on.cleanup()
async def close(**_: Any) -> None:
    """No write after this: the workers and the cache's watches stop before the client closes."""
    for task in RUNTIME.tasks:
        task.cancel()
    await asyncio.gather(*RUNTIME.tasks, return_exceptions=True)
    RUNTIME.tasks.clear()
    if RUNTIME.cache is not None:
        await RUNTIME.cache.stop()
    if RUNTIME.kube is not None:
        await RUNTIME.kube.close()
    if RUNTIME.prober is not None:
        await RUNTIME.prober.close()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def bridge_event(type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    r, c, ns = reconciler(), the_cache(), namespace or ""
    if type == "DELETED":
        c.forget_bridge(ns, name)
        r.forget(ns, name)
        metrics.MANAGED.set(len(r.known))
        return
    c.observe(dict(body))
    r.known.add((ns, name))
    metrics.MANAGED.set(len(r.known))
    if r.is_own_write(ns, name, body.metadata.get("resourceVersion")):
        return
    r.enqueue(ns, name, "event", urgent=True)


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def finalize(body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    the_cache().observe(dict(body))
    await reconciler().finalize(namespace or "", name)

"""Watches kept in memory: what the reconcile reads, served without a request to the API server.

One Informer per kind and scope (a namespace, or the cluster): a paged LIST, then WATCHes from its resourceVersion
(bookmarks on, a server timeout and a read timeout, so a watch never hangs); 410 Gone means "relist", and a relist
compares what it finds with what was held, so a change made while no watch ran still reaches the handler.
Only objects labelled app.kubernetes.io/managed-by=lighthouse-operator are watched: the children, their pods,
ReplicaSets, Jobs, ControllerRevisions, generated Secrets and PVCs. Objects are kept slim (`slim`: no managedFields,
no pod specs, ...) and compressed against a per-kind dictionary: a few hundred bytes each. A read decodes a fresh copy,
so callers may change what they get.

`Cache` is an api.Client. Reads of a watched kind come from its informer; an object the operator does not label (a
Secret or PVC the user names in the spec) is read by name and remembered for `ttl` seconds (the resync interval), so
a resync costs one GET per such object and nothing else. A kind the operator may not list or watch (RBAC: Secrets in
cluster mode) is read by name in the same way and tried again later; a kind that does not exist (ServiceMonitor
without the Prometheus Operator) reads as none until the operator's own write of one succeeds. Writes go to the API
server, and what it returns goes into the cache at once: the next pass never sees an object older than one it wrote.
LighthouseBridges are not watched here: kopf watches them and main.py hands each body to `observe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from . import metrics, naming
from .api import ApiError, Client, Forbidden, Gone, NotFound, Obj, Stream

log = logging.getLogger(__name__)

MANAGED = f"{naming.L_MANAGED_BY}={naming.MANAGED_BY}"
# What observe.py, the gate and the applier read, all labelled by the operator (pods, ReplicaSets and PVCs inherit
# the labels of their templates).
WATCHED: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "ControllerRevision"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("v1", "Secret"),
    ("v1", "Pod"),
    ("v1", "PersistentVolumeClaim"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"),
)
BRIDGES = ("lighthouse.dev/v1alpha1", "LighthouseBridge")
WATCH_SECONDS = 1800  # a server-side bound; BOOKMARKs every minute keep the read timeout (k8s.py) from firing
SYNC_WAIT = 60.0  # how long a read waits for a kind's first LIST before it fails the pass
RETRY_FORBIDDEN = 600.0  # RBAC may be granted later
# A kind with no CRD is not listed again on a timer (an idle operator makes no requests but its Lease's): the
# operator learns that the CRD was installed when its own write of that kind succeeds (observe -> retry).
RETRY_ABSENT: float | None = None
BACKOFF_MAX = 30.0
YIELD_EVERY = 200  # objects of a LIST handled between two turns of the event loop
ANNOTATION_LIMIT = 2048  # longer foreign annotations are dropped; ours are short
DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
POD_STATUS = (
    "phase", "conditions", "containerStatuses", "initContainerStatuses", "startTime", "reason", "message", "podIP"
)  # fmt: skip
CONTAINER_STATUS = ("name", "ready", "started", "restartCount", "state", "lastState", "containerID")
POD_SPEC = ("nodeName",)  # FuseAvailable (mode userNamespaces) reads the pods' Nodes

OnChange = Callable[[str, Obj], None]  # (kind, object as last seen): something about it changed


# ------------------------------------------------------------------------------------------------------ slimming


def _slim_metadata(md: Obj) -> Obj:
    out = {k: v for k, v in md.items() if k not in ("managedFields", "selfLink")}
    ann = md.get("annotations")
    if ann:
        kept = {
            k: v
            for k, v in ann.items()
            if k not in DROPPED_ANNOTATIONS and (len(v) <= ANNOTATION_LIMIT or k.startswith("lighthouse.dev/"))
        }
        if kept:
            out["annotations"] = kept
        else:
            out.pop("annotations", None)
    return out


def slim(obj: Obj) -> Obj:
    """Only what the operator reads. Pods: metadata, the status the health gate, the Job views and FuseAvailable
    judge, and the node they run on (not the rest of the spec); ReplicaSets: the template's metadata (its revision);
    Jobs: no pod template. Everything else whole, without managedFields and big foreign annotations: the applier
    compares children with what it would apply."""
    out = dict(obj)
    out["metadata"] = _slim_metadata(obj.get("metadata") or {})
    kind = obj.get("kind")
    if kind == "Pod":
        spec = obj.get("spec") or {}
        out["spec"] = {k: spec[k] for k in POD_SPEC if k in spec}
        st = obj.get("status") or {}
        status = {k: st[k] for k in POD_STATUS if k in st}
        for section in ("containerStatuses", "initContainerStatuses"):
            if section in status:
                status[section] = [{k: cs[k] for k in CONTAINER_STATUS if k in cs} for cs in status[section]]
        out["status"] = status
    elif kind == "ReplicaSet":
        spec = obj.get("spec") or {}
        tmd = (spec.get("template") or {}).get("metadata") or {}
        out["spec"] = {"replicas": spec.get("replicas"), "template": {"metadata": tmd}}
    elif kind == "Job":
        spec = dict(obj.get("spec") or {})
        spec.pop("template", None)
        out["spec"] = spec
    return out


# --------------------------------------------------------------------------------------------------------- codec


class Codec:
    """JSON compressed against the first object of the kind: objects of one kind share most of their bytes."""

    def __init__(self) -> None:
        self._zdict: bytes | None = None
        self._base: Any = None

    def encode(self, obj: Obj) -> bytes:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        if self._zdict is None:
            self._zdict = raw
            self._base = zlib.compressobj(1, zdict=raw)
        c = self._base.copy()
        out: bytes = c.compress(raw) + c.flush()
        return out

    def decode(self, blob: bytes) -> Obj:
        assert self._zdict is not None
        out: Obj = json.loads(zlib.decompressobj(zdict=self._zdict).decompress(blob))
        return out


def newer(a: str, b: str) -> bool:
    """resourceVersion `a` is newer than `b` (etcd's are integers; an opaque one is taken as newer)."""
    if a.isdigit() and b.isdigit():
        return int(a) > int(b)
    return a != b


def parse_selector(selector: str | None) -> dict[str, str] | None:
    """An equality-based label selector as a dict; None when it uses anything else (the API server answers those)."""
    out: dict[str, str] = {}
    for part in (selector or "").split(","):
        part = part.strip()
        if not part:
            continue
        if "!" in part or " " in part or "(" in part or "=" not in part:
            return None
        k, _, v = part.partition("=")
        out[k.strip()] = v.lstrip("=").strip()
    return out


# ------------------------------------------------------------------------------------------------------ informer

State = Literal["starting", "synced", "forbidden", "absent"]


@dataclass(slots=True)
class Entry:
    rv: str
    instance: str
    blob: bytes


class Informer:
    """The objects of one kind in one scope (a namespace, or "" for the cluster), kept by watching."""

    def __init__(
        self,
        source: Stream | None,
        api_version: str,
        kind: str,
        scope: str,
        label_selector: str | None = MANAGED,
        on_change: OnChange | None = None,
    ):
        self.source = source  # None: fed by observe() only
        self.api_version, self.kind, self.scope = api_version, kind, scope
        self.label_selector = label_selector
        self.on_change = on_change
        self.codec = Codec()
        self.entries: dict[tuple[str, str], Entry] = {}
        self.by_instance: dict[tuple[str, str], set[str]] = {}
        self.state: State = "starting" if source is not None else "synced"
        self.synced = asyncio.Event()
        if source is None:
            self.synced.set()
        self.resource_version = ""
        self._task: asyncio.Task[None] | None = None
        self._retry = asyncio.Event()  # set: try a forbidden or absent kind again now

    def __repr__(self) -> str:
        return f"Informer({self.kind}, scope={self.scope or 'cluster'}, state={self.state}, n={len(self.entries)})"

    @property
    def usable(self) -> bool:
        return self.state == "synced"

    # ---- the store

    def _index(self, key: tuple[str, str], instance: str, add: bool) -> None:
        ik = (key[0], instance)
        if add:
            self.by_instance.setdefault(ik, set()).add(key[1])
        elif ik in self.by_instance:
            self.by_instance[ik].discard(key[1])
            if not self.by_instance[ik]:
                del self.by_instance[ik]

    def _decode(self, key: tuple[str, str], e: Entry) -> Obj:
        obj = self.codec.decode(e.blob)
        obj["metadata"]["resourceVersion"] = e.rv
        return obj

    def _notify(self, obj: Obj) -> None:
        if self.on_change is not None:
            try:
                self.on_change(self.kind, obj)
            except Exception:  # a handler bug must not stop the watch
                log.exception("Cache handler failed kind=%s", self.kind)

    def apply(self, type_: str, obj: Obj, notify: bool = True) -> bool:
        """One watch event (or a write's result). Returns whether anything the operator reads changed. Never goes
        back in time: an event older than what is held (a write's result got here first) is ignored."""
        md = obj.get("metadata") or {}
        key = (md.get("namespace") or "", md.get("name") or "")
        rv = str(md.get("resourceVersion") or "")
        old = self.entries.get(key)
        if type_ == "DELETED":
            if old is None or (rv and newer(old.rv, rv)):
                return False
            del self.entries[key]
            self._index(key, old.instance, add=False)
            metrics.CACHE_OBJECTS.labels(kind=self.kind).dec()
            if notify:
                self._notify(obj)
            return True
        if old is not None and rv and not newer(rv, old.rv):
            return False
        lean = slim(obj)
        lean["metadata"] = {k: v for k, v in lean["metadata"].items() if k != "resourceVersion"}
        blob = self.codec.encode(lean)
        instance = (md.get("labels") or {}).get(naming.L_INSTANCE, "")
        self.entries[key] = Entry(rv, instance, blob)
        if old is None:
            metrics.CACHE_OBJECTS.labels(kind=self.kind).inc()
        elif old.instance != instance:
            self._index(key, old.instance, add=False)
        self._index(key, instance, add=True)
        if old is not None and old.blob == blob:
            return False  # only the resourceVersion (or what slim() drops) moved
        if notify:
            self._notify(obj)
        return True

    def replace(self, items: Iterable[Obj], resource_version: str, notify: bool) -> int:
        """A fresh LIST: the store becomes what it says (keeping anything a write made newer than the list) and,
        with `notify`, every difference is reported. Returns the number of differences."""
        return sum(self._replacing(items, resource_version, notify))

    async def replace_yielding(self, items: Iterable[Obj], resource_version: str, notify: bool) -> int:
        """replace(), letting other tasks run every YIELD_EVERY objects: slimming and encoding thousands of them
        in one go stalled the event loop for seconds on a busy machine, and a leader that cannot renew its Lease
        in time must stop (leader.py)."""
        changes = 0
        for i, changed in enumerate(self._replacing(items, resource_version, notify), 1):
            changes += changed
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return changes

    def _replacing(self, items: Iterable[Obj], resource_version: str, notify: bool) -> Iterator[int]:
        """replace(), one object at a time: 1 for each difference, 0 for the rest."""
        seen = set()
        for obj in items:
            md = obj["metadata"]
            seen.add((md.get("namespace") or "", md["name"]))
            yield int(self.apply("MODIFIED", obj, notify))
        for key in [k for k in self.entries if k not in seen]:
            e = self.entries[key]
            if resource_version and newer(e.rv, resource_version):
                continue  # written by us after the list was taken
            obj = self._decode(key, e)
            del self.entries[key]
            self._index(key, e.instance, add=False)
            metrics.CACHE_OBJECTS.labels(kind=self.kind).dec()
            if notify:
                self._notify(obj)
            yield 1

    def get(self, namespace: str, name: str) -> Obj | None:
        e = self.entries.get((namespace, name))
        return None if e is None else self._decode((namespace, name), e)

    def list(self, namespace: str, wanted: dict[str, str]) -> list[Obj]:
        """Objects in `namespace` whose labels include `wanted` (equality only)."""
        if naming.L_INSTANCE in wanted:
            names: Iterable[str] = sorted(self.by_instance.get((namespace, wanted[naming.L_INSTANCE]), ()))
        else:
            names = sorted(n for ns, n in self.entries if ns == namespace)
        out = []
        for name in names:
            key = (namespace, name)
            obj = self._decode(key, self.entries[key])
            obj.setdefault("apiVersion", self.api_version)
            obj.setdefault("kind", self.kind)
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in wanted.items()):
                out.append(obj)
        return out

    # ---- the watch

    def start(self) -> None:
        if self.source is not None and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _list(self, notify: bool) -> None:
        assert self.source is not None
        items: list[Obj] = []
        cont, rv = None, ""
        while True:
            page = await self.source.list_page(
                self.api_version, self.kind, self.scope or None, label_selector=self.label_selector, cont=cont
            )
            items += page.items
            if cont is None:  # the snapshot the pages belong to
                rv = page.resource_version
            if not page.next:
                break
            cont = page.next
        changes = await self.replace_yielding(items, rv, notify)
        self.resource_version = rv
        if notify and changes:
            log.info("Relisted kind=%s scope=%s changes=%d", self.kind, self.scope or "cluster", changes)

    def retry(self) -> None:
        """The kind may exist now (a write of it succeeded): list it again without waiting."""
        self._retry.set()

    def clear(self) -> None:
        metrics.CACHE_OBJECTS.labels(kind=self.kind).dec(len(self.entries))
        self.entries.clear()
        self.by_instance.clear()

    async def _run(self) -> None:
        assert self.source is not None
        failures = 0
        listed = False
        while True:
            try:
                if not listed:
                    await self._list(notify=self.state == "synced")
                    listed = True
                    self.state = "synced"
                    self.synced.set()
                    failures = 0
                async for ev in self.source.watch(
                    self.api_version,
                    self.kind,
                    self.scope or None,
                    resource_version=self.resource_version,
                    label_selector=self.label_selector,
                    timeout_seconds=int(WATCH_SECONDS * random.uniform(0.8, 1.0)),
                ):
                    rv = str((ev.object.get("metadata") or {}).get("resourceVersion") or "")
                    if ev.type != "BOOKMARK":
                        self.apply(ev.type, ev.object)
                    if rv:
                        self.resource_version = rv
                    failures = 0
                metrics.WATCH_RESTARTS.labels(kind=self.kind, reason="ended").inc()
            except asyncio.CancelledError:
                raise
            except Gone:
                metrics.WATCH_RESTARTS.labels(kind=self.kind, reason="expired").inc()
                log.info("Watch expired, relisting kind=%s scope=%s", self.kind, self.scope or "cluster")
                listed = False
            except (Forbidden, NotFound) as e:
                if listed:  # RBAC or the CRD went away under a running watch: start over
                    listed = False
                    continue
                forbidden = isinstance(e, Forbidden)
                self.state = "forbidden" if forbidden else "absent"
                self.clear()
                self.synced.set()
                log.info(
                    "Not watching kind=%s scope=%s reason=%s",
                    self.kind,
                    self.scope or "cluster",
                    "forbidden: reading by name instead" if forbidden else "no such kind: none exist",
                )
                self._retry.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry.wait(), RETRY_FORBIDDEN if forbidden else RETRY_ABSENT)
            except Exception as e:  # connection refused, reset, read timeout, a server error: try again
                failures += 1
                metrics.WATCH_RESTARTS.labels(kind=self.kind, reason="error").inc()
                delay = min(BACKOFF_MAX, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.8, 1.2)
                log.info(
                    "Watch failed kind=%s scope=%s error=%s retry_in=%.1fs",
                    self.kind,
                    self.scope or "cluster",
                    e.__class__.__name__ + (f": {e}" if str(e) else ""),
                    delay,
                )
                await asyncio.sleep(delay)


# ---------------------------------------------------------------------------------------------------------- cache


class Source(Client, Stream, Protocol):
    """The client behind the cache: reads and writes (api.Client) and lists and watches (api.Stream)."""


class Cache:
    """An api.Client in front of another: reads from informers, by-name reads remembered for `ttl` seconds, writes
    through (and into the cache). `namespaces`: the watched namespaces (informers per namespace, started on first
    use); None watches the cluster (one informer per kind)."""

    def __init__(
        self,
        client: Source,
        *,
        namespaces: Iterable[str] | None = None,
        ttl: float = 30.0,
        on_change: OnChange | None = None,
        by_name: Iterable[str] = (),
    ):
        """`by_name`: kinds never watched, only read by name (Secrets when RBAC grants no list or watch on them)."""
        self.client = client
        self.cluster_wide = namespaces is None
        self.ttl = ttl
        self.on_change = on_change
        self.informers: dict[tuple[str, str], Informer] = {}  # (kind, scope)
        self.bridges = Informer(None, *BRIDGES, scope="", label_selector=None)
        self._by_name: dict[tuple[str, str, str], tuple[float, bytes | None]] = {}
        self._watched = {kind: api_version for api_version, kind in WATCHED if kind not in set(by_name)}

    # ---- lifecycle

    def informer(self, api_version: str, kind: str, namespace: str | None, start: bool = True) -> Informer | None:
        """The informer holding (kind, namespace), started on first use; None for a kind that is not watched."""
        if kind not in self._watched or self._watched[kind] != api_version:
            return None
        scope = "" if self.cluster_wide else (namespace or "")
        inf = self.informers.get((kind, scope))
        if inf is None and start:
            inf = Informer(self.client, api_version, kind, scope, MANAGED, self.on_change)
            self.informers[(kind, scope)] = inf
            inf.start()
        return inf

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self.informers.values()))

    def observe(self, obj: Obj) -> None:
        """A LighthouseBridge as kopf saw it (or anything the operator wrote): into the cache if it is held there."""
        kind, md = obj.get("kind"), obj.get("metadata") or {}
        if kind == BRIDGES[1]:
            self.bridges.apply("MODIFIED", obj, notify=False)
            return
        inf = self.informer(obj.get("apiVersion", ""), str(kind), md.get("namespace"), start=False)
        labels = md.get("labels") or {}
        if inf is not None and inf.usable and labels.get(naming.L_MANAGED_BY) == naming.MANAGED_BY:
            inf.apply("MODIFIED", obj, notify=False)
        elif inf is not None and inf.state in ("absent", "forbidden"):
            inf.retry()  # it was written, so it exists (its CRD was installed, or RBAC granted since)
        key = (str(kind), md.get("namespace") or "", md.get("name") or "")
        if key in self._by_name:
            self._remember(key, obj)

    def forget_bridge(self, namespace: str, name: str) -> None:
        self.bridges.apply("DELETED", {"metadata": {"namespace": namespace, "name": name}}, notify=False)

    # ---- reads (api.Reader)

    async def _ready(self, inf: Informer | None) -> bool:
        if inf is None:
            return False
        if not inf.synced.is_set():
            try:
                await asyncio.wait_for(inf.synced.wait(), SYNC_WAIT)
            except TimeoutError:
                raise ApiError(503, "CacheNotSynced", f"no list of {inf.kind} within {SYNC_WAIT:.0f} s") from None
        return inf.usable

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        if (api_version, kind) == BRIDGES:
            obj = self.bridges.get(namespace or "", name)
            if obj is not None:
                metrics.CACHE_READS.labels(kind=kind, source="cache").inc()
                return obj
            return await self.client.get(api_version, kind, namespace, name)
        inf = self.informer(api_version, kind, namespace)
        if await self._ready(inf):
            assert inf is not None
            obj = inf.get(namespace or "", name)
            if obj is not None:
                metrics.CACHE_READS.labels(kind=kind, source="cache").inc()
                return obj
        elif inf is not None and inf.state == "absent":  # no such kind (its CRD is not installed)
            metrics.CACHE_READS.labels(kind=kind, source="cache").inc()
            return None
        return await self._get_by_name(api_version, kind, namespace, name)

    async def _get_by_name(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        """Something the operator does not label (or may not watch): a GET, remembered for `ttl` seconds."""
        key = (kind, namespace or "", name)
        hit = self._by_name.get(key)
        if hit is not None and hit[0] > time.monotonic():
            metrics.CACHE_READS.labels(kind=kind, source="remembered").inc()
            return None if hit[1] is None else json.loads(zlib.decompress(hit[1]))
        metrics.CACHE_READS.labels(kind=kind, source="api").inc()
        obj = await self.client.get(api_version, kind, namespace, name)
        self._remember(key, obj)
        return obj

    def _remember(self, key: tuple[str, str, str], obj: Obj | None) -> None:
        now = time.monotonic()
        if len(self._by_name) > 4096:  # forget the expired ones now and then
            self._by_name = {k: v for k, v in self._by_name.items() if v[0] > now}
        blob = None if obj is None else zlib.compress(json.dumps(slim(obj), separators=(",", ":")).encode(), 1)
        self._by_name[key] = (now + self.ttl, blob)

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        wanted = parse_selector(label_selector)
        inf = self.informer(api_version, kind, namespace)
        if wanted is not None and namespace and await self._ready(inf):
            assert inf is not None
            metrics.CACHE_READS.labels(kind=kind, source="cache").inc()
            return inf.list(namespace, wanted)
        if inf is not None and inf.state == "absent":
            metrics.CACHE_READS.labels(kind=kind, source="cache").inc()
            return []
        metrics.CACHE_READS.labels(kind=kind, source="api").inc()
        return await self.client.list(api_version, kind, namespace, label_selector)

    # ---- writes (api.Writer): through, and into the cache

    async def apply(self, manifest: Obj, *, force: bool = True) -> Obj:
        out = await self.client.apply(manifest, force=force)
        self.observe(out)
        return out

    async def create(self, manifest: Obj) -> Obj | None:
        out = await self.client.create(manifest)
        if out is not None and out.get("kind") != "Event":
            self.observe(out)
        return out

    async def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Obj,
        *,
        subresource: str | None = None,
        merge: bool = True,
    ) -> Obj | None:
        out = await self.client.patch(api_version, kind, namespace, name, patch, subresource=subresource, merge=merge)
        if out is not None:
            out.setdefault("apiVersion", api_version)
            out.setdefault("kind", kind)
            self.observe(out)
        return out

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        # The watch reports the deletion (an object with finalizers lives on for a while): nothing to do here.
        self._by_name.pop((kind, namespace or "", name), None)
        return await self.client.delete(api_version, kind, namespace, name, propagation, uid)

    def summary(self) -> dict[str, int]:
        """Objects held per kind (all scopes)."""
        out: dict[str, int] = {}
        for (kind, _), inf in self.informers.items():
            out[kind] = out.get(kind, 0) + len(inf.entries)
        out[BRIDGES[1]] = len(self.bridges.entries)
        return out


def _satisfies(cache: Cache) -> Client:
    """Checked by mypy: the cache is a whole api.Client, as the client behind it is."""
    return cache


__all__ = ["MANAGED", "WATCHED", "Cache", "Codec", "Informer", "newer", "parse_selector", "slim"]

"""An in-memory stand-in for k8s.Kube, for unit tests of the applier's decisions only (the integration tier uses
the real API server). It mimics what matters here: server defaults, resourceVersion/generation, label selectors.
It is an api.Client, as k8s.Kube is (mypy checks both: `make verify`)."""

from __future__ import annotations

import asyncio
import copy
import itertools
import threading
from collections.abc import AsyncIterator, Callable

from lighthouse_operator.api import Client, Conflict, NotFound, Obj, Page, Stream, WatchEvent
from lighthouse_operator.applier import Applier
from lighthouse_operator.reconcile import Reconciler


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name); Events are kept apart
        self.events: list[tuple[str, str, str]] = []  # (type, reason, message) of the Events posted
        self._rv = itertools.count(100)
        self._uid = itertools.count(1)
        self.missing_kinds: set[str] = set()  # kinds whose CRD is not installed
        self.history: list[tuple[str, Obj]] = []  # (event type, object) of every change, for watches
        self.last_rv = "0"
        self.lock = threading.RLock()  # the Lease renewer writes from a thread of its own (leader.py)

    def _store(self, obj: Obj, bump_generation: bool) -> Obj:
        md = obj["metadata"]
        md["resourceVersion"] = self.last_rv = str(next(self._rv))
        md.setdefault("uid", f"uid-{next(self._uid)}")
        if bump_generation and "spec" in obj:
            md["generation"] = md.get("generation", 0) + 1
        # A server default the operator never sets, so covers() must tolerate supersets.
        if obj["kind"] == "Deployment":
            obj["spec"].setdefault("progressDeadlineSeconds", 600)
            obj.setdefault("status", {})
        key = (obj["kind"], md["namespace"], md["name"])
        self.history.append(("MODIFIED" if key in self.objects else "ADDED", copy.deepcopy(obj)))
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def edit(self, kind: str, namespace: str, name: str, fn: Callable[[Obj], object]) -> None:
        """A hand edit through the API (kubectl edit): the server bumps resourceVersion and generation."""
        with self.lock:
            obj = self.objects[(kind, namespace, name)]
            fn(obj)
            self._store(obj, bump_generation=True)

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        o = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(o) if o else None

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        want = dict(p.split("=", 1) for p in (label_selector or "").split(",") if p)
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind
            and ns == namespace
            and all((o["metadata"].get("labels") or {}).get(a) == b for a, b in want.items())
        ]

    async def apply(self, manifest: Obj, *, force: bool = True) -> Obj:
        if manifest["kind"] in self.missing_kinds:
            raise NotFound(404, "NotFound", "the server could not find the requested resource")
        self.writes.append(("apply", manifest["kind"], manifest["metadata"]["name"]))
        key = (manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        current = self.objects.get(key)
        new = copy.deepcopy(manifest)
        if current:
            new["metadata"] = {**current["metadata"], **new["metadata"]}
            changed = current.get("spec") != new.get("spec")
            new["metadata"]["generation"] = current["metadata"].get("generation", 1)
            return self._store(new, bump_generation=changed)
        return self._store(new, bump_generation=True)

    async def create(self, manifest: Obj) -> Obj | None:
        if manifest["kind"] == "Event":
            self.events.append((manifest["type"], manifest["reason"], manifest["message"]))
            return copy.deepcopy(manifest)
        key = (manifest["kind"], manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        if key in self.objects:
            return None
        self.writes.append(("create", manifest["kind"], manifest["metadata"]["name"]))
        obj = copy.deepcopy(manifest)
        if "stringData" in obj:
            obj["data"] = obj.pop("stringData")
        return self._store(obj, bump_generation=False)

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
        with self.lock:
            key = (kind, namespace or "", name)
            if key not in self.objects:
                return None
            self.writes.append(("patch", kind, name))
            obj = self.objects[key]
            if patch.get("metadata", {}).get("resourceVersion") not in (None, obj["metadata"].get("resourceVersion")):
                raise Conflict(409, "Conflict", "resourceVersion changed")
            _merge(obj, patch)
            return self._store(obj, bump_generation=False)

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        gone = self.objects.pop((kind, namespace or "", name), None)
        if gone is None:
            return False
        gone["metadata"]["resourceVersion"] = self.last_rv = str(next(self._rv))
        self.history.append(("DELETED", copy.deepcopy(gone)))
        self.writes.append(("delete", kind, name))
        return True

    async def list_page(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int = 500,
        cont: str | None = None,
    ) -> Page:
        items = await self.list(api_version, kind, namespace, label_selector)
        if field_selector and field_selector.startswith("metadata.name="):
            items = [o for o in items if o["metadata"]["name"] == field_selector.split("=", 1)[1]]
        return Page(items, self.last_rv)

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 1800,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after `resource_version`, polled every 10 ms."""
        pos = 0
        name = (
            field_selector.split("=", 1)[1] if field_selector and field_selector.startswith("metadata.name=") else None
        )
        while True:
            while pos < len(self.history):
                type_, obj = self.history[pos]
                pos += 1
                md = obj["metadata"]
                if int(md["resourceVersion"]) <= int(resource_version or 0):
                    continue
                if obj["kind"] == kind and md["namespace"] == (namespace or "") and name in (None, md["name"]):
                    yield WatchEvent(type_, copy.deepcopy(obj))
            await asyncio.sleep(0.01)


def client(kube: FakeKube) -> Client:
    """Checked by mypy: the fake is an api.Client, like k8s.Kube."""
    return kube


def stream(kube: FakeKube) -> Stream:
    """Checked by mypy: the fake lists and watches (api.Stream), like k8s.Kube."""
    return kube


def applier(kube: FakeKube) -> Applier:
    return Applier(kube, kube, instance="test")


def reconciler(kube: FakeKube) -> Reconciler:
    return Reconciler(kube, applier(kube))


def _merge(target: Obj, patch: Obj) -> None:
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)

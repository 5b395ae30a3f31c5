"""The operator's own Kubernetes client: a small async wrapper over aiohttp.

Why not the official `kubernetes` package: it costs ~50 MiB of RSS and the operator image does not ship it. kopf
already depends on aiohttp, and it hands us credentials as a kopf.ConnectionInfo (see main.py's login handler).

Everything goes through `Kube.request`, which is the one place where HTTP errors become typed exceptions (api.py):
callers ask for "absent is fine" (get -> None, delete -> False, create -> None on conflict) instead of catching
statuses. Only main.py builds one; nothing else imports this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf

from . import __version__, metrics, naming
from .api import ApiError, Client, Conflict, Forbidden, Gone, Invalid, NotFound, Obj, Page, Stream, WatchEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def base(self) -> str:
        return f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"


# The kinds the operator touches; a static table instead of discovery (fewer requests, no surprises).
KINDS: dict[tuple[str, str], Kind] = {
    (k.api_version, k.kind): k
    for k in [
        Kind("v1", "ServiceAccount", "serviceaccounts"),
        Kind("v1", "ConfigMap", "configmaps"),
        Kind("v1", "Secret", "secrets"),
        Kind("v1", "Service", "services"),
        Kind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
        Kind("v1", "Pod", "pods"),
        Kind("v1", "Event", "events"),
        Kind("v1", "Namespace", "namespaces", namespaced=False),
        Kind("v1", "Node", "nodes", namespaced=False),
        Kind("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False),
        Kind("coordination.k8s.io/v1", "Lease", "leases"),
        Kind("apps/v1", "Deployment", "deployments"),
        Kind("apps/v1", "StatefulSet", "statefulsets"),
        Kind("apps/v1", "ReplicaSet", "replicasets"),
        Kind("apps/v1", "ControllerRevision", "controllerrevisions"),
        Kind("batch/v1", "CronJob", "cronjobs"),
        Kind("batch/v1", "Job", "jobs"),
        Kind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Kind("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
        Kind("networking.k8s.io/v1", "Ingress", "ingresses"),
        Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes"),
        Kind("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "referencegrants"),
        Kind("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors"),
        Kind("lighthouse.dev/v1alpha1", "LighthouseBridge", "lighthousebridges"),
    ]
}


def kind_of(api_version: str, kind: str) -> Kind:
    try:
        return KINDS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"unknown kind {api_version}/{kind}: add it to k8s.KINDS") from None


def object_path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None, subresource: str | None = None
) -> str:
    k = kind_of(api_version, kind)
    parts = [k.base]
    if k.namespaced and namespace:
        parts.append(f"namespaces/{quote(namespace, safe='')}")
    parts.append(k.plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE"}
USER_AGENT = f"lighthouse-operator/{__version__}"
# A watch's bytes may pause for a while between events; the API server sends a BOOKMARK about once a minute, so a
# silence much longer than that means the connection is dead (a watch must never hang).
WATCH_READ_TIMEOUT = 150.0


class Kube:
    """One aiohttp session to the API server with kopf's credentials; concurrency is bounded. An api.Client: the
    reconcile reads through it (api.Reader), the applier writes through it (api.Writer)."""

    def __init__(
        self,
        credentials: Callable[[], kopf.ConnectionInfo],
        *,
        max_concurrency: int = 16,
        timeout: float = 30.0,
        field_manager: str = naming.FIELD_MANAGER,
    ):
        self._credentials = credentials
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._info: kopf.ConnectionInfo | None = None
        self._sem = asyncio.Semaphore(max_concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=10)
        self.field_manager = field_manager

    def _new_session(self, info: kopf.ConnectionInfo, limit: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            base_url=info.server.rstrip("/") + "/",
            # A distinct user agent makes the operator's own requests countable in the API server's audit log.
            headers={**info.as_http_headers(), "User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(ssl=info.as_ssl_context(), limit=limit),
            timeout=self._timeout,
        )

    async def _open(self, refresh: bool = False) -> aiohttp.ClientSession:
        if self._session is not None and not refresh:
            return self._session
        if self._session is not None:
            await self._session.close()
        if refresh and self._watch_session is not None:
            await self._watch_session.close()
            self._watch_session = None
        info = self._credentials()
        self._info = info
        self._session = self._new_session(info, limit=32)
        return self._session

    async def _open_watches(self) -> aiohttp.ClientSession:
        """Watches hold their connection for as long as they last: their own pool, so they never starve requests."""
        if self._watch_session is None:
            await self._open()
            assert self._info is not None
            self._watch_session = self._new_session(self._info, limit=0)
        return self._watch_session

    async def close(self) -> None:
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()
        self._session = self._watch_session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        verb: str | None = None,
        deadline: float | None = None,
    ) -> Obj:
        """`verb` names the request in lighthouse_operator_api_requests_total (LIST for a GET of a collection);
        `deadline` (seconds) overrides the client's total timeout (the Lease's requests must fail fast)."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"} if data is not None else None
        limit = aiohttp.ClientTimeout(total=deadline, connect=min(deadline, 10)) if deadline else None
        for attempt in (1, 2):
            session = await self._open(refresh=attempt == 2)
            async with (
                self._sem,
                session.request(
                    method, path.lstrip("/"), params=params, data=data, headers=headers, timeout=limit
                ) as resp,
            ):
                metrics.API_REQUESTS.labels(verb=verb or method, code=str(resp.status)).inc()
                log.debug("Request verb=%s path=%s code=%s", verb or method, path, resp.status)
                text = await resp.text()
                if resp.status == 401 and attempt == 1:
                    log.info("API server said 401: refreshing credentials")
                    continue
                if resp.status >= 400:
                    raise _error(resp.status, text)
                return json.loads(text) if text else {}
        raise AssertionError("unreachable")

    # ---- reads

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return await self.request("GET", object_path(api_version, kind, namespace, name))
        except NotFound:
            return None

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        items: list[Obj] = []
        cont = None
        while True:
            page = await self.list_page(api_version, kind, namespace, label_selector=label_selector, cont=cont)
            items += page.items
            if not page.next:
                return items
            cont = page.next

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
        params = {"limit": str(limit)}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if cont:
            params["continue"] = cont
        out = await self.request("GET", object_path(api_version, kind, namespace), params=params, verb="LIST")
        items: list[Obj] = out.get("items") or []
        for it in items:  # list items come without apiVersion/kind
            it.setdefault("apiVersion", api_version)
            it.setdefault("kind", kind)
        md = out.get("metadata") or {}
        return Page(items, str(md.get("resourceVersion") or ""), md.get("continue") or None)

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
        """One watch request, with bookmarks; ends when the server ends it (timeout_seconds) or the connection goes
        silent for WATCH_READ_TIMEOUT. Raises Gone when `resource_version` expired."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        path = object_path(api_version, kind, namespace).lstrip("/")
        timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=WATCH_READ_TIMEOUT)
        for attempt in (1, 2):
            session = await self._open_watches()
            async with session.get(path, params=params, timeout=timeout) as resp:
                metrics.API_REQUESTS.labels(verb="WATCH", code=str(resp.status)).inc()
                log.debug("Request verb=WATCH path=%s code=%s", path, resp.status)
                if resp.status == 401 and attempt == 1:
                    await self._open(refresh=True)
                    continue
                if resp.status >= 400:
                    raise _error(resp.status, await resp.text())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _watch_event(line, api_version, kind)
                if buffer.strip():
                    yield _watch_event(buffer, api_version, kind)
                return

    # ---- writes

    async def apply(self, manifest: Obj, *, force: bool = True) -> Obj:
        """Server-side apply with the operator's single field manager."""
        md = manifest["metadata"]
        path = object_path(manifest["apiVersion"], manifest["kind"], md.get("namespace"), md["name"])
        params = {"fieldManager": self.field_manager, "force": "true" if force else "false"}
        # JSON is YAML: the apply-patch content type accepts it as it is.
        return await self.request(
            "PATCH", path, params=params, body=manifest, content_type="application/apply-patch+yaml"
        )

    async def create(self, manifest: Obj) -> Obj | None:
        """Create; None when it already exists (the caller reads what is there)."""
        md = manifest["metadata"]
        path = object_path(manifest["apiVersion"], manifest["kind"], md.get("namespace"))
        try:
            return await self.request("POST", path, params={"fieldManager": self.field_manager}, body=manifest)
        except Conflict:
            return None

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
        ctype = "application/merge-patch+json" if merge else "application/json-patch+json"
        try:
            return await self.request(
                "PATCH",
                object_path(api_version, kind, namespace, name, subresource),
                params={"fieldManager": self.field_manager},
                body=patch,
                content_type=ctype,
            )
        except NotFound:
            return None

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid:  # never delete a same-named successor
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", object_path(api_version, kind, namespace, name), body=body)
            return True
        except (NotFound, Conflict):
            return False


class PodProber:
    """An api.Prober: plain HTTP GETs of the pods' own endpoints (the bridges' /health, for FuseAvailable), with a
    short timeout and no credentials, on a session of its own."""

    def __init__(self, timeout: float = 3.0, max_concurrency: int = 16):
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=timeout)
        self._sem = asyncio.Semaphore(max_concurrency)

    async def get_json(self, url: str) -> Obj:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers={"User-Agent": USER_AGENT})
        try:
            async with self._sem, self._session.get(url) as resp:
                doc = await resp.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise OSError(f"{exc.__class__.__name__}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"{url} answered {resp.status} without a JSON object")
        return doc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _watch_event(line: bytes, api_version: str, kind: str) -> WatchEvent:
    raw = json.loads(line)
    obj = raw.get("object") or {}
    if raw.get("type") == "ERROR":  # a Status object: 410 when the resourceVersion expired
        raise _error(int(obj.get("code") or 500), json.dumps(obj))
    obj.setdefault("apiVersion", api_version)
    obj.setdefault("kind", kind)
    return WatchEvent(raw.get("type", ""), obj)


def _error(status: int, text: str) -> ApiError:
    try:
        body = json.loads(text)
    except ValueError:
        body = {"message": text}
    reason, message = body.get("reason", ""), body.get("message", text)
    cls = {400: Invalid, 403: Forbidden, 404: NotFound, 409: Conflict, 410: Gone, 422: Invalid}.get(status, ApiError)
    if status == 500 and "failed to create typed patch object" in message:
        # Server-side apply reports an object that does not fit the kind's schema as a 500 (kubernetes#109298).
        cls = Invalid
    return cls(status, reason, message, body)


def _satisfies(kube: Kube) -> Client:
    """Checked by mypy: Kube is a whole api.Client (so the test fake and the cache can stand in for it)."""
    return kube


def _streams(kube: Kube) -> Stream:
    """Checked by mypy: Kube serves the watch cache (api.Stream)."""
    return kube

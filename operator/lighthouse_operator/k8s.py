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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import kopf

from . import __version__, metrics, naming
from .api import ApiError, Client, Conflict, Invalid, NotFound, Obj

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
        self._info: kopf.ConnectionInfo | None = None
        self._sem = asyncio.Semaphore(max_concurrency)
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=10)
        self.field_manager = field_manager

    async def _open(self, refresh: bool = False) -> aiohttp.ClientSession:
        if self._session is not None and not refresh:
            return self._session
        if self._session is not None:
            await self._session.close()
        info = self._credentials()
        self._info = info
        connector = aiohttp.TCPConnector(ssl=info.as_ssl_context(), limit=32)
        self._session = aiohttp.ClientSession(
            base_url=info.server.rstrip("/") + "/",
            # A distinct user agent makes the operator's own requests countable in the API server's audit log.
            headers={**info.as_http_headers(), "User-Agent": USER_AGENT},
            connector=connector,
            timeout=self._timeout,
        )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"} if data is not None else None
        for attempt in (1, 2):
            session = await self._open(refresh=attempt == 2)
            async with (
                self._sem,
                session.request(method, path.lstrip("/"), params=params, data=data, headers=headers) as resp,
            ):
                metrics.API_REQUESTS.labels(verb=method, code=str(resp.status)).inc()
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
        params = {"labelSelector": label_selector} if label_selector else None
        out = await self.request("GET", object_path(api_version, kind, namespace), params=params)
        items: list[Obj] = out.get("items") or []
        for it in items:  # list items come without apiVersion/kind
            it.setdefault("apiVersion", api_version)
            it.setdefault("kind", kind)
        return items

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


def _error(status: int, text: str) -> ApiError:
    try:
        body = json.loads(text)
    except ValueError:
        body = {"message": text}
    reason, message = body.get("reason", ""), body.get("message", text)
    cls = {400: Invalid, 404: NotFound, 409: Conflict, 422: Invalid}.get(status, ApiError)
    if status == 500 and "failed to create typed patch object" in message:
        # Server-side apply reports an object that does not fit the kind's schema as a 500 (kubernetes#109298).
        cls = Invalid
    return cls(status, reason, message, body)


def _satisfies(kube: Kube) -> Client:
    """Checked by mypy: Kube is a whole api.Client (so the test fake and a future cache can stand in for it)."""
    return kube

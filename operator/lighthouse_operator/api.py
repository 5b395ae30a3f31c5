"""The operator's terms for the Kubernetes API, without I/O: objects, typed errors, the two client interfaces, and
writes as data.

- `Reader` is all the reconcile reads through. k8s.Kube is one; cache.Cache (watches kept in memory) is the one the
  operator runs with, behind the same two methods.
- `Writer` is what the applier needs from a client; the applier is the only code that holds one.
- `Create`, `Patch` and `Delete` are writes as pure decisions describe them (a restore Job to create, a
  ControllerRevision to prune); the applier carries them out, logs and counts them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

Obj = dict[str, Any]
Key = tuple[str, str]  # (kind, name) of a child in the LighthouseBridge's namespace


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, body: Obj | None = None):
        self.status, self.reason, self.message, self.body = status, reason, message, body or {}
        super().__init__(f"{status} {reason}: {message}")


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    pass


class Invalid(ApiError):
    """422: the API server refused the object (validation, immutable field)."""


class Gone(ApiError):
    """410: a watch or list asked for a resourceVersion the API server no longer has (it expired): relist."""


class Forbidden(ApiError):
    """403: RBAC does not allow it."""


class Reader(Protocol):
    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The object, or None when it does not exist."""
        ...

    async def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[Obj]:
        """Objects of a kind (with apiVersion and kind set on each), optionally by label selector."""
        ...


class Writer(Protocol):
    async def apply(self, manifest: Obj, *, force: bool = True) -> Obj:
        """Server-side apply with the operator's field manager."""
        ...

    async def create(self, manifest: Obj) -> Obj | None:
        """None when it already exists."""
        ...

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
        """A merge patch (or JSON patch); None when the object does not exist."""
        ...

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """False when it was already gone (or, with `uid`, replaced by a namesake)."""
        ...


class Prober(Protocol):
    async def get_json(self, url: str) -> Obj:
        """GET a JSON document over plain HTTP from a pod (a bridge's /health), whatever its status code. Raises
        OSError (or asyncio.TimeoutError, ValueError) when there is none."""
        ...


class Client(Reader, Writer, Protocol):
    """A whole client: what main.py builds and hands, split, to the reconcile (Reader) and the applier (Writer)."""


@dataclass(frozen=True)
class Page:
    items: list[Obj]
    resource_version: str  # of the list: a watch from here misses nothing
    next: str | None = None  # the continue token of the next page


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: Obj


class Stream(Protocol):
    """What a watch cache needs from a client: paged lists and watches (k8s.Kube has both)."""

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
    ) -> Page: ...

    def watch(
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
        """Events after `resource_version` until the server ends the watch; Gone when it expired. An ERROR event
        is raised as its ApiError; the iterator ends when the server closes the stream."""
        ...


# ------------------------------------------------------------------------------------------------ writes as data


@dataclass(frozen=True)
class Create:
    manifest: Obj
    reason: str = ""  # why, for the log line

    @property
    def target(self) -> tuple[str, str, str, str]:
        md = self.manifest["metadata"]
        return self.manifest["apiVersion"], self.manifest["kind"], md.get("namespace", ""), md["name"]


@dataclass(frozen=True)
class Patch:
    """A merge patch."""

    api_version: str
    kind: str
    namespace: str
    name: str
    patch: Obj
    reason: str = ""

    @property
    def target(self) -> tuple[str, str, str, str]:
        return self.api_version, self.kind, self.namespace, self.name


@dataclass(frozen=True)
class Delete:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None  # never delete a namesake that replaced it
    propagation: str = "Background"
    reason: str = ""

    @property
    def target(self) -> tuple[str, str, str, str]:
        return self.api_version, self.kind, self.namespace, self.name


Write = Create | Patch | Delete


@dataclass(frozen=True)
class Done:
    """A write that happened: "Created Job/demo-restore"."""

    verb: str  # Created, Updated, Deleted
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.verb} {self.kind}/{self.name}"


__all__ = [
    "ApiError",
    "Client",
    "Conflict",
    "Create",
    "Delete",
    "Done",
    "Forbidden",
    "Gone",
    "Invalid",
    "Key",
    "NotFound",
    "Obj",
    "Page",
    "Patch",
    "Reader",
    "Stream",
    "WatchEvent",
    "Write",
    "Writer",
]

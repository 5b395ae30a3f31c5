"""Revisions of the bridge (and store) pods, and their durable history as ControllerRevisions.

A revision is a short hash of everything that shapes the pods: the pod template the operator builds (minus the fields
it does not own, such as `kubectl rollout restart`'s annotation), the *content* of every Secret and ConfigMap the
template references, `spec.restartNonce` and the LighthouseBridge annotation `lighthouse.dev/restartedAt`.
It is stamped into the template as the `lighthouse.dev/revision` annotation, so a Secret rotation or a nonce bump
changes the template and the Deployment rolls, with no manual step.

Every template the operator applies is also stored as an apps/v1 ControllerRevision owned by the LighthouseBridge
(as StatefulSets do): the last-good template survives operator restarts and is what a rollback restores.
Everything here is pure: the caller reads the referenced objects and the existing ControllerRevisions.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import naming
from .api import Create, Delete, Write
from .builders.common import digest
from .models import LighthouseBridge

Manifest = dict[str, Any]

# Written into the Deployment's pod template by `kubectl rollout restart`. The operator never applies this key, so
# server-side apply leaves it to its owner (kubectl) instead of removing it, and it never enters the revision hash.
FOREIGN_TEMPLATE_ANNOTATIONS = frozenset({naming.A_KUBECTL_RESTARTED_AT})
HISTORY_LIMIT = 10
REVISION_LENGTH = 10

RefKind = Literal["Secret", "ConfigMap"]


@dataclass(frozen=True)
class Ref:
    """A Secret or ConfigMap a pod template reads. keys=None means all of it (a volume or envFrom)."""

    kind: RefKind
    name: str
    keys: frozenset[str] | None


def references(template: Manifest) -> list[Ref]:
    """Every Secret and ConfigMap a pod template reads, merged per object, sorted (kind, name)."""
    wanted: dict[tuple[RefKind, str], set[str] | None] = {}

    def add(kind: RefKind, name: str | None, key: str | None) -> None:
        if not name:
            return
        k = (kind, name)
        if key is None:
            wanted[k] = None
        elif k not in wanted:
            wanted[k] = {key}
        elif wanted[k] is not None:
            wanted[k].add(key)  # type: ignore[union-attr]

    spec = template.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for e in c.get("env") or []:
            vf = e.get("valueFrom") or {}
            if ref := vf.get("secretKeyRef"):
                add("Secret", ref.get("name"), ref.get("key"))
            if ref := vf.get("configMapKeyRef"):
                add("ConfigMap", ref.get("name"), ref.get("key"))
        for ef in c.get("envFrom") or []:
            if ref := ef.get("secretRef"):
                add("Secret", ref.get("name"), None)
            if ref := ef.get("configMapRef"):
                add("ConfigMap", ref.get("name"), None)
    for v in spec.get("volumes") or []:
        if sec := v.get("secret"):
            add("Secret", sec.get("secretName"), None)
        if cm := v.get("configMap"):
            add("ConfigMap", cm.get("name"), None)
        for src in (v.get("projected") or {}).get("sources") or []:
            if sec := src.get("secret"):
                add("Secret", sec.get("name"), None)
            if cm := src.get("configMap"):
                add("ConfigMap", cm.get("name"), None)
    return [Ref(kind, name, None if keys is None else frozenset(keys)) for (kind, name), keys in sorted(wanted.items())]


def _sha(obj: Any) -> str:
    return digest(obj, length=64)


def content_digest(obj: Mapping[str, Any] | None, keys: frozenset[str] | None = None) -> str:
    """Digest of a Secret's or ConfigMap's content (data, binaryData, stringData), optionally only some keys.
    A missing object or key hashes to a marker, so creating it later is a change too."""
    if obj is None:
        return "absent"
    content: dict[str, Any] = {}
    for section in ("data", "binaryData", "stringData"):
        for k, v in (obj.get(section) or {}).items():
            content[k] = v
    if keys is not None:
        content = {k: content.get(k, "\0absent") for k in sorted(keys)}
    return _sha(content)


def owned_template(template: Manifest) -> Manifest:
    """The pod template without what the operator does not own (or derives from this hash)."""
    t = copy.deepcopy(template)
    md = t.get("metadata") or {}
    ann = {
        k: v
        for k, v in (md.get("annotations") or {}).items()
        if k not in FOREIGN_TEMPLATE_ANNOTATIONS and k != naming.A_REVISION
    }
    if ann:
        md["annotations"] = ann
    else:
        md.pop("annotations", None)
    if md:
        t["metadata"] = md
    else:
        t.pop("metadata", None)
    return t


def compute(
    template: Manifest,
    objects: Mapping[tuple[str, str], Mapping[str, Any] | None],
    restart_nonce: str | None = None,
    restarted_at: str | None = None,
    length: int = REVISION_LENGTH,
) -> str:
    """The revision of a pod template. `objects` maps (kind, name) to the referenced Secret/ConfigMap as read from
    the API server (None when absent); objects the template does not reference are ignored, and for a
    secretKeyRef only the referenced key counts, so unrelated edits do not roll the pods."""
    contents = {
        f"{r.kind}/{r.name}": content_digest(objects.get((r.kind, r.name)), r.keys) for r in references(template)
    }
    return _sha(
        {
            "template": owned_template(template),
            "contents": contents,
            "restartNonce": restart_nonce,
            "restartedAt": restarted_at,
        }
    )[:length]


def for_bridge(
    lhb: LighthouseBridge, deployment: Manifest, objects: Mapping[tuple[str, str], Mapping[str, Any] | None]
) -> str:
    """The bridge revision from the built Deployment and the referenced objects' content."""
    return compute(
        deployment["spec"]["template"],
        objects,
        lhb.spec.restart_nonce,
        lhb.metadata.annotations.get(naming.A_RESTARTED_AT),
    )


def stamp(workload: Manifest, revision: str) -> Manifest:
    """A copy of a Deployment/StatefulSet manifest whose pod template carries the revision annotation, and never
    the annotations the operator does not own (server-side apply would otherwise take them over or drop them)."""
    out = copy.deepcopy(workload)
    md = out["spec"]["template"].setdefault("metadata", {})
    ann = {k: v for k, v in (md.get("annotations") or {}).items() if k not in FOREIGN_TEMPLATE_ANNOTATIONS}
    ann[naming.A_REVISION] = revision
    md["annotations"] = ann
    return out


def template_revision(obj: Mapping[str, Any] | None) -> str | None:
    """The revision annotation of a workload's (or ReplicaSet's) pod template."""
    if not obj:
        return None
    tmd = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (tmd.get("annotations") or {}).get(naming.A_REVISION)


# ------------------------------------------------------------------------------------------- ControllerRevisions


def revision_name(lhb_name: str, component: str, revision: str) -> str:
    return f"{lhb_name}-{component}-{revision}"


def revision_labels(lhb_name: str, component: str, revision: str) -> dict[str, str]:
    return {
        naming.L_NAME: naming.APP_NAME,
        naming.L_INSTANCE: lhb_name,
        naming.L_PART_OF: naming.PART_OF,
        naming.L_MANAGED_BY: naming.MANAGED_BY,
        naming.L_REVISION_OF: component,
        naming.L_REVISION: revision,
    }


def controller_revision(
    lhb: LighthouseBridge, component: str, revision: str, template: Manifest, number: int
) -> Manifest:
    """An apps/v1 ControllerRevision holding one pod template exactly as the operator applied it (before server
    defaults, so re-applying it reproduces the same ReplicaSet). Owned by the LighthouseBridge: deleted with it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(lhb.name, component, revision),
            "namespace": lhb.namespace,
            "labels": revision_labels(lhb.name, component, revision),
            "ownerReferences": [lhb.owner_reference()],
        },
        "data": {"template": copy.deepcopy(template)},
        "revision": number,
    }


def stored_template(cr: Mapping[str, Any] | None) -> Manifest | None:
    if not cr:
        return None
    t = (cr.get("data") or {}).get("template")
    return copy.deepcopy(t) if isinstance(t, dict) else None


def find(history: Iterable[Mapping[str, Any]], revision: str | None) -> Mapping[str, Any] | None:
    if not revision:
        return None
    for cr in history:
        if (cr.get("metadata", {}).get("labels") or {}).get(naming.L_REVISION) == revision:
            return cr
    return None


@dataclass(frozen=True)
class HistoryPlan:
    """What to write so that `revision` is recorded and the history stays bounded."""

    create: Manifest | None = None
    # A revision that comes back becomes the newest: the same ControllerRevision under the next number, written by
    # deleting the old one (uid `replaces`) and creating this. Not a patch of `revision`: the API server re-serialises
    # `data` on a patch, and data stored in another byte form (spacing, key order) is then refused as an immutable
    # change ("data: field is immutable"), which left the bridge Stalled.
    recreate: Manifest | None = None
    replaces: str | None = None
    prune: tuple[str, ...] = field(default_factory=tuple)

    def writes(self, namespace: str) -> list[Write]:
        out: list[Write] = []
        if self.create is not None:
            out.append(Create(self.create, reason="RevisionRecorded"))
        if self.recreate is not None:
            name = self.recreate["metadata"]["name"]
            out.append(
                Delete("apps/v1", "ControllerRevision", namespace, name, uid=self.replaces, reason="RevisionReused")
            )
            out.append(Create(self.recreate, reason="RevisionReused"))
        out += [Delete("apps/v1", "ControllerRevision", namespace, name, reason="HistoryLimit") for name in self.prune]
        return out


def plan_history(
    lhb: LighthouseBridge,
    component: str,
    revision: str,
    template: Manifest,
    history: Sequence[Mapping[str, Any]],
    protect: Iterable[str | None] = (),
    limit: int = HISTORY_LIMIT,
) -> HistoryPlan:
    """Record `revision` (create it, or recreate it under the next number when an older one comes back) and pick
    the oldest ones beyond `limit` for deletion, never one in `protect` (desired, serving, lastGood)."""
    numbers = [int(cr.get("revision") or 0) for cr in history]
    top = max(numbers, default=0)
    existing = find(history, revision)
    create = recreate = None
    if existing is None:
        create = controller_revision(lhb, component, revision, template, top + 1)
    elif int(existing.get("revision") or 0) != top:
        recreate = controller_revision(lhb, component, revision, stored_template(existing) or template, top + 1)

    keep = {revision, *(p for p in protect if p)}

    def number(cr: Mapping[str, Any]) -> int:
        if recreate and cr["metadata"]["name"] == recreate["metadata"]["name"]:
            return int(recreate["revision"])
        return int(cr.get("revision") or 0)

    def rev_of(cr: Mapping[str, Any]) -> str | None:
        return (cr["metadata"].get("labels") or {}).get(naming.L_REVISION)

    protected = sum(1 for cr in history if rev_of(cr) in keep) + (1 if create else 0)
    others = sorted((cr for cr in history if rev_of(cr) not in keep), key=number, reverse=True)
    room = max(limit - protected, 0)
    prune = [cr["metadata"]["name"] for cr in others[room:]]
    replaces = (existing or {}).get("metadata", {}).get("uid") if recreate else None
    return HistoryPlan(create=create, recreate=recreate, replaces=replaces, prune=tuple(prune))


__all__ = [
    "FOREIGN_TEMPLATE_ANNOTATIONS",
    "HISTORY_LIMIT",
    "HistoryPlan",
    "Ref",
    "compute",
    "content_digest",
    "controller_revision",
    "find",
    "for_bridge",
    "owned_template",
    "plan_history",
    "references",
    "revision_labels",
    "revision_name",
    "stamp",
    "stored_template",
    "template_revision",
]

"""The only code that writes to the API server: children by server-side apply with one field manager, create-once
Secrets, pruning, the deletion policy, the writes pure decisions ask for (Jobs, ControllerRevisions, stuck pods:
api.Create/Patch/Delete), status patches and Events.

Every write is logged the same way ("Created Job name=... namespace=... reason=...") and counted the same way
(lighthouse_operator_child_writes_total{kind,action}; status patches in ..._status_writes_total). Unchanged children
are not even sent: an idle operator makes no write requests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import builders, clock, drift, events, metrics, naming
from .api import Create, Delete, Done, Key, NotFound, Obj, Patch, Reader, Write, Writer
from .builders import secrets as secret_builders
from .models import API_VERSION, KIND, LighthouseBridge

log = logging.getLogger(__name__)

Action = Literal["create", "update", "delete"]
VERBS: dict[Action, str] = {"create": "Created", "update": "Updated", "delete": "Deleted"}


def key(obj: Mapping[str, Any]) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def with_hash(manifest: Obj) -> tuple[Obj, str]:
    h = builders.digest(manifest, length=16)
    md = dict(manifest["metadata"])
    md["annotations"] = {**md.get("annotations", {}), naming.A_HASH: h}
    return {**manifest, "metadata": md}, h


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences") or [])


def _marker(obj: Obj) -> tuple[Any, ...]:
    md = obj["metadata"]
    return (
        md.get("uid"),
        md.get("generation") or md.get("resourceVersion"),
        builders.digest(md.get("labels")),
        builders.digest(md.get("annotations")),
    )


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    objects: dict[Key, Obj] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.pruned)


@dataclass
class SecretsReport:
    created: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    user_supplied: list[str] = field(default_factory=list)


class Applier:
    def __init__(self, writer: Writer, reader: Reader, instance: str | None = None):
        self.writer = writer
        self.reader = reader  # what the applier must know before it writes (an existing Secret, a ServiceMonitor)
        self.instance = instance or os.environ.get("POD_NAME") or socket.gethostname()  # Events' reportingInstance
        # (namespace, kind, name) -> (hash, marker) right after our own apply: when the server normalises a field
        # so that covers() never matches, an unchanged marker still proves nobody touched the object since.
        self._applied: dict[tuple[str, str, str], tuple[str, tuple[Any, ...]]] = {}

    # ------------------------------------------------------------------------------------------------ one way out

    def _wrote(self, action: Action, kind: str, name: str, namespace: str, **fields: str) -> Done:
        metrics.CHILD_WRITES.labels(kind=kind, action=action).inc()
        extra = "".join(f" {k}={v}" for k, v in fields.items() if v)
        log.info("%s %s name=%s namespace=%s%s", VERBS[action], kind, name, namespace, extra)
        return Done(VERBS[action], kind, name)

    async def perform(self, writes: Iterable[Write]) -> list[Done]:
        """Carry out writes a decision asked for; returns those that happened (a create of something that exists,
        a patch or delete of something gone, did not)."""
        done = []
        for w in writes:
            api_version, kind, namespace, name = w.target
            if isinstance(w, Create):
                if await self.writer.create(w.manifest) is not None:
                    done.append(self._wrote("create", kind, name, namespace, reason=w.reason))
            elif isinstance(w, Patch):
                if await self.writer.patch(api_version, kind, namespace, name, w.patch) is not None:
                    done.append(self._wrote("update", kind, name, namespace, reason=w.reason))
            elif await self.writer.delete(api_version, kind, namespace, name, propagation=w.propagation, uid=w.uid):
                done.append(self._wrote("delete", kind, name, namespace, reason=w.reason))
        return done

    async def patch_status(self, body: Mapping[str, Any], patch: Obj) -> Obj | None:
        """A merge patch of a LighthouseBridge's status subresource (None when the object is gone)."""
        md = body["metadata"]
        result = await self.writer.patch(
            API_VERSION, KIND, md["namespace"], md["name"], {"status": patch}, subresource="status"
        )
        metrics.STATUS_WRITES.inc()
        log.debug(
            "Updated %s status name=%s namespace=%s fields=%s", KIND, md["name"], md["namespace"], ",".join(patch)
        )
        return result

    async def post(self, involved: Mapping[str, Any], posted: Iterable[events.Event]) -> None:
        """Events about `involved`. Failures are logged, never raised: an Event must not fail a pass."""
        md = involved.get("metadata") or {}
        for e in posted:
            manifest = events.manifest(involved, e, clock.stamp(), self.instance)
            level = logging.WARNING if e.type == "Warning" else logging.INFO
            try:
                await self.writer.create(manifest)
            except Exception as err:
                log.warning("Could not post Event reason=%s error=%s", e.reason, err)
                continue
            metrics.CHILD_WRITES.labels(kind="Event", action="create").inc()
            log.log(
                level,
                "Created Event name=%s namespace=%s type=%s reason=%s message=%s",
                md.get("name"),
                md.get("namespace"),
                e.type,
                e.reason,
                e.message,
            )

    # ---------------------------------------------------------------------------------------------------- children

    async def ensure_secrets(self, lhb: LighthouseBridge) -> SecretsReport:
        """Generated Secrets are created once and never re-applied, so a password is never rotated by accident.
        A Secret the user made under the same name is used as it is."""
        report = SecretsReport()
        for manifest in secret_builders.generated_secrets(lhb):
            name = manifest["metadata"]["name"]
            existing = await self.reader.get("v1", "Secret", lhb.namespace, name)
            if existing is None:
                if await self.perform([Create(manifest, reason="Generated")]):
                    report.created.append(name)
                continue
            labels = existing["metadata"].get("labels") or {}
            if labels.get(naming.L_MANAGED_BY) != naming.MANAGED_BY:
                report.user_supplied.append(name)
                continue
            if not controlled_by(existing, lhb.metadata.uid):
                # Ours from an earlier LighthouseBridge of the same name (deletionPolicy Retain): adopt it, keep data.
                refs = [r for r in existing["metadata"].get("ownerReferences") or [] if not r.get("controller")]
                patch = {
                    "metadata": {
                        "ownerReferences": [*refs, lhb.owner_reference()],
                        "labels": {naming.L_RETAINED: None},
                        "resourceVersion": existing["metadata"]["resourceVersion"],
                    }
                }
                if await self.perform([Patch("v1", "Secret", lhb.namespace, name, patch, reason="Adopted")]):
                    report.adopted.append(name)
        return report

    async def apply(self, lhb: LighthouseBridge, desired: list[Obj], observed: Mapping[Key, Obj]) -> ApplyReport:
        report = ApplyReport(objects=dict(observed))
        for manifest in desired:
            k = key(manifest)
            current = observed.get(k)
            manifest, warnings = drift.keep_immutable(manifest, current)
            report.warnings += warnings
            manifest, h = with_hash(manifest)
            cache_key = (lhb.namespace, *k)
            if current is not None and (current["metadata"].get("annotations") or {}).get(naming.A_HASH) == h:
                if drift.covers(current, manifest) or self._applied.get(cache_key) == (h, _marker(current)):
                    report.unchanged += 1
                    continue
            result = await self.writer.apply(manifest)
            self._applied[cache_key] = (h, _marker(result))
            report.objects[k] = result
            (report.created if current is None else report.updated).append(f"{k[0]}/{k[1]}")
            self._wrote("create" if current is None else "update", k[0], k[1], lhb.namespace)
        return report

    async def apply_optional(
        self, lhb: LighthouseBridge, api_version: str, kind: str, name: str, manifest: Obj | None, report: ApplyReport
    ) -> None:
        """A child whose kind may not exist in the cluster (ServiceMonitor without the Prometheus Operator):
        read by its labels (the cache answers; "no such kind" reads as none), apply or delete, and turn "no such
        kind" into a warning."""
        try:
            found = await self.reader.list(api_version, kind, lhb.namespace, naming.instance_selector(lhb.name))
        except NotFound:
            found = []
        current = next((o for o in found if o["metadata"]["name"] == name), None)
        if manifest is None:
            if current is not None and controlled_by(current, lhb.metadata.uid):
                gone = Delete(
                    api_version, kind, lhb.namespace, name, current["metadata"]["uid"], reason="NoLongerWanted"
                )
                if await self.perform([gone]):
                    report.pruned.append(f"{kind}/{name}")
            return
        try:
            sub = await self.apply(lhb, [manifest], {(kind, name): current} if current else {})
        except NotFound:
            report.warnings.append(f"{kind} requested but its CRD ({api_version}) is not installed")
            return
        report.created += sub.created
        report.updated += sub.updated
        report.unchanged += sub.unchanged
        report.objects.update(sub.objects)

    async def prune(self, lhb: LighthouseBridge, desired: list[Obj], report: ApplyReport) -> None:
        """Delete children this spec no longer wants (never Secrets or PVCs: they follow deletionPolicy)."""
        wanted = {key(m) for m in desired}
        for k, obj in list(report.objects.items()):
            if k in wanted or not controlled_by(obj, lhb.metadata.uid):
                continue
            uid = obj["metadata"].get("uid")
            if await self.perform([Delete(obj["apiVersion"], k[0], lhb.namespace, k[1], uid, reason="NoLongerWanted")]):
                report.pruned.append(f"{k[0]}/{k[1]}")
            del report.objects[k]
            self._applied.pop((lhb.namespace, *k), None)

    async def release(self, lhb: LighthouseBridge) -> list[str]:
        """What deletionPolicy says happens to data: Retain orphans PVCs and Secrets (labelled, ownerReferences
        removed, so garbage collection spares them); Delete removes them. Returns what was done."""
        sel = naming.instance_selector(lhb.name)
        # Secrets by name: the generated ones are the only Secrets the operator labels, and it may not be allowed
        # to list Secrets (the chart grants no cluster-wide list or watch on them).
        n = naming.Names(lhb.name)
        names = [n.postgres_secret, n.redis_secret, n.admin_secret]  # whichever modes the stores had
        pvcs = await self.reader.list("v1", "PersistentVolumeClaim", lhb.namespace, sel)
        found = await asyncio.gather(*(self.reader.get("v1", "Secret", lhb.namespace, name) for name in names))
        want = {naming.L_INSTANCE: lhb.name, naming.L_MANAGED_BY: naming.MANAGED_BY}
        secrets = [
            s
            for s in found
            if s is not None and all((s["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())
        ]
        done = []
        policy = lhb.spec.deletion_policy
        for obj in [*pvcs, *secrets]:
            kind, name = obj["kind"], obj["metadata"]["name"]
            if policy == "Delete":
                uid = obj["metadata"]["uid"]
                if await self.perform([Delete("v1", kind, lhb.namespace, name, uid, reason="DeletionPolicyDelete")]):
                    done.append(f"deleted {kind}/{name}")
                continue
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != lhb.metadata.uid]
            patch = {
                "metadata": {
                    "ownerReferences": refs or None,
                    "labels": {naming.L_RETAINED: "true"},
                    "resourceVersion": obj["metadata"]["resourceVersion"],
                }
            }
            await self.perform([Patch("v1", kind, lhb.namespace, name, patch, reason="DeletionPolicyRetain")])
            done.append(f"retained {kind}/{name}")
        for k in [k for k in self._applied if k[0] == lhb.namespace and k[2].startswith(f"{lhb.name}-")]:
            self._applied.pop(k, None)
        return done


__all__ = ["Applier", "ApplyReport", "SecretsReport", "controlled_by", "key", "with_hash"]

"""The only code that writes children: server-side apply with one field manager, create-once Secrets, pruning,
and the deletion policy. Unchanged children are not even sent: an idle operator makes no write requests."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from . import builders, drift, metrics, naming
from .builders import secrets as secret_builders
from .k8s import Kube, NotFound, Obj
from .models import LighthouseBridge

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (kind, name)


def key(obj: Obj) -> Key:
    return obj["kind"], obj["metadata"]["name"]


def with_hash(manifest: Obj) -> tuple[Obj, str]:
    h = builders.digest(manifest, length=16)
    md = dict(manifest["metadata"])
    md["annotations"] = {**md.get("annotations", {}), naming.A_HASH: h}
    return {**manifest, "metadata": md}, h


def controlled_by(obj: Obj, uid: str) -> bool:
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
    def __init__(self, kube: Kube):
        self.kube = kube
        # (namespace, kind, name) -> (hash, marker) right after our own apply: when the server normalises a field
        # so that covers() never matches, an unchanged marker still proves nobody touched the object since.
        self._applied: dict[tuple[str, str, str], tuple[str, tuple[Any, ...]]] = {}

    async def observe(self, lhb: LighthouseBridge) -> dict[Key, Obj]:
        """Children of this LighthouseBridge by label, one LIST per kind."""
        sel = naming.instance_selector(lhb.name)
        lists = await asyncio.gather(
            *(self.kube.list(api_version, kind, lhb.namespace, sel) for api_version, kind in builders.PRUNABLE)
        )
        return {key(o): o for items in lists for o in items}

    async def ensure_secrets(self, lhb: LighthouseBridge) -> SecretsReport:
        """Generated Secrets are created once and never re-applied, so a password is never rotated by accident.
        A Secret the user made under the same name is used as it is."""
        report = SecretsReport()
        for manifest in secret_builders.generated_secrets(lhb):
            name = manifest["metadata"]["name"]
            existing = await self.kube.get("v1", "Secret", lhb.namespace, name)
            if existing is None:
                if await self.kube.create(manifest) is not None:
                    report.created.append(name)
                    metrics.CHILD_WRITES.labels(kind="Secret", action="create").inc()
                    log.info("Created Secret name=%s namespace=%s", name, lhb.namespace)
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
                await self.kube.patch("v1", "Secret", lhb.namespace, name, patch)
                report.adopted.append(name)
                metrics.CHILD_WRITES.labels(kind="Secret", action="adopt").inc()
                log.info("Adopted Secret name=%s namespace=%s", name, lhb.namespace)
        return report

    async def apply(self, lhb: LighthouseBridge, desired: list[Obj], observed: dict[Key, Obj]) -> ApplyReport:
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
            result = await self.kube.apply(manifest)
            self._applied[cache_key] = (h, _marker(result))
            report.objects[k] = result
            action = "create" if current is None else "update"
            (report.created if current is None else report.updated).append(f"{k[0]}/{k[1]}")
            metrics.CHILD_WRITES.labels(kind=k[0], action=action).inc()
            log.info(
                "%s %s name=%s namespace=%s", "Created" if current is None else "Updated", k[0], k[1], lhb.namespace
            )
        return report

    async def apply_optional(
        self, lhb: LighthouseBridge, api_version: str, kind: str, name: str, manifest: Obj | None, report: ApplyReport
    ) -> None:
        """A child whose kind may not exist in the cluster (ServiceMonitor without the Prometheus Operator):
        read by name (no LIST that would fail), apply or delete, and turn "no such kind" into a warning."""
        current = await self.kube.get(api_version, kind, lhb.namespace, name)
        if manifest is None:
            if current is not None and controlled_by(current, lhb.metadata.uid):
                await self.kube.delete(api_version, kind, lhb.namespace, name, uid=current["metadata"]["uid"])
                report.pruned.append(f"{kind}/{name}")
                log.info("Deleted %s name=%s namespace=%s reason=NoLongerWanted", kind, name, lhb.namespace)
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
            if await self.kube.delete(
                obj["apiVersion"], obj["kind"], lhb.namespace, k[1], uid=obj["metadata"].get("uid")
            ):
                report.pruned.append(f"{k[0]}/{k[1]}")
                metrics.CHILD_WRITES.labels(kind=k[0], action="delete").inc()
                log.info("Deleted %s name=%s namespace=%s reason=NoLongerWanted", k[0], k[1], lhb.namespace)
            del report.objects[k]
            self._applied.pop((lhb.namespace, *k), None)

    async def release(self, lhb: LighthouseBridge) -> list[str]:
        """What deletionPolicy says happens to data: Retain orphans PVCs and Secrets (labelled, ownerReferences
        removed, so garbage collection spares them); Delete removes them. Returns what was done."""
        sel = naming.instance_selector(lhb.name)
        pvcs, secrets = await asyncio.gather(
            self.kube.list("v1", "PersistentVolumeClaim", lhb.namespace, sel),
            self.kube.list("v1", "Secret", lhb.namespace, sel),
        )
        done = []
        policy = lhb.spec.deletion_policy
        for obj in [*pvcs, *secrets]:
            kind, name = obj["kind"], obj["metadata"]["name"]
            if policy == "Delete":
                if await self.kube.delete("v1", kind, lhb.namespace, name, uid=obj["metadata"]["uid"]):
                    done.append(f"deleted {kind}/{name}")
                    log.info("Deleted %s name=%s namespace=%s reason=DeletionPolicyDelete", kind, name, lhb.namespace)
                continue
            refs = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != lhb.metadata.uid]
            patch = {
                "metadata": {
                    "ownerReferences": refs or None,
                    "labels": {naming.L_RETAINED: "true"},
                    "resourceVersion": obj["metadata"]["resourceVersion"],
                }
            }
            await self.kube.patch("v1", kind, lhb.namespace, name, patch)
            done.append(f"retained {kind}/{name}")
            log.info("Retained %s name=%s namespace=%s", kind, name, lhb.namespace)
        for k in [k for k in self._applied if k[0] == lhb.namespace and k[2].startswith(f"{lhb.name}-")]:
            self._applied.pop(k, None)
        return done

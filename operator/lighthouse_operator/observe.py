"""Reads: what a reconcile looks at, each through the Reader interface (api.Reader) and nothing else.

The operator runs with cache.Cache as the Reader (watches kept in memory), k8s.Kube in tests and tools. Every
function reads only what its decision needs (no pods unless a Job has something to say, no restore Job for a
bridge that never asked for a restore), and names what it wants by the labels the operator sets (instance and
managed-by), which is what the cache answers from memory; only objects the user names in the spec are read by name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from . import backup, builders, clock, fuse, jobs, naming, restore, rollout, storage
from .api import ApiError, Key, Obj, Prober, Reader
from .builders import backup as backup_builder
from .models import LighthouseBridge


async def children(reader: Reader, lhb: LighthouseBridge) -> dict[Key, Obj]:
    """Children of this LighthouseBridge by label, one LIST per kind the operator prunes."""
    sel = naming.instance_selector(lhb.name)
    lists = await asyncio.gather(
        *(reader.list(api_version, kind, lhb.namespace, sel) for api_version, kind in builders.PRUNABLE)
    )
    return {(o["kind"], o["metadata"]["name"]): o for items in lists for o in items}


async def missing_references(reader: Reader, lhb: LighthouseBridge) -> list[str]:
    """Objects the spec names but the operator does not create, when they (or their key) do not exist."""
    s, ns = lhb.spec, lhb.namespace
    checks: list[tuple[str, str, str, str | None]] = []  # (kind, name, what, secret key)
    for what, store in (("redis", s.redis), ("postgres", s.postgres)):
        if store.mode == "external" and store.external and store.external.secret_ref:
            ref = store.external.secret_ref
            checks.append(("Secret", ref.name, f"{what}.external.secretRef", ref.key))
    for what, s3 in (("backup", s.backup.s3 if s.backup else None), ("restore", s.restore.s3 if s.restore else None)):
        if s3 and s3.credentials_secret:
            checks.append(("Secret", s3.credentials_secret, f"{what}.s3.credentialsSecret", "AWS_ACCESS_KEY_ID"))
    if s.project.pvc:
        checks.append(("PersistentVolumeClaim", s.project.pvc.claim_name, "project.pvc.claimName", None))
    if s.pod_template.service_account_name:
        checks.append(("ServiceAccount", s.pod_template.service_account_name, "podTemplate.serviceAccountName", None))
    found = await asyncio.gather(*(reader.get("v1", kind, ns, name) for kind, name, _, _ in checks))
    out = []
    for (kind, name, what, key), obj in zip(checks, found, strict=True):
        if obj is None:
            out.append(f"{what}: {kind} {ns}/{name} not found")
        elif key and key not in (obj.get("data") or {}):
            out.append(f"{what}: Secret {ns}/{name} has no key {key!r}")
    return out


async def volumes(reader: Reader, lhb: LighthouseBridge) -> tuple[list[Obj], dict[str, Obj | None]]:
    """The managed stores' PVCs, and the StorageClass of each one the spec wants bigger (storage.py); nothing for
    a bridge without managed stores."""
    if not storage.desired_sizes(lhb):
        return [], {}
    pvcs = await reader.list("v1", "PersistentVolumeClaim", lhb.namespace, naming.instance_selector(lhb.name))
    names = sorted(storage.classes_needed(lhb, pvcs))
    found = await asyncio.gather(*(reader.get("storage.k8s.io/v1", "StorageClass", None, n) for n in names))
    return pvcs, dict(zip(names, found, strict=True))


# ----------------------------------------------------------------------------------------------------------- Jobs


async def restore_job(reader: Reader, lhb: LighthouseBridge) -> jobs.JobView | None:
    """The restore Job (and, once it exists, its pods: why it fails, which backup `latest` was), while a restore is
    pending; None otherwise."""
    if not restore.needs_look(lhb):
        return None
    name = naming.Names(lhb.name).restore
    job = await reader.get("batch/v1", "Job", lhb.namespace, name)
    if job is None:
        return None
    pods = await reader.list(
        "v1", "Pod", lhb.namespace, f"{naming.instance_selector(lhb.name)},{naming.L_JOB_NAME}={name}"
    )
    return jobs.view(job, pods, restore.CONTAINER, lhb.metadata.uid)


async def backup_jobs(reader: Reader, lhb: LighthouseBridge) -> list[jobs.JobView] | None:
    """The backup Jobs (the CronJob's, on-demand and final), with their pods only while a finished Job is newer than
    the last success (its result or failure is news); None for a bridge that never had to do with backups."""
    if not backup.wanted(lhb):
        return None
    sel = naming.instance_selector(lhb.name, naming.BACKUP)
    found = await reader.list("batch/v1", "Job", lhb.namespace, sel)
    last = clock.parse((lhb.status or {}).get("lastSuccessfulBackupTime"))
    views = [jobs.view(j, [], backup.CONTAINER) for j in found]
    if any(v.finished and (last is None or v.finished > last) for v in views):
        pods = await reader.list("v1", "Pod", lhb.namespace, sel)
        views = [jobs.view(j, pods, backup.CONTAINER) for j in found]
    return views


async def final_backup_job(reader: Reader, lhb: LighthouseBridge) -> jobs.JobView | None:
    """deletionPolicy Snapshot: the final backup Job and its pods, if it exists."""
    name = backup_builder.final_job_name(lhb)
    job = await reader.get("batch/v1", "Job", lhb.namespace, name)
    if job is None:
        return None
    pods = await reader.list("v1", "Pod", lhb.namespace, naming.instance_selector(lhb.name, naming.BACKUP))
    return jobs.view(job, pods, backup.CONTAINER)


# ------------------------------------------------------------------------------------------------------ rollouts


async def workload(
    reader: Reader, lhb: LighthouseBridge, component: str, name: str, policy: rollout.Policy
) -> rollout.View | None:
    """A judged workload as the health gate sees it: a Deployment with its ReplicaSets and pods, or a StatefulSet
    with its pods."""
    ns, sel = lhb.namespace, naming.selector_string(lhb.name, component)
    if rollout.WORKLOADS[component] == "Deployment":
        dep, rss, pods = await asyncio.gather(
            reader.get("apps/v1", "Deployment", ns, name),
            reader.list("apps/v1", "ReplicaSet", ns, sel),
            reader.list("v1", "Pod", ns, sel),
        )
        return rollout.view_deployment(dep, rss, pods, policy)
    sts, pods = await asyncio.gather(reader.get("apps/v1", "StatefulSet", ns, name), reader.list("v1", "Pod", ns, sel))
    return rollout.view_statefulset(sts, pods, policy)


async def history(reader: Reader, lhb: LighthouseBridge, component: str) -> list[Obj]:
    """The ControllerRevisions recording a workload's pod templates."""
    return await reader.list(
        "apps/v1", "ControllerRevision", lhb.namespace, naming.history_selector(lhb.name, component)
    )


async def objects(reader: Reader, namespace: str, keys: Iterable[Key]) -> dict[Key, Obj | None]:
    """Secrets and ConfigMaps by (kind, name); None for those that do not exist."""
    keys = list(keys)
    found = await asyncio.gather(*(reader.get("v1", kind, namespace, name) for kind, name in keys))
    return dict(zip(keys, found, strict=True))


__all__ = [
    "backup_jobs",
    "children",
    "final_backup_job",
    "history",
    "missing_references",
    "objects",
    "restore_job",
    "volumes",
    "workload",
]


# ------------------------------------------------------------------------------------------------------ FUSE


async def fuse_answers(
    reader: Reader, prober: Prober | None, lhb: LighthouseBridge
) -> tuple[dict[str, Any], dict[str, Obj]]:
    """The /health answer (or why there is none) of each bridge pod fuse.probe_targets picks; in mode userNamespaces
    also the Nodes the pods are bound to (their runtime's features; unreadable without RBAC for Nodes: skipped)."""
    if not lhb.spec.fuse.active:
        return {}, {}
    pods = await reader.list("v1", "Pod", lhb.namespace, naming.selector_string(lhb.name, naming.BRIDGE))
    targets = fuse.probe_targets(pods) if prober is not None else {}

    async def ask(url: str) -> Any:
        try:
            return await prober.get_json(url)  # type: ignore[union-attr]
        except (TimeoutError, OSError, ValueError) as exc:
            return f"{url}: {exc.__class__.__name__}: {exc}"

    answers = dict(zip(targets, await asyncio.gather(*(ask(u) for u in targets.values())), strict=True))
    nodes: dict[str, Obj] = {}
    if lhb.spec.fuse.mode == "userNamespaces":
        for name in sorted({n for p in pods if (n := (p.get("spec") or {}).get("nodeName"))}):
            try:
                if (node := await reader.get("v1", "Node", None, name)) is not None:
                    nodes[name] = node
            except ApiError:
                pass
    return answers, nodes

"""Growing a managed store's volume (`spec.postgres.managed.storage.size`, `spec.redis.managed.storage.size`).

A StatefulSet's volumeClaimTemplates never change after creation, so the operator grows the PersistentVolumeClaims
themselves (`data-<name>-<store>-<ordinal>`), and only when their StorageClass allows it (`allowVolumeExpansion:
true`); the volume driver and the kubelet then grow the volume and its file system. Pure: the PVCs and their
StorageClasses in, a plan out (observe.volumes reads, reconcile.py acts):

- the spec asks for more than a claim requests: patch the claim's request (Bound claims; an unbound one waits), or,
  when the class does not allow expansion (or is gone), say so: a warning, so Degraded=True, SpecNotFullyApplied;
- the spec asks for less: refused (volumes never shrink), a warning; the claim keeps its size;
- a claim requests more than it has yet: the store is not ready until it has (Progressing), with what it waits for
  (a file system resize that needs the pod restarted is named as such); a resize the driver refused is a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from . import naming
from .api import Obj, Patch
from .drift import parse_quantity
from .models import LighthouseBridge, ManagedStore

API_VERSION, KIND = "v1", "PersistentVolumeClaim"
RESIZE_PENDING = "FileSystemResizePending"
RESIZE_ERRORS = frozenset({"ControllerResizeError", "NodeResizeError"})
INFEASIBLE = frozenset({"ControllerResizeInfeasible", "NodeResizeInfeasible"})


@dataclass(frozen=True)
class Claim:
    """What matters of one PVC of a managed store."""

    name: str
    component: str  # postgres or redis
    requested: str | int | None
    capacity: str | int | None
    bound: bool
    storage_class: str | None
    conditions: Mapping[str, str] = field(default_factory=dict)  # True condition type -> message
    allocation: str | None = None  # status.allocatedResourceStatuses["storage"]


def _quantity(value: str | int | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return parse_quantity(value)
    except ValueError:
        return None


def desired_sizes(lhb: LighthouseBridge) -> dict[str, str | int]:
    """Component -> the storage size its spec asks for, for the managed stores."""
    s = lhb.spec
    return {
        comp: (store.managed or ManagedStore()).storage.size
        for comp, store in ((naming.POSTGRES, s.postgres), (naming.REDIS, s.redis))
        if store.mode == "managed"
    }


def claims(lhb: LighthouseBridge, pvcs: Iterable[Obj]) -> list[Claim]:
    """The data claims of the managed stores' StatefulSets, by name (`data-<statefulset>-<ordinal>`)."""
    n = naming.Names(lhb.name)
    prefixes = {f"data-{n.postgres}-": naming.POSTGRES, f"data-{n.redis}-": naming.REDIS}
    out = []
    for pvc in pvcs:
        md, spec, st = pvc.get("metadata") or {}, pvc.get("spec") or {}, pvc.get("status") or {}
        name = md.get("name", "")
        comp = next((c for p, c in prefixes.items() if name.startswith(p) and name[len(p) :].isdigit()), None)
        if comp is None or md.get("deletionTimestamp"):
            continue
        out.append(
            Claim(
                name=name,
                component=comp,
                requested=((spec.get("resources") or {}).get("requests") or {}).get("storage"),
                capacity=(st.get("capacity") or {}).get("storage"),
                bound=st.get("phase") == "Bound",
                storage_class=spec.get("storageClassName"),
                conditions={
                    c.get("type", ""): c.get("message") or c.get("reason") or ""
                    for c in st.get("conditions") or []
                    if c.get("status") == "True"
                },
                allocation=(st.get("allocatedResourceStatuses") or {}).get("storage"),
            )
        )
    return sorted(out, key=lambda c: c.name)


def classes_needed(lhb: LighthouseBridge, pvcs: Iterable[Obj]) -> set[str]:
    """The StorageClasses to read: those of claims the spec wants bigger (nothing else needs one)."""
    want = desired_sizes(lhb)
    out = set()
    for c in claims(lhb, pvcs):
        d, r = _quantity(want.get(c.component)), _quantity(c.requested)
        if d is not None and r is not None and d > r and c.storage_class:
            out.add(c.storage_class)
    return out


@dataclass(frozen=True)
class Plan:
    writes: tuple[Patch, ...] = ()
    warnings: tuple[str, ...] = ()  # Degraded=True, SpecNotFullyApplied
    progress: Mapping[str, str] = field(default_factory=dict)  # component -> what its volume waits for
    growing: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # claim -> (from, to), for the Event


def plan(lhb: LighthouseBridge, pvcs: Iterable[Obj], classes: Mapping[str, Obj | None]) -> Plan:
    want = desired_sizes(lhb)
    writes: list[Patch] = []
    warnings: list[str] = []
    progress: dict[str, list[str]] = {}
    growing: dict[str, tuple[str, str]] = {}
    for c in claims(lhb, pvcs):
        size = want.get(c.component)
        d, r, cap = _quantity(size), _quantity(c.requested), _quantity(c.capacity)
        if size is None or d is None or r is None:
            continue
        if d < r:
            warnings.append(
                f"{c.component}: storage cannot shrink: PVC {c.name} requests {c.requested}, the spec asks for "
                f"{size}; it stays {c.requested}"
            )
        elif d > r:
            sc = classes.get(c.storage_class) if c.storage_class else None
            why = f"{c.component}: cannot grow PVC {c.name} from {c.requested} to {size}: "
            if not c.storage_class:
                warnings.append(why + "it has no StorageClass")
            elif sc is None:
                warnings.append(why + f"its StorageClass {c.storage_class} does not exist")
            elif sc.get("allowVolumeExpansion") is not True:
                warnings.append(
                    why + f"StorageClass {c.storage_class} does not allow volume expansion "
                    f"(allowVolumeExpansion is not true); it stays {c.requested}"
                )
            elif not c.bound:
                progress.setdefault(c.component, []).append(f"PVC {c.name} grows to {size} once it is bound")
            else:
                patch = {"spec": {"resources": {"requests": {"storage": size}}}}
                writes.append(Patch(API_VERSION, KIND, lhb.namespace, c.name, patch, reason="ExpandVolume"))
                growing[c.name] = (str(c.requested), str(size))
                progress.setdefault(c.component, []).append(f"expanding PVC {c.name} from {c.requested} to {size}")
        if d > r or (cap is not None and cap >= r):
            continue
        failed = [f"{t}: {m}" for t, m in c.conditions.items() if t in RESIZE_ERRORS]
        if c.allocation in INFEASIBLE:
            failed.append(c.allocation)
        if failed:
            warnings.append(f"{c.component}: PVC {c.name} could not grow to {c.requested}: {'; '.join(failed)}")
        elif cap is not None and c.bound:
            if RESIZE_PENDING in c.conditions:
                step = f"PVC {c.name} has grown to {c.requested}; its file system grows when the pod restarts"
            else:
                step = f"expanding PVC {c.name} from {c.capacity} to {c.requested}"
            progress.setdefault(c.component, []).append(step)
    return Plan(tuple(writes), tuple(warnings), {k: "; ".join(v) for k, v in progress.items()}, growing)


__all__ = ["Claim", "Plan", "claims", "classes_needed", "desired_sizes", "plan"]

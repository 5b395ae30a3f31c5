"""What must hold after any storm of changes and operator kills (tests/integration/operator/test_chaos.py and
benchmarks/chaos_bench.py): every LighthouseBridge has exactly the children its spec calls for (no duplicate, none
missing), nothing the operator labels belongs to a bridge that is gone (no orphan), and no revision was recorded or
rolled out twice.

`problems()` is pure: it takes the objects as listed (kubectl get ... -o json items) and returns what is wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from lighthouse_operator import builders, naming
from lighthouse_operator.builders import secrets as secret_builders
from lighthouse_operator.models import LighthouseBridge

# Everything the operator creates or its children make, for `kubectl get -l app.kubernetes.io/managed-by=...`.
KINDS = (
    "deployments,statefulsets,services,configmaps,serviceaccounts,networkpolicies,poddisruptionbudgets,cronjobs,"
    "secrets,persistentvolumeclaims,replicasets,controllerrevisions,jobs"
)
FIXED_NAMES = {"Deployment", "StatefulSet", "Service", "ConfigMap", "ServiceAccount", "NetworkPolicy",
               "PodDisruptionBudget", "CronJob", "Secret", "PersistentVolumeClaim"}  # fmt: skip


def expected(bridge: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every child with a fixed name that this bridge's spec calls for."""
    lhb = LighthouseBridge.from_body(dict(bridge))
    out = {(m["kind"], m["metadata"]["name"]) for m in builders.desired_children(lhb)}
    out |= {("Secret", m["metadata"]["name"]) for m in secret_builders.generated_secrets(lhb, lambda: "x")}
    n = naming.Names(lhb.name)
    for store, sts in ((lhb.spec.postgres, n.postgres), (lhb.spec.redis, n.redis)):
        if store.mode == "managed":
            out.add(("PersistentVolumeClaim", f"data-{sts}-0"))
    return out


def problems(objects: Iterable[Mapping[str, Any]], bridges: Iterable[Mapping[str, Any]]) -> list[str]:
    """What is wrong with the managed objects of one namespace, given its LighthouseBridges (none deleting)."""
    live = {b["metadata"]["name"]: b for b in bridges}
    out: list[str] = []
    found: dict[str, set[tuple[str, str]]] = {name: set() for name in live}
    rs_revisions: Counter[tuple[str, str]] = Counter()
    cr_revisions: Counter[tuple[str, str, str]] = Counter()
    for obj in objects:
        md, kind = obj["metadata"], obj["kind"]
        labels = md.get("labels") or {}
        if labels.get(naming.L_MANAGED_BY) != naming.MANAGED_BY:
            continue
        owner = labels.get(naming.L_INSTANCE)
        what = f"{kind}/{md['name']}"
        bridge = live.get(owner or "")
        if bridge is None:
            out.append(f"orphan {what}: its LighthouseBridge {owner!r} is gone")
            continue
        uid = bridge["metadata"]["uid"]
        owners = [r for r in md.get("ownerReferences") or [] if r.get("kind") == "LighthouseBridge"]
        if owners and all(r.get("uid") != uid for r in owners):
            out.append(f"orphan {what}: owned by an earlier LighthouseBridge {owner!r}")
        if kind in FIXED_NAMES:
            found[owner or ""].add((kind, md["name"]))
        elif kind == "ReplicaSet":
            template = (obj["spec"].get("template") or {}).get("metadata") or {}
            rs_revisions[(owner or "", (template.get("annotations") or {}).get(naming.A_REVISION, "?"))] += 1
        elif kind == "ControllerRevision" and naming.L_REVISION_OF in labels:  # ours, not a StatefulSet's
            cr_revisions[(owner or "", labels[naming.L_REVISION_OF], labels.get(naming.L_REVISION, "?"))] += 1
        elif kind == "Job":
            out.append(f"unexpected {what}: no backup or restore was asked for")
    for name, bridge in live.items():
        want = expected(bridge)
        out += [f"missing {k}/{n} of {name}" for k, n in sorted(want - found[name])]
        out += [f"unexpected {k}/{n} of {name}" for k, n in sorted(found[name] - want)]
    out += [f"{n} ReplicaSets of {b} for revision {r}" for (b, r), n in sorted(rs_revisions.items()) if n > 1]
    out += [f"{n} ControllerRevisions of {b}/{c} for {r}" for (b, c, r), n in sorted(cr_revisions.items()) if n > 1]
    return out


__all__ = ["KINDS", "expected", "problems"]

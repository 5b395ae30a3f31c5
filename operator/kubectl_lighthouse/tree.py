"""A LighthouseBridge and what the operator made for it, as a tree (`kubectl lighthouse status`). Pure functions."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

# Children shown under their owner, in this order.
CHILD_KINDS = (
    "Deployment", "StatefulSet", "CronJob", "Job", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim",
    "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor", "ControllerRevision",
)  # fmt: skip


@dataclass
class Node:
    label: str
    children: list[Node] = field(default_factory=list)

    def add(self, label: str) -> Node:
        child = Node(label)
        self.children.append(child)
        return child


def render(root: Node) -> str:
    """The tree with box-drawing branches, one node per line."""
    lines = [root.label]

    def walk(node: Node, prefix: str) -> None:
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{child.label}")
            walk(child, prefix + ("    " if last else "│   "))

    walk(root, "")
    return "\n".join(lines) + "\n"


def age(timestamp: str | None, now: datetime.datetime) -> str:
    """kubectl-style age: 45s, 12m, 5h, 3d."""
    if not timestamp:
        return "?"
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(int((now - then).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _owner_uids(obj: Obj) -> set[str]:
    return {o.get("uid", "") for o in obj.get("metadata", {}).get("ownerReferences") or []}


def _child_summary(obj: Obj) -> str:
    kind, st, spec = obj.get("kind"), obj.get("status") or {}, obj.get("spec") or {}
    if kind in ("Deployment", "StatefulSet"):
        return f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 1)} ready"
    if kind == "Job":
        for c in st.get("conditions") or []:
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                return str(c["type"])
        return "Running" if st.get("active") else "Pending"
    if kind == "CronJob":
        return ("suspended " if spec.get("suspend") else "") + f"schedule {spec.get('schedule')!r}"
    if kind == "PersistentVolumeClaim":
        size = ((st.get("capacity") or {}).get("storage")) or ((spec.get("resources") or {}).get("requests") or {}).get(
            "storage", "?"
        )
        return f"{st.get('phase', '?')} {size}"
    if kind == "Pod":
        ready = next((c.get("status") for c in st.get("conditions") or [] if c.get("type") == "Ready"), "False")
        restarts = sum(int(c.get("restartCount") or 0) for c in st.get("containerStatuses") or [])
        waiting = [
            (c.get("state") or {}).get("waiting", {}).get("reason")
            for c in st.get("containerStatuses") or []
            if (c.get("state") or {}).get("waiting")
        ]
        text = f"{st.get('phase', '?')}{' Ready' if ready == 'True' else ' NotReady'}"
        if waiting:
            text += f" ({', '.join(w for w in waiting if w)})"
        return text + (f" restarts={restarts}" if restarts else "")
    if kind == "ControllerRevision":
        labels = obj.get("metadata", {}).get("labels") or {}
        return f"{labels.get('lighthouse.dev/revision-of', '?')} revision {obj.get('revision')}"
    if kind == "Service":
        return str(spec.get("clusterIP") or "")
    if kind == "Secret":
        return f"{len(obj.get('data') or {})} keys"
    return ""


def _label(obj: Obj, extra: str = "") -> str:
    text = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}"
    return f"{text}  {extra}".rstrip() if extra else text


def build(lhb: Obj, children: Iterable[Obj], pods: Iterable[Obj], now: datetime.datetime) -> Node:
    """The tree for one LighthouseBridge, its status and its children (with their pods)."""
    md, st = lhb.get("metadata", {}), lhb.get("status") or {}
    gen, seen = md.get("generation"), st.get("observedGeneration")
    head = f"LighthouseBridge {md.get('namespace')}/{md.get('name')}  phase {st.get('phase', '?')}"
    head += f"  generation {gen}" + ("" if seen == gen else f" (observed {seen})")
    root = Node(head)

    conds = root.add("Conditions")
    for c in st.get("conditions") or []:
        text = f"{c.get('type')}={c.get('status')}  {c.get('reason', '')}"
        if c.get("message"):
            text += f": {c['message']}"
        conds.add(f"{text}  ({age(c.get('lastTransitionTime'), now)})")
    if not conds.children:
        conds.add("none yet (has the operator seen this resource?)")

    revs = st.get("revisions") or {}
    rev = root.add("Revisions")
    for key in ("desired", "serving", "lastGood"):
        rev.add(f"{key}: {revs.get(key, '-')}")

    backup = root.add("Backup")
    spec = lhb.get("spec") or {}
    if not spec.get("backup"):
        backup.add("not configured (spec.backup)")
    else:
        last = st.get("lastBackup") or {}
        if last:
            size = f", {last['size']} bytes" if last.get("size") is not None else ""
            backup.add(f"last: {last.get('name')} at {last.get('time')}{size} ({age(last.get('time'), now)} ago)")
        else:
            backup.add("last: none yet")
        cond = next((c for c in st.get("conditions") or [] if c.get("type") == "BackupSucceeded"), None)
        if cond:
            backup.add(f"BackupSucceeded={cond.get('status')}  {cond.get('reason', '')}")

    comps = st.get("components") or {}
    if comps:
        node = root.add("Components")
        for name in sorted(comps):
            c = comps[name]
            node.add(f"{name}: {c.get('ready', 0)}/{c.get('desired', 0)} {c.get('message', '')}".rstrip())

    kids = root.add("Children")
    order = {k: i for i, k in enumerate(CHILD_KINDS)}
    pods = list(pods)
    by_uid: dict[str, list[Obj]] = {}
    for p in pods:
        for uid in _owner_uids(p):
            by_uid.setdefault(uid, []).append(p)
    for obj in sorted(children, key=lambda o: (order.get(o.get("kind", ""), 99), o["metadata"]["name"])):
        node = kids.add(_label(obj, _child_summary(obj)))
        uid = obj["metadata"].get("uid", "")
        own = by_uid.get(uid, [])
        if obj.get("kind") == "Deployment":  # its pods belong to ReplicaSets: match the selector instead
            sel = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            own = [
                p for p in pods if sel and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())
            ]
        for p in sorted(own, key=lambda p: p["metadata"]["name"]):
            node.add(_label(p, _child_summary(p)))
    if not kids.children:
        kids.add("none")
    return root

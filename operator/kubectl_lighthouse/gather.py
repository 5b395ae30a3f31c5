"""Reading one LighthouseBridge and everything the operator made for it, through kubectl."""

from __future__ import annotations

from dataclasses import dataclass, field

from .kube import Kubectl, KubectlError, Obj

LHB = "lighthousebridges.lighthouse.dev"
# Every kind the operator creates (or a StatefulSet creates for it), in one `kubectl get`.
CHILD_RESOURCES = ",".join((
    "deployments.apps", "statefulsets.apps", "cronjobs.batch", "jobs.batch", "services", "configmaps", "secrets",
    "persistentvolumeclaims", "serviceaccounts", "poddisruptionbudgets.policy", "networkpolicies.networking.k8s.io",
    "controllerrevisions.apps",
))  # fmt: skip
OPTIONAL_RESOURCES = ("servicemonitors.monitoring.coreos.com",)


def instance_selector(name: str) -> str:
    return f"app.kubernetes.io/instance={name}"


def component_selector(name: str, component: str) -> str:
    return f"app.kubernetes.io/name=lighthouse,{instance_selector(name)},app.kubernetes.io/component={component}"


class NotFound(RuntimeError):
    pass


@dataclass
class Snapshot:
    lhb: Obj
    children: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)

    @property
    def uids(self) -> set[str]:
        return {o["metadata"].get("uid", "") for o in [self.lhb, *self.children, *self.pods]}


def lighthouse_bridge(k: Kubectl, name: str) -> Obj:
    obj = k.get(LHB, name)
    if obj is None:
        raise NotFound(f"LighthouseBridge {name} not found in namespace {k.namespace}")
    return obj


def snapshot(k: Kubectl, name: str) -> Snapshot:
    """The resource, the children that carry its instance label (the operator's, and the PVCs of its StatefulSets)
    and their pods. Objects of another application that happen to share the instance label are left out."""
    lhb = lighthouse_bridge(k, name)
    sel = instance_selector(name)
    children = k.items(CHILD_RESOURCES, sel)
    for resource in OPTIONAL_RESOURCES:
        children += k.items(resource, sel)
    uid = lhb["metadata"]["uid"]

    def ours(o: Obj) -> bool:
        md = o.get("metadata") or {}
        owned = any(r.get("uid") == uid for r in md.get("ownerReferences") or [])
        labels = md.get("labels") or {}
        ours = labels.get("app.kubernetes.io/managed-by") == "lighthouse-operator"
        return owned or ours or labels.get("app.kubernetes.io/name") == "lighthouse"  # PVCs of our StatefulSets

    pods = k.items("pods", sel)
    return Snapshot(lhb, [c for c in children if ours(c)], pods)


def events(k: Kubectl, snap: Snapshot) -> list[Obj]:
    """Events about the resource, its children and their pods, oldest first."""
    try:
        items = k.items("events")
    except KubectlError:
        return []
    uids = snap.uids
    mine = [e for e in items if (e.get("involvedObject") or {}).get("uid") in uids]
    return sorted(
        mine,
        key=lambda e: (
            e.get("lastTimestamp") or e.get("eventTime") or e.get("metadata", {}).get("creationTimestamp") or ""
        ),
    )

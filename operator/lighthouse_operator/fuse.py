"""The FuseAvailable condition: whether the bridge pods have their shadow filesystem, and why not (docs/fuse-modes.md).

The bridge reports its mount in `/health` (`fuse: {status, error}`; open, no I/O behind it); the operator asks each
ready pod that a container runtime really started, on its pod IP (as CloudNativePG's operator asks its instances).
Pure: the reconcile does the reads (observe.py) and the GETs (api.Prober), this module decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import naming
from .api import Obj
from .models import LighthouseBridge
from .rollout import pod_ready
from .status import Fragment, condition

CONDITION = "FuseAvailable"
HEALTH_PATH = "/health"

Answer = Mapping[str, Any] | str  # the /health document, or why there is none


@dataclass(frozen=True)
class Verdict:
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def _container(pod: Obj) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((c for c in statuses if c.get("name") == "bridge"), {})


def probe_targets(pods: Sequence[Obj]) -> dict[str, str]:
    """pod name -> /health URL, for the ready bridge pods a container runtime started (a containerID: simulated
    pods have none and no address to ask)."""
    out = {}
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if (pod.get("metadata") or {}).get("deletionTimestamp") or not ip or not pod_ready(pod):
            continue
        if not _container(pod).get("containerID"):
            continue
        host = f"[{ip}]" if ":" in ip else ip
        out[pod["metadata"]["name"]] = f"http://{host}:{naming.API_PORT}{HEALTH_PATH}"
    return out


def userns_unsupported(node: Obj) -> str | None:
    """Why the node cannot run pods with hostUsers: false, or None. The kubelet reports its runtime's features in
    status.runtimeHandlers (containerd 2.x and runc 1.2+ report userNamespaces: true; containerd 1.x reports no
    handler at all, and the kubelet then refuses such pods: "runtime does not support user namespaces")."""
    st = node.get("status") or {}
    handlers = st.get("runtimeHandlers") or []
    default = next((h for h in handlers if not h.get("name")), None)
    if default and (default.get("features") or {}).get("userNamespaces"):
        return None
    runtime = (st.get("nodeInfo") or {}).get("containerRuntimeVersion") or "an unknown runtime"
    return f"node {node['metadata']['name']} runs {runtime}, which reports no user namespace support"


def verdict(lhb: LighthouseBridge, answers: Mapping[str, Answer], nodes: Mapping[str, Obj] | None = None) -> Verdict:
    """`answers`: each probed pod's /health (or why none); `nodes`: the Nodes of the bridge pods, read only in mode
    userNamespaces."""
    fuse = lhb.spec.fuse
    if not fuse.active:
        return Verdict("False", "Disabled", "fuse.mode is disabled: the bridge serves its API without the mount")
    refusals = [r for n in (nodes or {}).values() if (r := userns_unsupported(n))]
    if fuse.mode == "userNamespaces" and refusals:
        return Verdict(
            "False",
            "UserNamespacesUnsupported",
            "pods with hostUsers: false cannot run (fuse.mode userNamespaces needs containerd 2.x and runc 1.2+): "
            + "; ".join(sorted(refusals)),
        )
    if not answers:
        return Verdict("Unknown", "NoRunningPods", "no ready bridge pod to ask")
    mounted, failed, unreachable = [], [], []
    for pod, answer in sorted(answers.items()):
        if isinstance(answer, str):
            unreachable.append(f"{pod}: {answer}")
            continue
        raw = answer.get("fuse")
        state: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        if state.get("status") == "mounted":
            mounted.append(pod)
        else:
            failed.append(f"{pod}: {state.get('error') or state.get('status') or 'no FUSE state in /health'}")
    if failed:
        return Verdict("False", "NotMounted", f"{len(failed)} of {len(answers)} pods have no mount: {failed[0]}")
    if not mounted:
        return Verdict("Unknown", "Unreachable", f"no bridge pod answered: {unreachable[0]}")
    extra = f" ({len(unreachable)} did not answer: {unreachable[0]})" if unreachable else ""
    return Verdict(
        "True", "Mounted", f"mounted in {len(mounted)} of {len(answers)} ready pods (mode {fuse.mode}){extra}"
    )


def fragment(v: Verdict, generation: int) -> Fragment:
    return Fragment(conditions=(condition(CONDITION, v.status, v.reason, v.message, generation),))

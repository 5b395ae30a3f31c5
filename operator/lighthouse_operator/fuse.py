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


USERNS_MARKERS = ("user namespace", "usernamespace", "hostusers")


def _userns_refusal(pods: Sequence[Obj]) -> str | None:
    """The kubelet's or the runtime's words when a pod with hostUsers: false cannot start."""
    for pod in pods:
        st = pod.get("status") or {}
        texts = [st.get("message") or "", st.get("reason") or ""]
        texts += [c.get("message") or "" for c in st.get("conditions") or []]
        for cs in st.get("containerStatuses") or []:
            for state in (cs.get("state") or {}).values():
                texts.append((state or {}).get("message") or "")
        for text in texts:
            if any(m in text.lower() for m in USERNS_MARKERS):
                return f"pod {pod['metadata']['name']}: {text.strip()}"
    return None


def verdict(lhb: LighthouseBridge, pods: Sequence[Obj], answers: Mapping[str, Answer]) -> Verdict:
    fuse = lhb.spec.fuse
    if not fuse.active:
        return Verdict("False", "Disabled", "fuse.mode is disabled: the bridge serves its API without the mount")
    if fuse.mode == "userNamespaces" and (refusal := _userns_refusal(pods)):
        return Verdict(
            "False",
            "UserNamespacesUnsupported",
            "the node's container runtime cannot run pods with hostUsers: false (userNamespaces needs containerd 2.x "
            f"and runc 1.2+): {refusal}",
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

"""Rendering the chart with the pinned helm, and a restricted-Pod-Security check over rendered pod specs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.harness.extra_tools import helm

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "lighthouse-operator"
# Installs into a shared test cluster leave the FUSE node plugin out: its CSIDriver is one per cluster and belongs to
# the release `make up` installs, which the node tier's plugin stands for (tests/node/conftest.py), running beside
# the e2e tier in `make test`; helm refuses a second owner (values.yaml, fusePlugin).
WITHOUT_FUSE_PLUGIN = ("--set", "fusePlugin.enabled=false")


def helm_template(*args: str, release: str = "lh", namespace: str = "lighthouse-system") -> str:
    proc = subprocess.run(
        [helm(), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise RenderError(proc.stderr)
    return proc.stdout


class RenderError(Exception):
    pass


def documents(rendered: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(rendered) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


ALLOWED_VOLUME_TYPES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret",
}  # fmt: skip


def restricted_violations(pod_spec: dict[str, Any]) -> list[str]:
    """The controls of the restricted Pod Security Standard (v1.25+) that a pod spec can break."""
    out: list[str] = []
    psc = pod_spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            out.append(f"{key} is set")
    for vol in pod_spec.get("volumes") or []:
        kinds = set(vol) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            out.append(f"volume {vol['name']} uses {sorted(kinds - ALLOWED_VOLUME_TYPES)}")
    containers = [*(pod_spec.get("initContainers") or []), *pod_spec["containers"]]
    for c in containers:
        sc = c.get("securityContext") or {}
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities {caps['add']}")
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            out.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            out.append(f"{name}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile is {seccomp!r}")
        if (sc.get("appArmorProfile") or psc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            out.append(f"{name}: appArmorProfile is Unconfined")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{name}: hostPort {port['hostPort']}")
    return out

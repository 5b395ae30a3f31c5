"""`kubectl lighthouse report`: a support bundle (tar.gz) of one LighthouseBridge, its children, their Events and
logs, with every Secret value and credential redacted before it is written."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Iterable
from typing import Any

from . import __version__, gather, redact
from .kube import Kubectl, KubectlError, Obj

README = """Lighthouse support bundle for LighthouseBridge {namespace}/{name}, made by kubectl-lighthouse {version}.

lighthousebridge.json     the resource (spec and status)
children/KIND-NAME.json   what the operator made for it (Deployments, StatefulSets, Jobs, Services, ...)
pods/NAME.json            their pods
events.json               Events about all of the above, oldest first
logs/POD/CONTAINER.log    container logs (and CONTAINER.previous.log after a restart); .error.txt if unavailable
versions.txt              kubectl client and server versions

Redacted: the values of every Secret (data and stringData, their sizes kept), literal values of environment variables
whose names look like credentials, passwords in URLs, bearer and agent tokens in any text, and
last-applied-configuration annotations. Nothing else is changed: read it before you send it.
"""


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def entries(snap: gather.Snapshot, events: list[Obj], logs: dict[str, str], versions: str) -> list[tuple[str, bytes]]:
    """Every file of the bundle (path, content), redacted. Pure: the gathering happens elsewhere."""
    md = snap.lhb["metadata"]
    out = [
        ("README.txt", README.format(namespace=md.get("namespace"), name=md.get("name"), version=__version__).encode()),
        ("lighthousebridge.json", _json(redact.resource(snap.lhb))),
    ]
    for c in snap.children:
        out.append((f"children/{c.get('kind')}-{c['metadata']['name']}.json", _json(redact.resource(c))))
    for p in snap.pods:
        out.append((f"pods/{p['metadata']['name']}.json", _json(redact.resource(p))))
    out.append(("events.json", _json([redact.resource(e) for e in events])))
    for path, text in sorted(logs.items()):
        out.append((path, redact.text(text).encode()))
    out.append(("versions.txt", versions.encode()))
    return out


def containers(pod: Obj) -> Iterable[tuple[str, bool]]:
    """(container name, has a previous instance) for every init and app container of a pod."""
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("initContainerStatuses") or []}
    statuses.update({s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []})
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        yield c["name"], int((statuses.get(c["name"]) or {}).get("restartCount") or 0) > 0


def collect_logs(k: Kubectl, pods: list[Obj], tail: int) -> dict[str, str]:
    """logs/POD/CONTAINER.log per container (and .previous.log after a restart); what kubectl said if it failed."""
    out: dict[str, str] = {}
    for pod in pods:
        pname = pod["metadata"]["name"]
        for cname, restarted in containers(pod):
            for previous in (False, True) if restarted else (False,):
                base = f"logs/{pname}/{cname}{'.previous' if previous else ''}"
                args = ["logs", pname, "-c", cname, f"--tail={tail}", "--timestamps"]
                if previous:
                    args.append("--previous")
                try:
                    out[f"{base}.log"] = k.run(*args)
                except KubectlError as e:
                    out[f"{base}.error.txt"] = f"kubectl {' '.join(args)}: {e}\n"
    return out


def versions(k: Kubectl) -> str:
    try:
        return k.run("version", "-o", "json", namespaced=False, check=False)
    except OSError as e:
        return f"kubectl version: {e}\n"


def write(path: str, files: list[tuple[str, bytes]], prefix: str) -> None:
    now = time.time()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files:
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mtime, info.mode = len(data), now, 0o600
            tar.addfile(info, io.BytesIO(data))


def make(k: Kubectl, name: str, path: str, tail: int = 2000) -> list[str]:
    """Gather, redact and write the bundle; returns the files written (inside the archive)."""
    snap = gather.snapshot(k, name)
    files = entries(snap, gather.events(k, snap), collect_logs(k, snap.pods, tail), versions(k))
    prefix = f"lighthouse-report-{k.namespace}-{name}"
    write(path, files, prefix)
    return [f for f, _ in files]

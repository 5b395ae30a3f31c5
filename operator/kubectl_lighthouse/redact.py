"""What leaves the cluster in a support bundle: no Secret value, no credential in an environment variable or URL."""

from __future__ import annotations

import copy
import re
from typing import Any

Obj = dict[str, Any]

REDACTED = "REDACTED"
# Environment variables whose literal value is likely a credential.
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH|DSN|_URL$)", re.I)
# user:password@ in any URL-looking string (a database URL in a log line, say).
URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
# Bearer credentials and the bridge's own agent-token format.
BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
AGENT_TOKEN = re.compile(r"\blh1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def text(value: str) -> str:
    """A log line or any free text with passwords in URLs and bearer tokens replaced."""
    value = URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)
    value = BEARER.sub(lambda m: f"{m.group(1)}{REDACTED}", value)
    return AGENT_TOKEN.sub(REDACTED, value)


def _env(env: list[Obj]) -> None:
    for e in env:
        if "value" in e and isinstance(e["value"], str) and e["value"] and SECRET_NAME.search(e.get("name", "")):
            e["value"] = REDACTED
        elif isinstance(e.get("value"), str):
            e["value"] = text(e["value"])


def _containers(pod_spec: Obj) -> None:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in pod_spec.get(key) or []:
            _env(c.get("env") or [])
            for k in ("args", "command"):
                if isinstance(c.get(k), list):
                    c[k] = [text(a) if isinstance(a, str) else a for a in c[k]]


def _pod_specs(obj: Obj) -> list[Obj]:
    """Every pod spec inside a workload, a Job, a CronJob or a Pod."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {})]
    if kind == "ControllerRevision":
        return [(((obj.get("data") or {}).get("template") or {}).get("spec") or {})]
    if isinstance(spec.get("template"), dict):
        return [spec["template"].get("spec") or {}]
    return []


def resource(obj: Obj) -> Obj:
    """A copy of one API object that is safe to hand out."""
    out = copy.deepcopy(obj)
    md = out.get("metadata") or {}
    if out.get("kind") == "Secret":
        for section in ("data", "stringData"):
            if isinstance(out.get(section), dict):
                out[section] = {k: f"{REDACTED} ({len(v or '')} bytes)" for k, v in out[section].items()}
        md.pop("annotations", None)  # last-applied-configuration would carry the values again
    annotations = md.get("annotations") or {}
    if LAST_APPLIED in annotations:
        annotations[LAST_APPLIED] = REDACTED
    md.pop("managedFields", None)  # noise, and field values of Secrets can show through
    for pod_spec in _pod_specs(out):
        _containers(pod_spec)
    if out.get("kind") == "LighthouseBridge":
        _env(((out.get("spec") or {}).get("bridge") or {}).get("env") or [])
    return out


def listing(obj: Obj) -> Obj:
    """A List (kubectl get -o json) with every item redacted."""
    out = dict(obj)
    out["items"] = [resource(i) for i in obj.get("items") or []]
    return out

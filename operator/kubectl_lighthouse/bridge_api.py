"""Reaching a bridge's API from the user's machine: a `kubectl port-forward` to its Service, and token minting with
the admin token from the `<name>-admin-token` Secret. Standard library only."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from .kube import Kubectl, Obj

API_PORT = 8765
ADMIN_KEY = "token"
ROLES = ("builder", "expert", "viewer", "admin", "enrolment")


class BridgeAPIError(RuntimeError):
    """The bridge could not be reached or refused; the message says what it answered."""


def admin_secret_name(name: str) -> str:
    return f"{name}-admin-token"


def admin_token(secret: Obj | None, name: str) -> str:
    """The admin token from the Secret the operator generated (or the one the user provided under that name)."""
    if secret is None:
        raise BridgeAPIError(f"Secret {admin_secret_name(name)} not found: has the operator reconciled {name}?")
    raw = (secret.get("data") or {}).get(ADMIN_KEY)
    if not raw:
        raise BridgeAPIError(f"Secret {admin_secret_name(name)} has no key {ADMIN_KEY!r}")
    return base64.b64decode(raw).decode()


@dataclass(frozen=True)
class MintRequest:
    url: str
    body: dict[str, Any]
    admin_token: str

    def describe(self) -> dict[str, Any]:
        """What would be sent, with the credential left out (for --dry-run)."""
        return {
            "method": "POST",
            "url": self.url,
            "headers": {
                "Authorization": f"Bearer <admin token, {len(self.admin_token)} characters>",
                "Content-Type": "application/json",
            },
            "body": self.body,
        }

    def urllib_request(self) -> urllib.request.Request:
        return urllib.request.Request(
            self.url,
            data=json.dumps(self.body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
        )


def mint_request(base_url: str, token: str, agent_id: str, role: str, ttl_seconds: int | None) -> MintRequest:
    if role not in ROLES:
        raise BridgeAPIError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    body: dict[str, Any] = {"agent_id": agent_id, "role": role}
    if ttl_seconds is not None:
        body["ttl_seconds"] = ttl_seconds
    return MintRequest(base_url.rstrip("/") + "/session/create", body, token)


def send(req: MintRequest, timeout: float = 15.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(req.urllib_request(), timeout=timeout) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")
        try:
            detail = json.loads(detail).get("detail", detail)
        except (ValueError, AttributeError):
            pass
        raise BridgeAPIError(f"{req.url}: {e.code} {detail}") from None
    except (urllib.error.URLError, OSError) as e:
        raise BridgeAPIError(f"{req.url}: {e}") from None


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


class PortForward:
    """`kubectl port-forward svc/<name>-bridge LOCAL:8765` for the life of a `with` block."""

    def __init__(self, k: Kubectl, name: str, local_port: int = 0, timeout: float = 30.0):
        self.k, self.target, self.local_port, self.timeout = k, f"svc/{name}-bridge", local_port, timeout
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> PortForward:
        cmd = self.k.command(
            "port-forward", "--address", "127.0.0.1", self.target, f"{self.local_port or ''}:{API_PORT}"
        )
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        watchdog = threading.Timer(self.timeout, self.close)  # no answer at all: give up
        watchdog.start()
        try:
            line = self.proc.stdout.readline()  # the first line says where it listens; stdout closes on failure
        finally:
            watchdog.cancel()
        m = FORWARDING.search(line)
        if not m:
            self.close()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise BridgeAPIError(f"kubectl port-forward {self.target} failed: {(err or line).strip()}")
        self.url = f"http://127.0.0.1:{m.group(1)}"
        # kubectl keeps logging every connection; a pipe nobody reads would fill and stall it.
        for stream in (self.proc.stdout, self.proc.stderr):
            threading.Thread(target=_drain, args=(stream,), daemon=True).start()
        return self

    def close(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self.close()

"""`lighthouse-bridge hook`: a coding agent's pre-tool hook that asks the bridge before a tool runs.

Reads the agent's pre-tool JSON on stdin ({tool_name, tool_input, ...}; the older {tool, input} too), asks
POST /validate, and exits 0 when approved or 2 when blocked (the reason on stderr, which the agent shows).
Escalations are awaited up to --wait seconds (long-polling /escalations/{id}); past that the fail-safe applies
locally: read-only approved, everything else blocked. When the bridge cannot be reached (or answers 5xx) the same
policy rules run offline (LIGHTHOUSE_POLICY_FILE if readable, else the defaults), escalations failing safe.
Bad input and refused credentials block: a hook must never let a tool through because it broke.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
from pydantic import ValidationError

from lighthouse_bridge.agents import policy
from lighthouse_bridge.core.config import HookSettings, invalid_variables

APPROVED, BLOCKED = 0, 2
MAX_STDIN = 4 << 20


@dataclass
class HookConfig:
    url: str
    token: str | None
    wait: float
    timeout: float
    policy_file: Path | None
    agent_id: str | None


def hook_config(
    settings: HookSettings, url: str | None = None, token: str | None = None, wait: float | None = None
) -> HookConfig:
    """Flags over the environment (core.config.HookSettings)."""
    return HookConfig(
        url=(url or settings.url).rstrip("/"),
        token=token or settings.token,
        wait=wait if wait is not None else settings.hook_wait,
        timeout=settings.hook_timeout,
        policy_file=settings.policy_file,
        agent_id=settings.agent_id,
    )


def _request(doc: Any, agent_id: str | None) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ValueError("pre-tool input must be a JSON object")
    name = doc.get("tool_name", doc.get("tool"))
    tool_input = doc.get("tool_input", doc.get("input", {}))
    if isinstance(tool_input, str):
        tool_input = {"command": tool_input}
    if not isinstance(name, str) or not name or not isinstance(tool_input, dict):
        raise ValueError("pre-tool input needs tool_name (string) and tool_input (object)")
    out: dict[str, Any] = {"tool_name": name, "tool_input": tool_input}
    if agent_id:
        out["agent_id"] = agent_id
    if isinstance(doc.get("tool_use_id"), str):
        out["tool_use_id"] = doc["tool_use_id"]
    return out


def offline(req: dict[str, Any], cfg: HookConfig, why: str, err: TextIO) -> int:
    try:
        pol = policy.load_file(cfg.policy_file) if cfg.policy_file else policy.default_policy()
    except policy.PolicyError as exc:
        print(f"lighthouse: {exc}; using the default rules", file=err)
        pol = policy.default_policy()
    d = pol.decide(req["tool_name"], req["tool_input"])
    if d.action == "approve":
        return APPROVED
    if d.action == "escalate" and pol.is_read_only(req["tool_name"], req["tool_input"]):
        return APPROVED
    detail = d.reason if d.action == "block" else f"needs expert review ({d.reason}) and no expert can be asked"
    print(f"Lighthouse blocked {req['tool_name']} (offline rules, {why}): {detail} [rule {d.rule_id}]", file=err)
    return BLOCKED


def _verdict(body: dict[str, Any], tool: str, err: TextIO) -> int | None:
    decision = body.get("decision")
    if decision == "approved" and body.get("approved") is True:
        return APPROVED
    if decision == "blocked":
        print(f"Lighthouse blocked {tool}: {body.get('reason')} [rule {body.get('rule_id')}]", file=err)
        return BLOCKED
    return None  # escalated


def run(stdin: TextIO, err: TextIO, cfg: HookConfig) -> int:
    raw = stdin.read(MAX_STDIN + 1)
    try:
        if len(raw) > MAX_STDIN:
            raise ValueError(f"pre-tool input larger than {MAX_STDIN} bytes")
        req = _request(json.loads(raw), cfg.agent_id)
    except ValueError as exc:
        print(f"Lighthouse blocked the tool: unreadable pre-tool input: {exc}", file=err)
        return BLOCKED
    headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
    started = time.monotonic()
    try:
        with httpx.Client(base_url=cfg.url, headers=headers, timeout=httpx.Timeout(cfg.timeout, connect=3.0)) as c:
            r = c.post("/validate", json=req)
            if r.status_code >= 500:
                return offline(req, cfg, f"bridge answered {r.status_code}", err)
            if r.status_code != 200:
                print(
                    f"Lighthouse blocked {req['tool_name']}: bridge refused the request ({r.status_code}: "
                    f"{_detail(r)})",
                    file=err,
                )
                return BLOCKED
            body = r.json()
            verdict = _verdict(body, req["tool_name"], err)
            while verdict is None:
                remaining = cfg.wait - (time.monotonic() - started)
                if remaining <= 0:
                    return _fail_safe(body, req, cfg, err)
                r = c.get(
                    f"/escalations/{body['escalation_id']}",
                    params={"wait": round(min(remaining, 25.0), 3)},
                    timeout=httpx.Timeout(min(remaining, 25.0) + cfg.timeout, connect=3.0),
                )
                if r.status_code != 200:
                    return _fail_safe(body, req, cfg, err)
                body = r.json()
                verdict = _verdict(body, req["tool_name"], err)
            return verdict
    except httpx.TransportError as exc:
        return offline(req, cfg, f"bridge unreachable at {cfg.url}: {type(exc).__name__}", err)


def _fail_safe(body: dict[str, Any], req: dict[str, Any], cfg: HookConfig, err: TextIO) -> int:
    if body.get("read_only"):
        return APPROVED
    print(
        f"Lighthouse blocked {req['tool_name']}: no expert decision within {cfg.wait:g}s on escalation "
        f"{body.get('escalation_id')} ({body.get('reason')}); fail-safe blocks operations that are not read-only",
        file=err,
    )
    return BLOCKED


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail"))
    except ValueError:
        return r.text[:200]


def main(url: str | None = None, token: str | None = None, wait: float | None = None) -> int:
    try:
        settings = HookSettings()
    except ValidationError as exc:  # a hook that crashes lets the tool through: refuse instead
        print(
            f"Lighthouse blocked the tool: invalid configuration: {'; '.join(invalid_variables(exc))}", file=sys.stderr
        )
        return BLOCKED
    return run(sys.stdin, sys.stderr, hook_config(settings, url, token, wait))

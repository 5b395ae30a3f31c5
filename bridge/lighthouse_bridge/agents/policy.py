"""Validation policy: ordered rules (tool, regex on command or path, action), loaded from YAML and hot-reloaded.

The file's schema (PolicySpec, RuleSpec) is lighthouse_policy, shared with the operator, which types
spec.bridge.policy in the CRD with it; this module compiles and applies a policy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from lighthouse_policy import PolicySpec, RuleSpec
from pydantic import ValidationError

log = logging.getLogger(__name__)

PATH_KEYS = ("file_path", "path", "notebook_path")
# No chaining, substitution or redirection: `ls; rm -rf ~` must not ride on the `ls` prefix.
SAFE_SHELL = r"^\s*(ls|pwd|echo|grep|git\s+(status|log|diff))(\s[^;&|`$<>()\n\\]*)?\s*$"
SYSTEM_PATHS = r"^/(etc|usr|var|boot|sys|proc|dev)(/|$)"


def _block(rid: str, regex: str, reason: str) -> dict[str, Any]:
    return {"id": rid, "tool": "Bash", "command": regex, "action": "block", "reason": reason}


# The upstream rule set (shared/reference/bridge-upstream.md), in upstream order.
DEFAULT_RULES: list[dict[str, Any]] = [
    # any flag order (-rf, -fr, -r -f, --recursive), as long as one flag is recursive and the target is /
    _block(
        "block-rm-rf-root",
        r"\brm\s+(?=(-\S+\s+)*(-[A-Za-z]*[rR][A-Za-z]*|--recursive)\b)(-\S+\s+)+/+(\*|\s|$)",
        "recursive delete of /",
    ),
    _block("block-sudo-rm", r"\bsudo\s+(-\S+\s+)*rm\b", "rm with sudo"),
    _block("block-chmod-777", r"\bchmod\s+(-\S+\s+)*0?777\b", "world-writable permissions"),
    _block("block-dd-device", r"\bdd\b.*\bof=/dev/", "dd onto a device"),
    _block("block-mkfs", r"\bmkfs(\.\w+)?\b", "creating a filesystem"),
    _block("block-fdisk", r"\b(fdisk|sfdisk|parted)\b", "partitioning a disk"),
    _block("block-shutdown", r"\b(shutdown|poweroff|halt)\b", "shutting the machine down"),
    _block("block-reboot", r"\breboot\b", "rebooting the machine"),
    _block("block-kill-9", r"\bkill\s+(-\S+\s+)*-(9|KILL|SIGKILL)\b", "kill -9"),
    _block("block-killall", r"\b(killall|pkill)\b", "killing processes by name"),
    {
        "id": "escalate-system-path",
        "tool": "*",
        "path": SYSTEM_PATHS,
        "action": "escalate",
        "reason": "touches a system path",
    },
    {
        "id": "escalate-system-path-shell",
        "tool": "Bash",
        "command": r"(^|[\s=<>'\"])/(etc|usr|var|boot|sys|proc)/"
        r"|(^|[\s=<>'\"])/dev/(?!null\b)",
        "action": "escalate",
        "reason": "shell command names a system path",
    },
    {"id": "approve-read-only-tool", "tool": "@read_only", "action": "approve", "reason": "read-only tool"},
    {
        "id": "approve-safe-shell",
        "tool": "Bash",
        "command": SAFE_SHELL,
        "action": "approve",
        "reason": "safe read-only shell command",
    },
]


@dataclass(frozen=True)
class Rule:
    id: str
    tools: frozenset[str] | None  # None = any tool
    read_only_marker: bool
    command: re.Pattern[str] | None
    path: re.Pattern[str] | None
    action: str
    reason: str


@dataclass(frozen=True)
class Decision:
    action: str  # approve | block | escalate
    rule_id: str
    reason: str


@dataclass
class Policy:
    rules: list[Rule]
    default_action: str
    read_only_tools: frozenset[str]
    escalation_timeout: float | None
    hash: str
    source: str
    rule_count: int = field(init=False)

    def __post_init__(self) -> None:
        self.rule_count = len(self.rules)

    def decide(self, tool_name: str, tool_input: dict[str, Any]) -> Decision:
        command = command_of(tool_input)
        paths = paths_of(tool_input)
        for rule in self.rules:
            if rule.read_only_marker:
                if tool_name not in self.read_only_tools:
                    continue
            elif rule.tools is not None and tool_name not in rule.tools:
                continue
            if rule.command is not None and (command is None or not rule.command.search(command)):
                continue
            if rule.path is not None and not any(rule.path.search(p) for p in paths):
                continue
            return Decision(rule.action, rule.id, rule.reason or f"matched rule {rule.id}")
        return Decision(self.default_action, "default", "no rule matched; default action")

    def is_read_only(self, tool_name: str, tool_input: dict[str, Any]) -> bool:
        """Read-only operations are the ones the escalation fail-safe approves."""
        if tool_name in self.read_only_tools:
            return True
        command = command_of(tool_input)
        return tool_name == "Bash" and command is not None and re.match(SAFE_SHELL, command) is not None


def command_of(tool_input: dict[str, Any]) -> str | None:
    c = tool_input.get("command")
    return c if isinstance(c, str) else None


def paths_of(tool_input: dict[str, Any]) -> list[str]:
    return [v for k in PATH_KEYS if isinstance(v := tool_input.get(k), str)]


def _compile(spec: RuleSpec) -> Rule:
    tools = [spec.tool] if isinstance(spec.tool, str) else spec.tool
    marker = tools == ["@read_only"]
    return Rule(
        id=spec.id or "",
        tools=None if "*" in tools or marker else frozenset(tools),
        read_only_marker=marker,
        command=re.compile(spec.command) if spec.command else None,
        path=re.compile(spec.path) if spec.path else None,
        action=spec.action,
        reason=spec.reason,
    )


def build(spec: PolicySpec, source: str) -> Policy:
    rules = [_compile(r) for r in spec.rules]
    if spec.include_defaults:
        own = {r.id for r in rules}
        rules += [_compile(RuleSpec(**d)) for d in DEFAULT_RULES if d["id"] not in own]
    canonical = json.dumps(
        {"spec": spec.model_dump(), "defaults": DEFAULT_RULES if spec.include_defaults else []},
        sort_keys=True,
        default=str,
    )
    return Policy(
        rules,
        spec.default_action,
        frozenset(spec.read_only_tools),
        spec.escalation_timeout_seconds,
        hashlib.sha256(canonical.encode()).hexdigest()[:16],
        source,
    )


def default_policy() -> Policy:
    return build(PolicySpec(), "defaults")


class PolicyError(ValueError):
    pass


def parse(text: str, source: str) -> Policy:
    """Parse and compile a policy document; PolicyError names what is wrong."""
    try:
        doc = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PolicyError(f"{source}: must be a mapping, got {type(doc).__name__}")
    try:
        spec = PolicySpec.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        raise PolicyError(f"{source}: {problems}") from None
    return build(spec, source)


def load_file(path: Path) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read: {exc}") from None
    return parse(text, str(path))


class PolicyHolder:
    """The current policy, and `check()` that reloads the file when its content changed.

    An invalid file keeps the last good policy and reports the error (loudly, once per distinct content).
    `on_change(ok, policy, error)` is called on every reload attempt of new content.
    """

    def __init__(self, path: Path | None, on_change: Callable[[bool, Policy, str | None], None] | None = None) -> None:
        self.path = path
        self.on_change = on_change
        self.policy = default_policy()
        self.last_error: str | None = None
        self._seen: bytes | None = None

    def check(self) -> bool:
        """Reload if the file content changed; True when a new policy was installed."""
        if self.path is None:
            return False
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raw = f"<unreadable: {exc}>".encode()
        digest = hashlib.sha256(raw).digest()
        if digest == self._seen:
            return False
        self._seen = digest
        try:
            policy = load_file(self.path)
        except PolicyError as exc:
            self.last_error = str(exc)
            log.error("Policy reload failed; keeping the last good policy hash=%s error=%s", self.policy.hash, exc)
            if self.on_change:
                self.on_change(False, self.policy, str(exc))
            return False
        self.policy, self.last_error = policy, None
        log.info("Loaded Policy path=%s hash=%s rules=%d", self.path, policy.hash, policy.rule_count)
        if self.on_change:
            self.on_change(True, policy, None)
        return True

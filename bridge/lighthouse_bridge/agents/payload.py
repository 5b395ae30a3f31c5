"""The two upstream /validate payload shapes, normalised to one request.

Clients send more than the decision needs: the original builder hook adds `timestamp`, its MCP server `metadata`,
Claude Code's hook input carries session_id, cwd, transcript_path, permission_mode, prompt_id, effort and more, and
each release adds fields. Such context is accepted and ignored (its names are kept for the audit record). Refused
(422), because guessing would be wrong either way:
- ambiguous: a key that names the tool or its input in the *other* shape (`tool` beside `tool_name`: which counts?);
- dangerous: a key that claims a decision, a role or a credential (`approved`, `decision`, `role`, `token`, ...):
  the bridge takes none of these from a request body, and silently ignoring one would let a client believe it
  had effect.
Extra values must be JSON that PostgreSQL can hold (no NUL, bounded depth) and there may be at most MAX_EXTRA_FIELDS.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lighthouse_bridge.errors import InvalidInput, TooLarge
from lighthouse_bridge.models import clean_json, clean_text

TOOL_NAME_MAX = 128
MAX_EXTRA_FIELDS = 64
CURRENT = frozenset({"tool_name", "tool_input", "agent_id", "tool_use_id"})
LEGACY = frozenset({"id", "tool", "input", "agent"})
# Keys that name the tool, its input or the agent the other shape's way: with both, which one counts?
AMBIGUOUS = {"current": frozenset({"tool", "input", "agent"}), "legacy": frozenset({"tool_name", "tool_input"})}
CLAIMS = frozenset(
    {
        "approved",
        "approve",
        "decision",
        "status",
        "permission",
        "permissionDecision",
        "hookSpecificOutput",
        "override",
        "bypass",
        "force",
        "skip_validation",
        "escalation_id",
        "approved_by",
        "decided_by",
        "role",
        "roles",
        "admin",
        "is_admin",
        "token",
        "session_token",
        "authorization",
        "api_key",
        "credentials",
    }
)


@dataclass(frozen=True)
class ValidationRequest:
    tool_name: str
    tool_input: dict[str, Any]
    claimed_agent: str | None
    request_id: str | None
    shape: str  # "current" ({tool_name, tool_input, agent_id}) or "legacy" ({id, tool, input, agent})
    ignored: tuple[str, ...] = ()  # extra context fields accepted and not used (sorted)

    @property
    def command_hash(self) -> str:
        return command_hash(self.tool_name, self.tool_input)


def command_hash(tool_name: str, tool_input: dict[str, Any]) -> str:
    canonical = json.dumps({"tool": tool_name, "input": tool_input}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _opt_str(doc: dict[str, Any], key: str, limit: int = 256) -> str | None:
    v = doc.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or not v or len(v) > limit:
        raise InvalidInput(f"{key} must be a non-empty string of at most {limit} characters")
    try:
        return clean_text(v)
    except ValueError as exc:
        raise InvalidInput(f"{key} {exc}") from None


def parse(doc: Any, max_input_bytes: int) -> ValidationRequest:
    """Accept {tool_name, tool_input, agent_id} or the older {id?, tool, input, agent}, each with harmless extra
    context (see the module doc); InvalidInput/TooLarge otherwise."""
    if not isinstance(doc, dict):
        raise InvalidInput("body must be a JSON object")
    if "tool_name" in doc:
        shape, name_key, input_key, agent_key, own = "current", "tool_name", "tool_input", "agent_id", CURRENT
    elif "tool" in doc:
        shape, name_key, input_key, agent_key, own = "legacy", "tool", "input", "agent", LEGACY
    else:
        raise InvalidInput("expected {tool_name, tool_input, agent_id} or {id, tool, input, agent}")
    mixed = sorted(set(doc) & AMBIGUOUS[shape])
    if shape == "legacy" and "agent" in doc and "agent_id" in doc:
        mixed.append("agent_id")
    if mixed:
        raise InvalidInput(
            f"field(s) of the other payload shape beside {name_key!r}: {', '.join(mixed)}; send one "
            "shape, {tool_name, tool_input, agent_id} or {id, tool, input, agent}"
        )
    claims = sorted(k for k in doc if k in CLAIMS or k.lower() in CLAIMS)
    if claims:
        raise InvalidInput(
            f"field(s) that claim a decision, role or credential are not accepted in a request: "
            f"{', '.join(claims)} (credentials go in the Authorization header)"
        )
    extras = sorted(set(doc) - own)
    if len(extras) > MAX_EXTRA_FIELDS:
        raise InvalidInput(f"{len(extras)} extra fields; at most {MAX_EXTRA_FIELDS} are accepted")
    for key in extras:
        try:
            clean_text(key)
            clean_json(doc[key])
        except ValueError as exc:
            raise InvalidInput(f"{key}: {exc}") from None
    tool_name = doc.get(name_key)
    if not isinstance(tool_name, str) or not tool_name.strip() or len(tool_name) > TOOL_NAME_MAX:
        raise InvalidInput(f"{name_key} must be a non-empty string of at most {TOOL_NAME_MAX} characters")
    try:
        clean_text(tool_name)
    except ValueError as exc:
        raise InvalidInput(f"{name_key} {exc}") from None
    tool_input = doc.get(input_key, {})
    if isinstance(tool_input, str):  # the older shape allowed a bare command string
        tool_input = {"command": tool_input}
    if not isinstance(tool_input, dict):
        raise InvalidInput(f"{input_key} must be an object")
    try:
        clean_json(tool_input)
    except ValueError as exc:
        raise InvalidInput(f"{input_key}: {exc}") from None
    size = len(json.dumps(tool_input, separators=(",", ":")).encode())
    if size > max_input_bytes:
        raise TooLarge(f"{input_key} is {size} bytes; the limit is {max_input_bytes}")
    request_id = _opt_str(doc, "id" if shape == "legacy" else "tool_use_id", 128)
    claimed = _opt_str(doc, agent_key)
    if shape == "legacy" and claimed is None and "agent_id" in doc:
        claimed = _opt_str(doc, "agent_id")  # a legacy-shaped body with the newer agent key
    return ValidationRequest(
        tool_name,
        tool_input,
        claimed,
        request_id,
        shape,
        tuple(k for k in extras if k != "agent_id" or shape != "legacy"),
    )

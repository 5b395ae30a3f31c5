"""The two upstream /validate payload shapes, normalised to one request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lighthouse_bridge.errors import InvalidInput, TooLarge
from lighthouse_bridge.models import clean_json, clean_text

TOOL_NAME_MAX = 128


@dataclass(frozen=True)
class ValidationRequest:
    tool_name: str
    tool_input: dict[str, Any]
    claimed_agent: str | None
    request_id: str | None
    shape: str  # "current" ({tool_name, tool_input, agent_id}) or "legacy" ({id, tool, input, agent})

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
    """Accept {tool_name, tool_input, agent_id} or the older {id?, tool, input, agent}; 422/413 otherwise."""
    if not isinstance(doc, dict):
        raise InvalidInput("body must be a JSON object")
    current = {
        "tool_name",
        "tool_input",
        "agent_id",
        "session_id",
        "hook_event_name",
        "cwd",
        "transcript_path",
        "permission_mode",
        "tool_use_id",
    }
    legacy = {"id", "tool", "input", "agent"}
    if "tool_name" in doc:
        shape, name_key, input_key, agent_key, allowed = "current", "tool_name", "tool_input", "agent_id", current
    elif "tool" in doc:
        shape, name_key, input_key, agent_key, allowed = "legacy", "tool", "input", "agent", legacy
    else:
        raise InvalidInput("expected {tool_name, tool_input, agent_id} or {id, tool, input, agent}")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field(s) for the {shape} payload shape: {', '.join(unknown)}")
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
    return ValidationRequest(tool_name, tool_input, _opt_str(doc, agent_key), request_id, shape)

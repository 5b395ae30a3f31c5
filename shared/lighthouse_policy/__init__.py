"""The validation policy's schema: one model for the bridge (which loads the policy file) and the operator (whose
CRD types `spec.bridge.policy` with it, and which refuses an invalid policy before the bridge ever sees it).

pydantic only: both images carry this module, neither carries the other component.

Policy file (all keys optional; an empty file or ``{}`` means the upstream defaults)::

    include_defaults: true          # append the upstream rules after yours
    default_action: escalate        # when no rule matches
    escalation_timeout_seconds: 300
    read_only_tools: [Read, Glob, Grep, LS, NotebookRead, WebFetch, WebSearch]
    rules:
      - id: no-force-push
        tool: Bash                  # a name, a list of names, or "*" (default)
        command: 'git\\s+push\\b.*--force'   # regex searched in tool_input.command
        path: '^/srv/'              # regex searched in tool_input.file_path|path|notebook_path
        action: block               # approve | block | escalate
        reason: force pushes rewrite shared history

A rule matches when the tool matches and every regex it has matches. The first matching rule decides.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Action = Literal["approve", "block", "escalate"]
DEFAULT_READ_ONLY_TOOLS = ["Read", "Glob", "Grep", "LS", "NotebookRead", "WebFetch", "WebSearch", "TodoRead"]


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    tool: str | list[str] = Field("*", description='A tool name, a list of names, or "*" (any tool).')
    command: str | None = Field(None, max_length=4096, description="Regex searched in tool_input.command.")
    path: str | None = Field(
        None, max_length=4096, description="Regex searched in tool_input.file_path, path or notebook_path."
    )
    action: Action
    reason: str = Field("", max_length=1024)

    @field_validator("command", "path")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regex {v!r}: {exc}") from None
        return v


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    include_defaults: bool = Field(True, description="Append the upstream rules after these.")
    default_action: Action = Field("escalate", description="When no rule matches.")
    escalation_timeout_seconds: float | None = Field(None, gt=0, le=86400)
    read_only_tools: list[str] = Field(default_factory=lambda: list(DEFAULT_READ_ONLY_TOOLS))
    rules: list[RuleSpec] = Field(default_factory=list, description="Checked in order; the first match decides.")

    @model_validator(mode="after")
    def _unique_ids(self) -> PolicySpec:
        seen: set[str] = set()
        for i, r in enumerate(self.rules):
            r.id = r.id or f"rule-{i + 1}"
            if r.id in seen:
                raise ValueError(f"duplicate rule id {r.id!r}")
            seen.add(r.id)
        return self


__all__ = ["DEFAULT_READ_ONLY_TOOLS", "Action", "PolicySpec", "RuleSpec"]

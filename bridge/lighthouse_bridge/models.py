"""Typed inputs and results of the services: the HTTP API's OpenAPI contract, and any other front end's.

Pure pydantic (no web framework), so every layer may import it; the services take and return these types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_POSITION = 2**62
MAX_JSON_DEPTH = 32


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: reject both as input errors."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def clean_json(value: Any, depth: int = 0) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        clean_text(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            clean_text(k)
            clean_json(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            clean_json(v, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        raise ValueError("integers must fit in 64 bits")
    return value


Text = Annotated[str, AfterValidator(clean_text)]
JsonObject = Annotated[dict[str, Any], AfterValidator(clean_json)]
Name = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(clean_text)]
EventIdStr = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- events
class EventIn(_In):
    event_type: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")]
    aggregate_id: Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(clean_text)]
    aggregate_type: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$")]
    data: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    correlation_id: Name | None = None
    causation_id: Name | None = None
    source_agent: Name | None = None
    agent_id: Name | None = Field(None, description="Upstream name for source_agent; used when source_agent is unset.")
    event_id: EventIdStr | None = Field(None, description="Client-supplied id: a retry returns the original result.")
    expected_version: Annotated[int, Field(ge=0, le=MAX_POSITION)] | None = Field(
        None, description="Stream version before this event (0 = new stream); otherwise 409."
    )


class EventBatchIn(_In):
    events: Annotated[list[EventIn], Field(min_length=1)]


class AppendOut(BaseModel):
    event_id: str
    position: int
    version: int
    duplicate: bool = Field(False, description="True when the event_id was already stored (idempotent retry).")


class BatchOut(BaseModel):
    results: list[AppendOut]


class EventOut(BaseModel):
    position: int
    event_id: str
    event_type: str
    aggregate_id: str
    aggregate_type: str
    timestamp: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    correlation_id: str | None
    causation_id: str | None
    source_agent: str | None
    version: int


class EventPage(BaseModel):
    events: list[EventOut]
    next_from_position: int | None


# ---------------------------------------------------------------- shadow
class ShadowFile(BaseModel):
    path: str
    sha256: str
    size: int
    author: str | None
    position: int
    version: int
    modified_at: str


class ShadowList(BaseModel):
    position: int
    files: list[ShadowFile]
    truncated: bool = False


class ShadowContent(BaseModel):
    path: str
    content: str
    encoding: Literal["utf-8", "base64"]
    sha256: str
    size: int
    version: int
    position: int
    author: str | None


def one_of(doc: Any, *names: str) -> Any:
    """Before validation: refuse a body that sets a field under two of its names (which one would count?)."""
    if isinstance(doc, dict):
        given = [n for n in names if n in doc]
        if len(given) > 1:
            raise ValueError(f"send one of {', '.join(given)}, not both (they are names of the same field)")
    return doc


class ShadowUpdateIn(_In):
    operation: Literal["create", "modify", "delete", "move"]
    path: Annotated[str, Field(min_length=1, max_length=4096)] = Field(
        validation_alias=AliasChoices("path", "file_path"), description="The file; `file_path` is accepted too."
    )
    content: str | None = None
    encoding: Literal["utf-8", "base64"] = "utf-8"
    new_path: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    expected_version: Annotated[int, Field(ge=0, le=MAX_POSITION)] | None = None
    agent_id: Name | None = None
    event_id: EventIdStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, doc: Any) -> Any:
        return one_of(doc, "path", "file_path")


class SearchIn(_In):
    pattern: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(clean_text)]
    path_prefix: Annotated[str, Field(max_length=4096)] | None = None
    max_results: Annotated[int, Field(ge=1, le=100000)] = 100


class SearchMatch(BaseModel):
    path: str
    line: int
    text: str


class SearchOut(BaseModel):
    matches: list[SearchMatch]
    truncated: bool


# ---------------------------------------------------------------- history
class HistoryVersion(BaseModel):
    version: int
    position: int
    event_type: str
    sha256: str | None
    size: int | None
    timestamp: str
    author: str | None
    path: str = Field(description="Path of the file at this version.")
    from_path: str | None = Field(None, description="For a move into this path: where the file came from.")
    to_path: str | None = Field(None, description="For a move away from this path: where the file went.")


class HistoryOut(BaseModel):
    path: str
    versions: list[HistoryVersion]


class DiffOut(BaseModel):
    path: str
    from_position: int
    to_position: int
    diff: str


# ---------------------------------------------------------------- annotations
Severity = Literal["info", "low", "medium", "high", "critical"]


def _end_not_before(end_line: int | None, line: int | None) -> int | None:
    if end_line is not None and line is not None and end_line < line:
        raise ValueError("end_line must be >= line")
    return end_line


class AnnotationIn(_In):
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    line: Annotated[int, Field(ge=1, le=10_000_000)]
    end_line: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    message: Annotated[str, Field(min_length=1, max_length=10000), AfterValidator(clean_text)]
    category: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(clean_text)] = "general"
    severity: Severity = "info"
    author: Name

    @field_validator("end_line")
    @classmethod
    def _end(cls, v: int | None, info: Any) -> int | None:
        return _end_not_before(v, info.data.get("line"))


class ShadowAnnotateIn(_In):
    """The original bridge's designed /shadow/annotate body; today's names are accepted too."""

    path: Annotated[str, Field(min_length=1, max_length=4096)] = Field(
        validation_alias=AliasChoices("path", "file_path"), description="The file (`file_path` upstream)."
    )
    line: Annotated[int, Field(ge=1, le=10_000_000)]
    end_line: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    message: Annotated[str, Field(min_length=1, max_length=10000), AfterValidator(clean_text)] = Field(
        validation_alias=AliasChoices("message", "annotation"), description="The note (`annotation` upstream)."
    )
    category: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(clean_text)] = "general"
    severity: Severity = "info"
    author: Name | None = Field(
        None,
        validation_alias=AliasChoices("author", "expert_id"),
        description="Who wrote it (`expert_id` upstream); default: the caller's agent id.",
    )

    @field_validator("end_line")
    @classmethod
    def _end(cls, v: int | None, info: Any) -> int | None:
        return _end_not_before(v, info.data.get("line"))

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, doc: Any) -> Any:
        for names in (("path", "file_path"), ("message", "annotation"), ("author", "expert_id")):
            one_of(doc, *names)
        return doc


class AnnotationUpdateIn(_In):
    line: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    end_line: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    message: Annotated[str, Field(min_length=1, max_length=10000), AfterValidator(clean_text)] | None = None
    category: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(clean_text)] | None = None
    severity: Severity | None = None
    author: Name | None = None


class Anchor(BaseModel):
    status: Literal["exact", "moved", "stale"] = Field(description="Where the annotated text was found now.")
    text_hash: str
    context_hash: str
    lines: int
    original_line: int


class AnnotationOut(BaseModel):
    id: str
    path: str
    line: int
    end_line: int
    message: str
    category: str
    severity: str
    author: str
    anchor: Anchor
    created_at: str
    updated_at: str


class AnnotationList(BaseModel):
    annotations: list[AnnotationOut]


# ---------------------------------------------------------------- snapshots, blobs
class SnapshotIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class SnapshotOut(BaseModel):
    name: str
    position: int
    created_at: str
    file_count: int
    auto: bool


class SnapshotList(BaseModel):
    snapshots: list[SnapshotOut]


class BlobOut(BaseModel):
    sha256: str
    size: int


# ---------------------------------------------------------------- validation and escalations (agents)
class ValidateMetadata(BaseModel):
    risk_level: str
    cache_hit: bool
    expert_required: bool
    rule_id: str


class ValidateOut(BaseModel):
    decision: Literal["approved", "blocked", "escalated"]
    reason: str
    rule_id: str
    cache_hit: bool
    processing_time_ms: float
    read_only: bool
    command_hash: str
    escalation_id: str | None = None
    escalation_status: str | None = None
    deadline: str | None = None
    votes: list[dict[str, Any]] = Field(default_factory=list)
    # upstream-compatible fields
    approved: bool = Field(description="True exactly when decision is approved.")
    reasoning: str
    confidence: float
    metadata: ValidateMetadata
    status: Literal["approved", "blocked", "review_required"]
    id: str | None = None


class HookDecision(BaseModel):
    hookEventName: Literal["PreToolUse"]  # Claude Code's field names
    permissionDecision: Literal["allow", "deny", "ask"]
    permissionDecisionReason: str


class HookOut(BaseModel):
    """Claude Code's hook output for PreToolUse (only documented fields: it validates the output)."""

    hookSpecificOutput: HookDecision


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64)]
    status: Literal["approved", "approve", "rejected", "reject", "blocked"]
    reason: Annotated[Text, Field(min_length=1, max_length=2000)]


# ---------------------------------------------------------------- sessions and tokens (agents)
AgentId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$")]
Role = Literal["builder", "expert", "viewer", "admin", "enrolment"]


class SessionCreateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId
    role: Role = "builder"
    ttl_seconds: Annotated[int, Field(ge=60, le=366 * 86400)] | None = None
    enrol_roles: list[Literal["builder", "expert", "viewer"]] = Field(
        default_factory=list, description="For role=enrolment: the roles this enrolment token may mint."
    )
    # accepted for upstream compatibility (its clients send them); recorded in the audit line, not in the token
    metadata: dict[str, Any] | None = Field(None, description="Accepted for upstream compatibility; not stored.")
    ip_address: Annotated[str, Field(max_length=64)] | None = None
    user_agent: Annotated[str, Field(max_length=512)] | None = None


class SessionOut(BaseModel):
    session_id: str
    session_token: str
    expires_at: str
    agent_id: str
    role: str


class SessionValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_token: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    session_id: str | None = None
    agent_id: str | None = None


class SessionValidateOut(BaseModel):
    valid: bool
    session_id: str | None = None
    agent_id: str | None = None
    role: str | None = None
    expires_at: str | None = None
    reason: str | None = None


# ---------------------------------------------------------------- experts and their work queue (agents)
Capability = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId | None = Field(None, description="Defaults to the caller; only the admin may name another.")
    agent_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    capabilities: Annotated[list[Capability], Field(min_length=1, max_length=64)]


class DelegateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capability: Capability
    payload: JsonObject = Field(default_factory=dict)
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 3


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capabilities: Annotated[list[Capability], Field(min_length=1, max_length=64)] | None = Field(
        None, description="Subset of the registered capabilities to claim from (default: all of them)."
    )
    lease_seconds: Annotated[float, Field(gt=0, le=86400)] | None = None


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: JsonObject = Field(default_factory=dict)


class FailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: Annotated[Text, Field(min_length=1, max_length=4000)]
    retry: bool = True


# ---------------------------------------------------------------- elicitations, tasks, collaborations (agents)
# An addressee: an agent id, or `role:<role>` for whoever holds that role (a person holds a token like any agent).
def _addressee(v: str) -> str:
    if v.startswith("role:") and v[5:] not in ("builder", "expert", "viewer", "admin"):
        raise ValueError("a role addressee is role:builder, role:expert, role:viewer or role:admin")
    return v


Addressee = Annotated[
    str, Field(min_length=1, max_length=134, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"), AfterValidator(_addressee)
]
Timeout = Annotated[
    float,
    Field(
        gt=0,
        le=30 * 86400,
        description="Seconds until the deadline (default and upper bound: LIGHTHOUSE_ELICITATION_*)",
    ),
]
Message = Annotated[str, Field(min_length=1, max_length=20000), AfterValidator(clean_text)]


class ElicitationIn(_In):
    """Ask an agent, a role or a person a question (the original's POST /elicitation/create)."""

    to_agent: Addressee
    message: Message
    schema_: JsonObject | None = Field(
        None, alias="schema", description="JSON Schema the answer's `data` must satisfy when accepted (draft 2020-12)."
    )
    timeout_seconds: Timeout | None = None
    metadata: JsonObject = Field(default_factory=dict)
    from_agent: AgentId | None = Field(None, description="Accepted for the original's clients; must be the caller.")


class ElicitationRespondIn(_In):
    """Answer an elicitation (the original's POST /elicitation/respond)."""

    elicitation_id: Annotated[str, Field(min_length=1, max_length=64)]
    response_type: Literal["accept", "decline", "cancel"]
    data: Any = Field(None, description="The answer; required to accept (and checked against the schema).")
    responding_agent: AgentId | None = Field(
        None, description="Accepted for the original's clients; must be the caller."
    )
    metadata: JsonObject = Field(default_factory=dict, description="Accepted for the original's clients; not stored.")

    @field_validator("data")
    @classmethod
    def _data(cls, v: Any) -> Any:
        return clean_json(v)


class ElicitationOut(BaseModel):
    id: str
    kind: Literal["question", "task", "collaboration"]
    from_agent: str
    to_agent: str
    message: str
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    metadata: dict[str, Any]
    group_id: str | None
    status: Literal["pending", "accepted", "declined", "cancelled", "expired"]
    response: Any = None
    responded_by: str | None
    created_at: str
    deadline: str
    responded_at: str | None

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class ElicitationList(BaseModel):
    elicitations: list[ElicitationOut]
    count: int


class TaskDispatchIn(_In):
    """Dispatch a task to a named agent (the original's POST /task/dispatch): an elicitation of kind `task` that the
    agent answers (accept with its result, or decline)."""

    task_description: Message
    target_agent: Addressee
    priority: Literal["low", "normal", "high", "critical"] = "normal"
    timeout_seconds: Timeout | None = None
    result_schema: JsonObject | None = Field(None, description="JSON Schema the result must satisfy.")
    metadata: JsonObject = Field(default_factory=dict)


class CollaborationIn(_In):
    """Start a collaboration (the original's POST /collaboration/start): each participant is invited (an
    elicitation of kind `collaboration`) and accepts or declines; the collaboration's events share one stream."""

    collaboration_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")]
    participants: Annotated[list[Addressee], Field(min_length=1, max_length=32)]
    objective: Message
    timeout_seconds: Timeout | None = None
    metadata: JsonObject = Field(default_factory=dict)


class CollaborationOut(BaseModel):
    collaboration_id: str
    collaboration_type: str
    objective: str
    initiator: str
    participants: list[str]
    invitations: list[ElicitationOut]
    status: Literal["inviting", "active", "declined", "ended"]


# ---------------------------------------------------------------- health
class Livez(BaseModel):
    status: Literal["ok"]


class Readyz(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[str, dict[str, Any]]


class FuseHealth(BaseModel):
    """The shadow filesystem's state, for the operator's FuseAvailable condition (it reads /health, which is open)."""

    status: Literal["mounted", "not_mounted", "disabled", "unknown"]
    error: str | None = None


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    position: int
    uptime_seconds: float
    fuse: FuseHealth | None = None

"""Typed inputs and results of the services: the HTTP API's OpenAPI contract, and any other front end's.

Pure pydantic (no web framework), so every layer may import it; the services take and return these types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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


class ShadowUpdateIn(_In):
    operation: Literal["create", "modify", "delete", "move"]
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    content: str | None = None
    encoding: Literal["utf-8", "base64"] = "utf-8"
    new_path: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    expected_version: Annotated[int, Field(ge=0, le=MAX_POSITION)] | None = None
    agent_id: Name | None = None
    event_id: EventIdStr | None = None


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
        line = info.data.get("line")
        if v is not None and line is not None and v < line:
            raise ValueError("end_line must be >= line")
        return v


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


# ---------------------------------------------------------------- health
class Livez(BaseModel):
    status: Literal["ok"]


class Readyz(BaseModel):
    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[str, dict[str, Any]]


class Health(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    position: int
    uptime_seconds: float

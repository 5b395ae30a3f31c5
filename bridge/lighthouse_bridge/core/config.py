"""Settings: the only module that reads LIGHTHOUSE_* (and AWS_*) environment variables, with pydantic-settings.

Each process builds one object: the API server `Settings`, a client of the API (`ClientSettings`: the `health`
command; `HookSettings`: the pre-tool hook; `FuseSettings`: the FUSE mount and `run`), or the backup tool
(`BackupEnv`, which the backup's flags override). Every field carries a description; `lighthouse-bridge config` and
the README table come from `Settings`. Invalid values fail at start (`load`) with the offending variable named.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORT = 8765
DEFAULT_STATUS_FILE = Path("/run/lighthouse/fuse-status.json")


def loopback_url(port: int = DEFAULT_PORT) -> str:
    """The API on this host: the default bridge URL of every client (hook, `health`, FUSE)."""
    return f"http://127.0.0.1:{port}"


DEFAULT_BRIDGE_URL = loopback_url()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIGHTHOUSE_", extra="ignore", frozen=True)

    host: str = Field("127.0.0.1", description="Address the HTTP API binds to (the chart sets 0.0.0.0 in the pod).")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="HTTP API port.")
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Optional separate Prometheus port (e.g. 9090); 0 serves /metrics on the API only.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    database_url: str = Field(
        ..., description="PostgreSQL DSN (postgresql://user:pass@host:port/db); the event store of record."
    )
    database_pool_min: int = Field(2, ge=1, le=100, description="Minimum asyncpg pool size.")
    database_pool_max: int = Field(10, ge=2, le=200, description="Maximum asyncpg pool size.")
    database_timeout: float = Field(
        5.0, gt=0, le=300, description="Seconds before a PostgreSQL statement or pool acquire is abandoned (then 503)."
    )
    database_connect_timeout: float = Field(
        60.0, gt=0, le=3600, description="Seconds to keep retrying the first PostgreSQL connection at start."
    )

    redis_url: str | None = Field(
        None, description="Redis URL (redis://:pass@host:port/db) for the blob/listing cache; unset disables the cache."
    )
    redis_prefix: str = Field("lighthouse:", max_length=200, description="Prefix of every Redis key this bridge uses.")
    redis_timeout: float = Field(0.5, gt=0, le=30, description="Seconds before a Redis call counts as failed.")
    redis_required: bool = Field(
        False, description="When true /readyz fails while Redis is down; by default the bridge serves degraded."
    )
    cache_ttl_seconds: int = Field(3600, ge=1, description="TTL of cached blobs and listings in Redis.")
    cache_max_blob_bytes: int = Field(1 << 20, ge=0, description="Blobs larger than this are not cached in Redis.")

    project_path: Path | None = Field(
        None, description="Project tree ingested as file_created events on the first start with an empty store."
    )
    ingest_exclude: list[str] = Field(
        default_factory=lambda: [".git", "__pycache__", ".venv", "node_modules"],
        description="Directory names skipped by the initial ingest (JSON list).",
    )

    admin_token: str | None = Field(
        None, description="When set, every non-health route requires `Authorization: Bearer <token>`."
    )

    # ---- agents: identity, validation policy, escalations, experts, audit (lighthouse_bridge.agents)
    token_secret: str | None = Field(
        None,
        description="HMAC key for agent tokens; unset derives it from admin_token (rotating it voids tokens).",
    )
    token_default_ttl: int = Field(86400, ge=60, le=366 * 86400, description="Default agent token lifetime, seconds.")
    token_max_ttl: int = Field(30 * 86400, ge=60, le=366 * 86400, description="Longest agent token lifetime, seconds.")
    rate_limit_per_minute: int = Field(
        600,
        ge=0,
        description="Requests per agent token per minute, counted in Redis (0 disables; admin exempt).",
    )
    policy_file: Path | None = Field(
        None,
        description="Validation policy YAML (ordered rules); unset or empty uses the upstream default rules.",
    )
    policy_reload_interval: float = Field(2.0, gt=0, le=3600, description="Seconds between policy file checks.")
    escalation_timeout: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="Seconds an escalation waits for an expert before the fail-safe (read-only approved, else "
        "blocked); the policy's escalation_timeout_seconds overrides it.",
    )
    decision_cache_ttl: int = Field(3600, ge=0, description="Seconds a validation decision stays cached (0 disables).")
    max_validate_bytes: int = Field(64 << 10, ge=256, description="Largest /validate tool_input, JSON-encoded bytes.")
    experts: bool = Field(True, description="Run the built-in security and performance experts on file changes.")
    task_lease_seconds: float = Field(300.0, gt=0, le=86400, description="How long a claimed expert task is leased.")
    audit_log: Path = Field(
        Path("/app/data/events/audit.log"),
        description="Append-only JSON-lines log of security-relevant actions.",
    )
    compat_anonymous_validate: bool = Field(
        False,
        description="Compatibility mode for the original builder hook: POST /validate without a token gets "
        "real decisions (audited as `anonymous`, rate-limited, never able to approve). Off by "
        "default; see the README for what it costs.",
    )
    compat_anonymous_per_minute: int = Field(
        60,
        ge=1,
        description="Anonymous /validate calls per client address per minute (compatibility mode).",
    )
    compat_anonymous_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="Client networks allowed to call /validate anonymously (JSON list of CIDRs; default loopback).",
    )
    http_hook_wait: float = Field(
        120.0,
        ge=0,
        le=3600,
        description="Seconds POST /hooks/claude-code waits for an escalation decision; keep it below the hook's "
        "`timeout` in Claude Code's settings (docs/claude-code-settings.json uses 150).",
    )
    http_hook_undecided: Literal["deny", "ask"] = Field(
        "deny",
        description="The HTTP hook's answer for a write still escalated after the wait: deny (fail-safe) "
        "or ask (the person at the Claude Code prompt decides).",
    )
    elicitation_timeout: float = Field(
        300.0,
        gt=0,
        le=7 * 86400,
        description="Default seconds an elicitation (a question to an agent) stays open.",
    )
    elicitation_max_timeout: float = Field(
        7 * 86400.0,
        gt=0,
        le=30 * 86400,
        description="Longest deadline an elicitation may ask for, seconds.",
    )
    max_elicitation_bytes: int = Field(
        64 << 10,
        ge=256,
        description="Largest elicitation question, schema or answer, JSON-encoded bytes.",
    )
    mcp_session_idle_timeout: float = Field(
        1800.0,
        gt=0,
        le=86400,
        description="Seconds an idle MCP session (streamable HTTP at /mcp) is kept.",
    )

    fuse_mode: str = Field(
        "disabled", description="FUSE mount mode; anything but `disabled` makes /readyz check the FUSE status file."
    )
    fuse_status_file: Path = Field(
        DEFAULT_STATUS_FILE,
        description="JSON file written by the FUSE process: {mounted, mountpoint, error}.",
    )

    max_request_bytes: int = Field(16 << 20, ge=1024, description="Largest accepted request body (413 above).")
    max_file_bytes: int = Field(8 << 20, ge=1, description="Largest file content accepted or ingested.")
    max_path_bytes: int = Field(1024, ge=16, le=4096, description="Longest accepted path, in UTF-8 bytes.")
    max_batch_events: int = Field(5000, ge=1, description="Most events in one POST /events batch.")
    max_list_files: int = Field(10000, ge=1, description="Most files returned by one /shadow/list (then truncated).")
    max_search_results: int = Field(1000, ge=1, description="Upper bound for /shadow/search max_results.")
    max_search_bytes: int = Field(64 << 20, ge=1, description="Bytes of content one search may scan (then truncated).")
    search_timeout: float = Field(2.0, gt=0, le=60, description="Seconds one regex may run on one file.")
    max_diff_bytes: int = Field(4 << 20, ge=1, description="Largest diff returned (413 above).")

    snapshot_interval: int = Field(
        1000, ge=0, description="Take an automatic projection snapshot every N events (0 disables)."
    )
    snapshot_keep: int = Field(
        100, ge=1, description="Automatic snapshots kept (oldest pruned; named snapshots are never pruned)."
    )
    projection_poll_interval: float = Field(
        1.0, gt=0, le=60, description="Seconds between catch-up polls when no NOTIFY arrives (safety net)."
    )
    health_interval: float = Field(2.0, gt=0, le=60, description="Seconds between background dependency probes.")
    stream_heartbeat: float = Field(5.0, gt=0, le=300, description="Seconds of idle time between stream heartbeats.")

    @field_validator("database_url")
    @classmethod
    def _dsn(cls, v: str) -> str:
        if not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql:// or postgres://")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        if not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return v

    @field_validator("project_path")
    @classmethod
    def _project(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_dir():
            raise ValueError(f"{v} is not a directory")
        return v

    @field_validator("compat_anonymous_networks")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            ipaddress.ip_network(net, strict=False)  # ValueError names the bad entry
        return v

    @model_validator(mode="after")
    def _pool(self) -> Settings:
        if self.database_pool_min > self.database_pool_max:
            raise ValueError("database_pool_min must be <= database_pool_max")
        return self


class ClientSettings(BaseSettings):
    """A client of a running bridge: where its API is and which bearer token to send. Empty variables count as unset."""

    model_config = SettingsConfigDict(env_prefix="LIGHTHOUSE_", extra="ignore", frozen=True, env_ignore_empty=True)

    bridge_url: str | None = Field(None, description="Bridge API URL; unset: http://127.0.0.1:$LIGHTHOUSE_PORT.")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, description="The API's port, for the default bridge URL.")
    token: str | None = Field(None, description="Agent token sent as `Authorization: Bearer`.")
    admin_token: str | None = Field(None, description="The admin token; some clients fall back to it.")

    @property
    def url(self) -> str:
        return (self.bridge_url or loopback_url(self.port)).rstrip("/")

    @property
    def token_or_admin(self) -> str | None:
        """In the bridge pod the API, `health` and FUSE share one container: the admin token is the fallback."""
        return self.token or self.admin_token


class HookSettings(ClientSettings):
    """`lighthouse-bridge hook` (agents/hook.py)."""

    policy_file: Path | None = Field(None, description="Policy for the offline fallback (else the default rules).")
    hook_wait: float = Field(120.0, ge=0, description="Seconds to wait for an escalation decision.")
    hook_timeout: float = Field(10.0, gt=0, description="Seconds per request to the bridge.")
    agent_id: str | None = Field(None, description="Agent id sent with /validate (only the admin token may use it).")


class FuseSettings(ClientSettings):
    """`lighthouse-bridge fuse` and `run` (fs/); flags override these."""

    mount_point: str = Field("/mnt/lighthouse/project", description="Where the shadow filesystem is mounted.")
    fuse_mode: Literal["auto", "enabled", "disabled"] = Field("auto", description="`run`: disabled = API only.")
    fuse_writable: bool = Field(False, description="Allow writes in current/.")
    fuse_fd_socket: str | None = Field(
        None,
        description="Unix socket of the FUSE node plugin (fuse.mode csi): it mounts and hands over the /dev/fuse "
        "descriptor, so this process needs neither /dev/fuse nor any privilege.",
    )
    fuse_status_file: Path = Field(DEFAULT_STATUS_FILE, description="JSON status file read by the API's /readyz.")
    fuse_cache_dir: str | None = Field(None, description="Directory of the on-disk blob cache (default: a temp dir).")
    fuse_agent_id: str = Field("fuse", description="Author of the writes made through the mount.")
    fuse_cache_bytes: int = Field(256 << 20, ge=0, description="Blob cache budget in bytes.")
    fuse_prefetch_bytes: int = Field(128 << 20, ge=0, description="Bytes of blobs fetched ahead after a listing.")
    log_level: str = Field("INFO", description="Log level.")

    @field_validator("fuse_mode", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class BackupEnv(BaseSettings):
    """The backup tool's environment, as given (strings): backup/settings.py applies its flags over it and checks it,
    naming the variable in its errors. The operator fills these from the spec and the credentials Secret."""

    model_config = SettingsConfigDict(env_prefix="LIGHTHOUSE_", extra="ignore", frozen=True)

    s3_bucket: str | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    aws_region: str | None = Field(None, validation_alias="AWS_REGION")
    aws_default_region: str | None = Field(None, validation_alias="AWS_DEFAULT_REGION")
    s3_path_style: str | None = None
    s3_prefix: str = ""
    aws_access_key_id: str | None = Field(None, validation_alias="AWS_ACCESS_KEY_ID")
    aws_secret_access_key: str | None = Field(None, validation_alias="AWS_SECRET_ACCESS_KEY")
    aws_session_token: str | None = Field(None, validation_alias="AWS_SESSION_TOKEN")
    namespace: str | None = None
    name: str = "lighthouse"
    database_url: str | None = None
    database_wait_seconds: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "lighthouse:"
    backup_keep_last: str | None = None
    backup_max_age: str | None = None
    backup_config_files: str = ""
    backup_cache: str = "false"
    backup_part_size_mib: str | None = None
    backup_compress: str | None = None
    backup_result_file: str | None = None  # the operator's Jobs set /dev/termination-log
    restore_result_file: str | None = None
    log_level: str = "info"


S = TypeVar("S", bound=BaseSettings)


def invalid_variables(exc: ValidationError) -> list[str]:
    """One `VARIABLE: message` per error."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "settings"
        var = field if field.isupper() else f"LIGHTHOUSE_{field.upper()}"
        lines.append(f"{var}: {err['msg']}")
    return lines


def load(cls: type[S], prog: str = "lighthouse-bridge", **overrides: Any) -> S:
    """`cls` from the environment (+ overrides that are not None); exits 2 naming every offending variable."""
    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = "\n".join(f"  {line}" for line in invalid_variables(exc))
        print(f"{prog}: invalid configuration:\n{lines}", file=sys.stderr)
        raise SystemExit(2) from None


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting, for docs and `lighthouse-bridge config`."""
    rows = []
    for name, f in Settings.model_fields.items():
        default = "(required)" if f.is_required() else repr(f.get_default(call_default_factory=True))
        rows.append((f"LIGHTHOUSE_{name.upper()}", default, f.description or ""))
    return rows

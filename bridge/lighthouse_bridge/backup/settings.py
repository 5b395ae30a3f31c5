"""Backup settings: flags override LIGHTHOUSE_* / AWS_* environment variables (the operator fills them from the
LighthouseBridge spec and the credentials Secret)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .layout import Layout
from .retention import Policy, parse_duration
from .storage import MiB, S3Settings

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class BackupSettings:
    s3: S3Settings
    layout: Layout
    database_url: str | None
    policy: Policy = field(default_factory=Policy)
    config_files: tuple[Path, ...] = ()
    redis_url: str | None = None
    redis_prefix: str = "lighthouse:"
    include_cache: bool = False
    part_size: int = 8 * MiB
    compress: int | None = None
    database_wait: float = 0.0  # seconds to wait for PostgreSQL to accept connections (restore into a new database)

    def require_database(self) -> str:
        if not self.database_url:
            raise ConfigError("no database: set LIGHTHOUSE_DATABASE_URL or pass --database-url")
        return self.database_url


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE:
        return True
    if v in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}")


def _int(name: str, value: str | int | None, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {value!r}") from None
    if n < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {n}")
    return n


def _default_namespace() -> str:
    try:
        return SA_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def resolve(args: Any, environ: Mapping[str, str] | None = None) -> BackupSettings:
    """Settings from parsed flags (attributes may be missing or None) and the environment."""
    env = os.environ if environ is None else environ

    def pick(attr: str, var: str, default: Any = None) -> Any:
        value = getattr(args, attr, None)
        if value is not None:
            return value
        return env.get(var, default)

    bucket = pick("bucket", "LIGHTHOUSE_S3_BUCKET")
    if not bucket:
        raise ConfigError("no S3 bucket: set LIGHTHOUSE_S3_BUCKET or pass --bucket")
    endpoint = pick("endpoint", "LIGHTHOUSE_S3_ENDPOINT") or None
    path_style_raw = pick("path_style", "LIGHTHOUSE_S3_PATH_STYLE")
    # Most S3-compatible servers (MinIO, Ceph, moto) want path-style; AWS itself wants virtual-host style.
    path_style = bool(endpoint) if path_style_raw is None else (
        path_style_raw if isinstance(path_style_raw, bool) else _bool("LIGHTHOUSE_S3_PATH_STYLE", path_style_raw))
    s3 = S3Settings(
        bucket=bucket,
        endpoint=endpoint,
        region=pick("region", "LIGHTHOUSE_S3_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
        path_style=path_style,
        access_key=env.get("AWS_ACCESS_KEY_ID"),
        secret_key=env.get("AWS_SECRET_ACCESS_KEY"),
        session_token=env.get("AWS_SESSION_TOKEN"),
    )
    try:
        layout = Layout(
            prefix=pick("prefix", "LIGHTHOUSE_S3_PREFIX", "") or "",
            namespace=pick("namespace", "LIGHTHOUSE_NAMESPACE") or _default_namespace(),
            name=pick("name", "LIGHTHOUSE_NAME", "lighthouse"),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    keep_last = _int("keep-last (LIGHTHOUSE_BACKUP_KEEP_LAST)", pick("keep_last", "LIGHTHOUSE_BACKUP_KEEP_LAST"), 1)
    max_age_raw = pick("max_age", "LIGHTHOUSE_BACKUP_MAX_AGE")
    try:
        max_age = parse_duration(max_age_raw) if max_age_raw else None
        policy = Policy(keep_last=keep_last, max_age=max_age)
    except ValueError as exc:
        raise ConfigError(f"retention: {exc}") from None

    files = getattr(args, "config_file", None)
    if not files:
        raw = env.get("LIGHTHOUSE_BACKUP_CONFIG_FILES", "")
        files = [f for f in raw.replace(",", ":").split(":") if f]
    cache_raw = getattr(args, "cache", None)
    include_cache = cache_raw if cache_raw is not None else _bool(
        "LIGHTHOUSE_BACKUP_CACHE", env.get("LIGHTHOUSE_BACKUP_CACHE", "false"))
    part_mib = _int("part size (LIGHTHOUSE_BACKUP_PART_SIZE_MIB)",
                    pick("part_size_mib", "LIGHTHOUSE_BACKUP_PART_SIZE_MIB", 8), 5)
    compress = _int("compress (LIGHTHOUSE_BACKUP_COMPRESS)", pick("compress", "LIGHTHOUSE_BACKUP_COMPRESS"), 0)
    if compress is not None and compress > 9:
        raise ConfigError("compress must be between 0 and 9")
    wait_raw = pick("wait_for_database", "LIGHTHOUSE_DATABASE_WAIT_SECONDS")
    database_wait = _int("wait-for-database (LIGHTHOUSE_DATABASE_WAIT_SECONDS)", wait_raw, 0) or 0
    return BackupSettings(
        s3=s3,
        layout=layout,
        database_url=pick("database_url", "LIGHTHOUSE_DATABASE_URL"),
        policy=policy,
        config_files=tuple(Path(f) for f in files),
        redis_url=env.get("LIGHTHOUSE_REDIS_URL") or None,
        redis_prefix=env.get("LIGHTHOUSE_REDIS_PREFIX", "lighthouse:"),
        include_cache=include_cache,
        part_size=(part_mib or 8) * MiB,
        compress=compress,
        database_wait=float(database_wait),
    )

"""Backup settings: flags override the LIGHTHOUSE_* / AWS_* environment (read by core.config.BackupEnv; the
operator fills it from the LighthouseBridge spec and the credentials Secret)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lighthouse_bridge.core.config import BackupEnv

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


def resolve(args: Any, env: BackupEnv | None = None) -> BackupSettings:
    """Settings from parsed flags (attributes may be missing or None) over the environment."""
    env = BackupEnv() if env is None else env

    def pick(attr: str, value: Any) -> Any:
        flag = getattr(args, attr, None)
        return flag if flag is not None else value

    bucket = pick("bucket", env.s3_bucket)
    if not bucket:
        raise ConfigError("no S3 bucket: set LIGHTHOUSE_S3_BUCKET or pass --bucket")
    endpoint = pick("endpoint", env.s3_endpoint) or None
    path_style_raw = pick("path_style", env.s3_path_style)
    # Most S3-compatible servers (MinIO, Ceph, moto) want path-style; AWS itself wants virtual-host style.
    path_style = (
        bool(endpoint)
        if path_style_raw is None
        else (path_style_raw if isinstance(path_style_raw, bool) else _bool("LIGHTHOUSE_S3_PATH_STYLE", path_style_raw))
    )
    s3 = S3Settings(
        bucket=bucket,
        endpoint=endpoint,
        region=pick("region", env.s3_region) or env.aws_region or env.aws_default_region,
        path_style=path_style,
        access_key=env.aws_access_key_id,
        secret_key=env.aws_secret_access_key,
        session_token=env.aws_session_token,
    )
    try:
        layout = Layout(
            prefix=pick("prefix", env.s3_prefix) or "",
            namespace=pick("namespace", env.namespace) or _default_namespace(),
            name=pick("name", env.name),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    keep_last = _int("keep-last (LIGHTHOUSE_BACKUP_KEEP_LAST)", pick("keep_last", env.backup_keep_last), 1)
    max_age_raw = pick("max_age", env.backup_max_age)
    try:
        max_age = parse_duration(max_age_raw) if max_age_raw else None
        policy = Policy(keep_last=keep_last, max_age=max_age)
    except ValueError as exc:
        raise ConfigError(f"retention: {exc}") from None

    files = getattr(args, "config_file", None)
    if not files:
        files = [f for f in env.backup_config_files.replace(",", ":").split(":") if f]
    cache_raw = getattr(args, "cache", None)
    include_cache = cache_raw if cache_raw is not None else _bool("LIGHTHOUSE_BACKUP_CACHE", env.backup_cache)
    part_mib = _int("part size (LIGHTHOUSE_BACKUP_PART_SIZE_MIB)", pick("part_size_mib", env.backup_part_size_mib), 5)
    compress = _int("compress (LIGHTHOUSE_BACKUP_COMPRESS)", pick("compress", env.backup_compress), 0)
    if compress is not None and compress > 9:
        raise ConfigError("compress must be between 0 and 9")
    wait_raw = pick("wait_for_database", env.database_wait_seconds)
    database_wait = _int("wait-for-database (LIGHTHOUSE_DATABASE_WAIT_SECONDS)", wait_raw, 0) or 0
    return BackupSettings(
        s3=s3,
        layout=layout,
        database_url=pick("database_url", env.database_url),
        policy=policy,
        config_files=tuple(Path(f) for f in files),
        redis_url=env.redis_url or None,
        redis_prefix=env.redis_prefix,
        include_cache=include_cache,
        part_size=(part_mib or 8) * MiB,
        compress=compress,
        database_wait=float(database_wait),
    )

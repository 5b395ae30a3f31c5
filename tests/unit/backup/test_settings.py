import os
from argparse import Namespace
from collections.abc import Callable
from datetime import timedelta

import pytest
from lighthouse_bridge.backup.errors import ConfigError
from lighthouse_bridge.backup.settings import BackupSettings
from lighthouse_bridge.backup.settings import resolve as resolve_settings
from lighthouse_bridge.core.config import BackupEnv

ENV = {
    "LIGHTHOUSE_S3_BUCKET": "bkt",
    "LIGHTHOUSE_S3_ENDPOINT": "http://127.0.0.1:29000",
    "LIGHTHOUSE_S3_PREFIX": "backups",
    "LIGHTHOUSE_NAMESPACE": "team-a",
    "LIGHTHOUSE_NAME": "bridge-1",
    "LIGHTHOUSE_DATABASE_URL": "postgresql://u:p@h:1/db",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


Resolve = Callable[[Namespace, dict[str, str]], BackupSettings]


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> Resolve:
    """resolve() with exactly `env` as the process environment (read by core.config.BackupEnv)."""

    def run(args: Namespace, env: dict[str, str]) -> BackupSettings:
        for name in list(os.environ):
            if name.startswith(("LIGHTHOUSE_", "AWS_")):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return resolve_settings(args, BackupEnv())

    return run


def test_from_environment(resolve: Resolve) -> None:
    s = resolve(Namespace(), ENV)
    assert s.s3.bucket == "bkt" and s.s3.endpoint == "http://127.0.0.1:29000"
    assert s.s3.path_style is True  # custom endpoint: path-style by default
    assert s.s3.region == "eu-west-1"
    assert s.layout.root == "backups/team-a/bridge-1/"
    assert not s.policy.enabled
    assert s.part_size == 8 * 1024 * 1024


def test_flags_override_environment(resolve: Resolve) -> None:
    args = Namespace(
        bucket="other", prefix="", name="b2", keep_last=3, max_age="7d", path_style=False, part_size_mib=16
    )
    s = resolve(args, {**ENV, "LIGHTHOUSE_BACKUP_KEEP_LAST": "9"})
    assert s.s3.bucket == "other" and s.s3.path_style is False
    assert s.layout.root == "team-a/b2/"
    assert s.policy.keep_last == 3 and s.policy.max_age == timedelta(days=7)
    assert s.part_size == 16 * 1024 * 1024


def test_aws_without_endpoint_uses_virtual_host_style(resolve: Resolve) -> None:
    env = {k: v for k, v in ENV.items() if k != "LIGHTHOUSE_S3_ENDPOINT"}
    assert resolve(Namespace(), env).s3.path_style is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIGHTHOUSE_S3_BUCKET": ""}, "no S3 bucket"),
        ({"LIGHTHOUSE_S3_PATH_STYLE": "maybe"}, "LIGHTHOUSE_S3_PATH_STYLE must be true or false"),
        ({"LIGHTHOUSE_BACKUP_KEEP_LAST": "0"}, "at least 1"),
        ({"LIGHTHOUSE_BACKUP_KEEP_LAST": "two"}, "must be an integer"),
        ({"LIGHTHOUSE_BACKUP_MAX_AGE": "soon"}, "retention: not a duration"),
        ({"LIGHTHOUSE_BACKUP_PART_SIZE_MIB": "4"}, "at least 5"),
        ({"LIGHTHOUSE_NAME": "a/b"}, "plain path segment"),
    ],
)
def test_bad_settings_name_the_variable(resolve: Resolve, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(Namespace(), {**ENV, **env})


def test_config_files_from_env(resolve: Resolve) -> None:
    s = resolve(Namespace(), {**ENV, "LIGHTHOUSE_BACKUP_CONFIG_FILES": "/a.yaml:/b.yaml"})
    assert [str(p) for p in s.config_files] == ["/a.yaml", "/b.yaml"]


def test_missing_database_is_reported_when_needed(resolve: Resolve) -> None:
    s = resolve(Namespace(), {k: v for k, v in ENV.items() if k != "LIGHTHOUSE_DATABASE_URL"})
    with pytest.raises(ConfigError, match="LIGHTHOUSE_DATABASE_URL"):
        s.require_database()

from __future__ import annotations

import subprocess
import sys

import pytest
from lighthouse_bridge.cli import build_parser, load_settings
from lighthouse_bridge.core.config import Settings, describe

DSN = "postgresql://u:p@127.0.0.1:1/db"


def test_every_setting_is_documented() -> None:
    rows = describe()
    assert len(rows) == len(Settings.model_fields)
    for var, _default, desc in rows:
        assert var.startswith("LIGHTHOUSE_") and desc, var


def test_env_prefix_and_cli_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTHOUSE_DATABASE_URL", DSN)
    monkeypatch.setenv("LIGHTHOUSE_PORT", "9999")
    monkeypatch.setenv("LIGHTHOUSE_HOST", "127.0.0.2")
    s = load_settings()
    assert isinstance(s, Settings) and s.port == 9999 and s.host == "127.0.0.2"
    s2 = load_settings(port=1234)
    assert isinstance(s2, Settings) and s2.port == 1234


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "LIGHTHOUSE_DATABASE_URL"),
        ({"LIGHTHOUSE_DATABASE_URL": "mysql://x"}, "postgresql://"),
        ({"LIGHTHOUSE_DATABASE_URL": DSN, "LIGHTHOUSE_PORT": "99999"}, "LIGHTHOUSE_PORT"),
        ({"LIGHTHOUSE_DATABASE_URL": DSN, "LIGHTHOUSE_REDIS_URL": "http://x"}, "LIGHTHOUSE_REDIS_URL"),
        ({"LIGHTHOUSE_DATABASE_URL": DSN, "LIGHTHOUSE_PROJECT_PATH": "/nonexistent/dir"}, "not a directory"),
        ({"LIGHTHOUSE_DATABASE_URL": DSN, "LIGHTHOUSE_LOG_LEVEL": "loud"}, "LIGHTHOUSE_LOG_LEVEL"),
    ],
)
def test_invalid_config_exits_2_with_the_variable_named(env: dict[str, str], needle: str) -> None:
    clean = {"PATH": "/usr/bin:/bin", **env}
    proc = subprocess.run(
        [sys.executable, "-m", "lighthouse_bridge.cli", "serve"], env=clean, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "invalid configuration" in proc.stderr
    assert needle in proc.stderr


def test_parser_has_serve_and_version() -> None:
    p = build_parser()
    args = p.parse_args(["serve", "--host", "127.0.0.1", "--port", "8000"])
    assert args.host == "127.0.0.1" and args.port == 8000
    assert p.parse_args(["version"]).func.__name__ == "cmd_version"


def test_version_command_prints_the_package_version() -> None:
    from lighthouse_bridge import __version__

    proc = subprocess.run(
        [sys.executable, "-m", "lighthouse_bridge.cli", "version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.strip() == __version__

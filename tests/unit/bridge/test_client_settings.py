"""The client processes' settings (hook, `health`, FUSE): read from the environment by core.config only."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from lighthouse_bridge.agents.hook import hook_config
from lighthouse_bridge.core.config import ClientSettings, FuseSettings, HookSettings
from lighthouse_bridge.fs.status import MountConfig


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LIGHTHOUSE_"):
            monkeypatch.delenv(name)


def test_default_url_follows_the_api_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ClientSettings().url == "http://127.0.0.1:8765"
    monkeypatch.setenv("LIGHTHOUSE_PORT", "9100")
    assert ClientSettings().url == "http://127.0.0.1:9100"
    monkeypatch.setenv("LIGHTHOUSE_BRIDGE_URL", "http://bridge:1/")
    assert ClientSettings().url == "http://bridge:1"
    monkeypatch.setenv("LIGHTHOUSE_BRIDGE_URL", "")  # empty counts as unset
    assert ClientSettings().url == "http://127.0.0.1:9100"


def test_fuse_settings_fill_the_mount_config_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTHOUSE_ADMIN_TOKEN", "adm")
    monkeypatch.setenv("LIGHTHOUSE_MOUNT_POINT", "/mnt/x")
    monkeypatch.setenv("LIGHTHOUSE_FUSE_WRITABLE", "true")
    monkeypatch.setenv("LIGHTHOUSE_FUSE_CACHE_BYTES", "1024")
    cfg = MountConfig.from_settings(FuseSettings(), mountpoint="/mnt/flag", writable=None)
    assert (cfg.mountpoint, cfg.writable, cfg.cache_bytes, cfg.token) == ("/mnt/flag", True, 1024, "adm")
    assert cfg.agent_id == "fuse" and cfg.status_file == "/run/lighthouse/fuse-status.json"
    monkeypatch.setenv("LIGHTHOUSE_TOKEN", "agent")
    assert MountConfig.from_settings(FuseSettings()).token == "agent"  # the agent token before the admin's


def test_hook_config_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTHOUSE_ADMIN_TOKEN", "adm")  # the hook never falls back to the admin token
    monkeypatch.setenv("LIGHTHOUSE_HOOK_WAIT", "7.5")
    monkeypatch.setenv("LIGHTHOUSE_AGENT_ID", "builder-1")
    cfg = hook_config(HookSettings())
    assert (cfg.url, cfg.token, cfg.wait, cfg.timeout, cfg.agent_id) == (
        "http://127.0.0.1:8765",
        None,
        7.5,
        10.0,
        "builder-1",
    )
    cfg = hook_config(HookSettings(), url="http://b:2/", token="t", wait=0)
    assert (cfg.url, cfg.token, cfg.wait) == ("http://b:2", "t", 0)


def test_hook_with_broken_configuration_blocks() -> None:
    """A hook that crashed (exit 1) would let the tool run; bad settings must block (exit 2) and say which."""
    env = {"PATH": os.environ["PATH"], "LIGHTHOUSE_HOOK_WAIT": "soon"}
    proc = subprocess.run(
        [sys.executable, "-m", "lighthouse_bridge.cli", "hook"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input='{"tool_name": "Bash", "tool_input": {"command": "ls"}}',
    )
    assert proc.returncode == 2, proc.stderr
    assert "LIGHTHOUSE_HOOK_WAIT" in proc.stderr


@pytest.mark.parametrize("var", ["LIGHTHOUSE_FUSE_CACHE_BYTES", "LIGHTHOUSE_FUSE_MODE", "LIGHTHOUSE_PORT"])
def test_fuse_commands_name_a_bad_variable(var: str) -> None:
    env = {"PATH": os.environ["PATH"], var: "bogus"}
    proc = subprocess.run(
        [sys.executable, "-m", "lighthouse_bridge.cli", "run"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert "invalid configuration" in proc.stderr and var in proc.stderr

"""helm and promtool, built from their pinned Go modules by hack/build-extra-tools.sh (cached by the pins)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def extra_tools_bin() -> Path:
    """Builds on first use (minutes on a cold machine, nothing afterwards) and returns the bin directory."""
    out = subprocess.run(
        [str(REPO_ROOT / "hack" / "build-extra-tools.sh")], check=True, capture_output=True, text=True, timeout=3600
    ).stdout
    bin_dir = Path(out.strip().splitlines()[-1])
    assert (bin_dir / "helm").is_file() and (bin_dir / "promtool").is_file(), bin_dir
    return bin_dir


def helm() -> str:
    return str(extra_tools_bin() / "helm")


def promtool() -> str:
    return str(extra_tools_bin() / "promtool")

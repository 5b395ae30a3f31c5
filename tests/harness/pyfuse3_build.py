"""What hack/build-pyfuse3.sh builds: pyfuse3 with the patch in hack/patches/, under a local version naming it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def pyfuse3_patched_version() -> str:
    """<version>+lighthouse.<first 12 hex digits of the patch's sha256>, as `pyfuse3.__version__` reports it."""
    (patch,) = (REPO_ROOT / "hack/patches").glob("pyfuse3-*.patch")
    version = patch.name.split("-")[1]
    return f"{version}+lighthouse.{hashlib.sha256(patch.read_bytes()).hexdigest()[:12]}"


def unpack_stock_pyfuse3(dest: Path) -> Path:
    """pyfuse3 as released, without our patch (hack/build-pyfuse3.sh --stock, cached machine-wide), unpacked into
    `dest`: put first on a process's PYTHONPATH, it is the pyfuse3 that process imports."""
    wheel = subprocess.run([str(REPO_ROOT / "hack/build-pyfuse3.sh"), "--stock", sys.executable], check=True,
                           capture_output=True, text=True).stdout.strip()
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    return dest

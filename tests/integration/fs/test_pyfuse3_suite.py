"""pyfuse3's own test suite, with the tests our patch adds, against the wheel we build (hack/test-pyfuse3.sh): the
patch (Operations.inode_as_fh, off by default) must leave the released behaviour intact and pass its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.fs.harness import FUSE_SKIP_REASON, REPO

PATCH_TESTS = ("test_handles", "test_inode_as_fh", "test_inode_as_fh_without_open")


def test_pyfuse3_suite_passes_with_our_patch() -> None:
    if FUSE_SKIP_REASON:
        pytest.skip(FUSE_SKIP_REASON)
    res = subprocess.run(
        [str(REPO / "hack/test-pyfuse3.sh"), sys.executable], capture_output=True, text=True, timeout=900, check=False
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    for name in PATCH_TESTS:  # the patch's tests ran (the suite is verbose: one line per test)
        assert f"test/test_fs.py::{name} PASSED" in out, out[-4000:]
    summary = res.stdout.strip().splitlines()[-1]  # "===== 20 passed, 2 deselected in 6.53s ====="
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # Only the upstream example with flaky times is left out (hack/test-pyfuse3.sh says why), nothing more.
    assert "2 deselected" in summary and "test_examples.py::test_passthroughfs" not in out, summary


def test_the_build_fails_loudly_when_the_patch_no_longer_applies(tmp_path: Path) -> None:
    # A copy of the build script with a patch whose context the sdist lacks, and the sdist already in its cache.
    root = tmp_path / "repo"
    (root / "hack/patches").mkdir(parents=True)
    (root / "hack/lib").mkdir()
    shutil.copy(REPO / "hack/build-pyfuse3.sh", root / "hack")
    shutil.copy(REPO / "hack/lib/common.sh", root / "hack/lib")
    (patch,) = (REPO / "hack/patches").glob("pyfuse3-*.patch")
    text = patch.read_text()
    # The hunk for read(): one of its context lines now differs from the sdist's source.
    hunk = "     c.off = off\n-    c.fh = fi.fh\n+    c.fh = ino if inode_as_fh else fi.fh\n     save_retval(fuse_read_"
    broken = text.replace(hunk, hunk.replace("c.off = off", "c.off = off + 0"), 1)
    assert broken != text
    (root / "hack/patches" / patch.name).write_text(broken)
    cache = tmp_path / "cache"
    (cache / "pyfuse3").mkdir(parents=True)
    built = subprocess.run(
        [str(REPO / "hack/build-pyfuse3.sh"), "--stock", sys.executable], capture_output=True, text=True, check=True
    ).stdout.strip()  # makes sure the real cache holds the sdist
    sdist = next(Path(built).parents[1].glob("pyfuse3-*.tar.gz"))
    shutil.copy(sdist, cache / "pyfuse3")
    res = subprocess.run(
        [str(root / "hack/build-pyfuse3.sh"), sys.executable],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "LIGHTHOUSE_CACHE": str(cache)},
    )
    assert res.returncode != 0
    assert f"{patch.name} does not apply to pyfuse3" in res.stderr, res.stderr
    assert not list(cache.glob("pyfuse3/wheel-*/*.whl"))  # nothing built, nothing cached

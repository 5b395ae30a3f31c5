"""pyfuse3's own test suite, with the tests our patch adds, against the wheel we build (hack/test-pyfuse3.sh): the
patch (Operations.inode_as_fh, off by default) must leave the released behaviour intact and pass its own tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.fs.harness import FUSE_SKIP_REASON, REPO

PATCH_TESTS = ("test_handles", "test_inode_as_fh", "test_inode_as_fh_without_open")


def test_pyfuse3_suite_passes_with_our_patch() -> None:
    if FUSE_SKIP_REASON:
        pytest.skip(FUSE_SKIP_REASON)
    res = subprocess.run([str(REPO / "hack/test-pyfuse3.sh"), sys.executable], capture_output=True, text=True,
                         timeout=900, check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    for name in PATCH_TESTS:  # the patch's tests ran (the suite is verbose: one line per test)
        assert f"test/test_fs.py::{name} PASSED" in out, out[-4000:]
    summary = res.stdout.strip().splitlines()[-1]  # "===== 22 passed in 6.53s ====="
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary

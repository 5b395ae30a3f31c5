#!/usr/bin/env bash
# Runs pyfuse3's own test suite (test/ of its sdist, with the tests our patch adds) against the wheel that
# hack/build-pyfuse3.sh builds: the patch must not break the released behaviour, and its new tests must pass.
#   hack/test-pyfuse3.sh [--stock] [PYTHON] [-- PYTEST-ARGS...]   (default: python3)
# --stock runs the released suite against the unpatched build. Needs /dev/fuse and fusermount3 (the suite mounts).
# The test environment (pytest, pytest-trio and trio, pinned) is cached in $LIGHTHOUSE_CACHE/pyfuse3/; the wheel is
# unpacked beside the tests of each run (worktrees share the environment, and may test different builds at once).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

TEST_PINS=(pytest==9.2.0 pytest-trio==0.8.0 trio==0.35.0)  # trio: what pyfuse3 runs on

stock=()
if [ "${1:-}" = "--stock" ]; then stock=(--stock); shift; fi
PY=python3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then PY=$1; shift; fi
[ "${1:-}" = "--" ] && shift
[ -e /dev/fuse ] || die "/dev/fuse is absent: pyfuse3's tests mount file systems"
apt_install fuse3

wheel=$(hack/build-pyfuse3.sh "${stock[@]}" "$PY")
# The suite comes from the same sdist (checked and cached by build-pyfuse3.sh), patched the same way.
version=$(basename "$wheel" | cut -d- -f2 | cut -d+ -f1)
sdist="$LIGHTHOUSE_CACHE/pyfuse3/pyfuse3-$version.tar.gz"
patch_file="$REPO_ROOT/hack/patches/pyfuse3-$version-inode-as-fh.patch"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar --no-same-owner -C "$tmp" -xzf "$sdist"
src="$tmp/pyfuse3-$version"
if [ ${#stock[@]} -eq 0 ]; then
  patch -d "$src" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch -s <"$patch_file" \
    || die "$patch_file does not apply to pyfuse3 $version"
fi

env_dir="$LIGHTHOUSE_CACHE/pyfuse3/test-env-$( (echo "${TEST_PINS[*]}"; "$PY" -c 'import sys; print(sys.version, sys.base_prefix)') | sha256sum | cut -c1-12)"
pinned_venv "$env_dir" "$PY" "${TEST_PINS[@]}"
"$env_dir/bin/python" -m zipfile -e "$wheel" "$tmp/site"
log "Running pyfuse3's test suite against $(basename "$wheel")"
# --installed: import the wheel's pyfuse3 (on PYTHONPATH), not the sources beside the tests (not compiled).
cd "$src"
# test_passthroughfs compares a file's times through the example passthrough file system with the source's, and
# sometimes they differ (upstream libfuse/pyfuse3#57, seen here too); the example is not code the patch touches.
PYTHONPATH="$tmp/site" "$env_dir/bin/python" -m pytest --installed -p no:cacheprovider \
  -k "not test_passthroughfs" test/ "$@"

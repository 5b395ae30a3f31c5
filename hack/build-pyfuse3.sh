#!/usr/bin/env bash
# Builds pyfuse3 from its PyPI sdist with the patch in hack/patches/ (Operations.inode_as_fh, which lets the shadow
# filesystem use the kernel's no-open mode), for the interpreter given, and prints the wheel's path on stdout.
#   hack/build-pyfuse3.sh [--stock] [PYTHON]   (default: python3; the wheel is for that interpreter's ABI)
# --stock builds the same sdist unpatched (the FUSE tests check that the shadow filesystem still works with it).
# Used by hack/bootstrap.sh (the virtualenv) and hack/images.sh (the bridge image, with Debian's python3).
# Fails loudly when the sdist's checksum differs or the patch no longer applies. The wheel is cached in
# $LIGHTHOUSE_CACHE/pyfuse3/ keyed on the version, the checksum, the patch, the build pins and the interpreter, so a
# warm run only checks that it exists. Cython is pinned: the sdist's generated C is deleted, so the patched .pyx is
# always what gets compiled (setuptools would silently compile the stale C if Cython were missing).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

VERSION=3.5.0
SDIST_SHA256=88399a9494b88603230bba300f4ba9ad63fece5ed514ca3633d555a0c6a42b24
SDIST_URL="https://files.pythonhosted.org/packages/b9/a9/ce2c0513e9611ee2ffeeb482a33d23a210326801d48866df30a989562d43/pyfuse3-$VERSION.tar.gz"
PATCH="$REPO_ROOT/hack/patches/pyfuse3-$VERSION-inode-as-fh.patch"
# Cython 3.2.4 generated the sdist's own C; setuptools and setuptools-scm satisfy its pyproject.toml.
BUILD_PINS=(Cython==3.2.4 setuptools==80.9.0 setuptools-scm==8.3.1)

stock=false
if [ "${1:-}" = "--stock" ]; then stock=true; shift; fi
PY=${1:-python3}
command -v "$PY" >/dev/null || die "no interpreter $PY"
[ -f "$PATCH" ] || die "missing $PATCH"

# The interpreter behind any virtualenv: .venv/bin/python and the python3 it was made from share one build.
py_id=$("$PY" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform(), sys.version.split()[0], sys.base_prefix)')
# A local version label: `pip list` and pyfuse3.__version__ show which patch a build carries.
local_version=$VERSION
$stock || local_version="$VERSION+lighthouse.$(sha256sum "$PATCH" | cut -c1-12)"
key=$( (echo "$VERSION $SDIST_SHA256 ${BUILD_PINS[*]} $py_id $(pkg-config --modversion fuse3 2>/dev/null)"
        if $stock; then echo stock; else cat "$PATCH"; fi) | sha256sum | cut -c1-16)
cache="$LIGHTHOUSE_CACHE/pyfuse3"
out="$cache/wheel-$key"

cached_wheel() { [ -f "$out/.complete" ] && compgen -G "$out/pyfuse3-$local_version-*.whl" | head -n1; }

if cached_wheel; then exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # worktrees share the cache: one build at a time, the others then find its wheel
if cached_wheel; then exit 0; fi

t0=$SECONDS
apt_install libfuse3-dev pkg-config gcc patch curl
sdist="$cache/pyfuse3-$VERSION.tar.gz"
if [ ! -f "$sdist" ] || ! echo "$SDIST_SHA256  $sdist" | sha256sum --check --status; then
  log "Downloading pyfuse3 $VERSION sdist"
  curl -fsSL --retry 3 -o "$sdist.tmp" "$SDIST_URL" || die "could not download $SDIST_URL"
  if ! echo "$SDIST_SHA256  $sdist.tmp" | sha256sum --check --status; then
    got=$(sha256sum "$sdist.tmp" | cut -d' ' -f1)
    rm -f "$sdist.tmp"
    die "pyfuse3-$VERSION.tar.gz: sha256 $got, expected $SDIST_SHA256 (refusing to build it)"
  fi
  mv "$sdist.tmp" "$sdist"
fi

tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar --no-same-owner -C "$tmp" -xzf "$sdist"
src="$tmp/pyfuse3-$VERSION"
rm -f "$src/src/pyfuse3/__init__.c"
if ! $stock && ! patch -d "$src" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch <"$PATCH" \
  >"$tmp/patch.log" 2>&1; then
  cat "$tmp/patch.log" >&2
  die "$PATCH does not apply to pyfuse3 $VERSION"
fi

# A build environment per interpreter, with the pinned build requirements (no build isolation: nothing unpinned).
benv="$cache/build-env-$(echo "$py_id ${BUILD_PINS[*]}" | sha256sum | cut -c1-12)"
pinned_venv "$benv" "$PY" "${BUILD_PINS[@]}"

log "Building pyfuse3 $local_version ($($stock && echo stock || basename "$PATCH"))"
SETUPTOOLS_SCM_PRETEND_VERSION_FOR_PYFUSE3="$local_version" \
  "$benv/bin/python" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$tmp/wheel" "$src" \
  >"$tmp/build.log" 2>&1 || { tail -n 40 "$tmp/build.log" >&2; die "building pyfuse3 failed"; }
wheel=$(compgen -G "$tmp/wheel/pyfuse3-$local_version-*.whl" | head -n1) || true
[ -n "$wheel" ] || die "pip produced no pyfuse3-$local_version wheel"
# The compiled module must come from the sources as patched (or not).
"$benv/bin/python" - "$wheel" "$stock" <<'EOF' || die "the built wheel does not match its sources"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    ext = [n for n in z.namelist() if n.startswith("pyfuse3/__init__") and n.endswith(".so")]
    assert ext, "no extension module"
    patched = b"inode_as_fh" in z.read(ext[0]) and b"inode_as_fh" in z.read("pyfuse3/_pyfuse3.py")
    assert patched == (sys.argv[2] == "false"), f"extension module patched={patched}"
EOF
rm -rf "$out"
mkdir -p "$out"
mv "$wheel" "$out/"
touch "$out/.complete"
log "Built $(basename "$wheel") ($((SECONDS - t0))s)"
cached_wheel

#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: Debian packages, the Python virtualenv at .venv (all extras),
# and the Go-built tools: control plane (hack/build-tools.sh), helm and promtool (hack/build-extra-tools.sh), the real
# node's kubelet, kube-proxy and CoreDNS (hack/build-node-tools.sh). Idempotent; a second run takes seconds.
#   hack/bootstrap.sh [python|apt|tools|all]   (default: all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

APT_PACKAGES=(
  postgresql postgresql-contrib redis-server   # real data services for the integration tier
  fuse3 libfuse3-dev pkg-config gcc            # pyfuse3 builds against libfuse3
  jq curl ca-certificates procps psmisc iproute2 lua5.4
)

do_apt() { apt_install "${APT_PACKAGES[@]}"; }

do_python() {
  local py=${PYTHON:-python3}
  local stamp=.venv/.lighthouse-stamp
  local want
  want=$( (cat pyproject.toml hack/build-pyfuse3.sh hack/patches/pyfuse3-*.patch; "$py" --version) | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x .venv/bin/python ]; then
    return 0
  fi
  log "Creating virtualenv .venv (extras: operator, bridge, fuse, csi, dev)"
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel >&2
  # pyfuse3 comes from our patched build (hack/build-pyfuse3.sh, cached), which the `fuse` extra then accepts.
  local pyfuse3_wheel
  pyfuse3_wheel=$(hack/build-pyfuse3.sh .venv/bin/python)
  .venv/bin/python -m pip install -q -e ".[operator,bridge,fuse,csi,dev]" "$pyfuse3_wheel" >&2
  echo "$want" >"$stamp"
  log "Virtualenv ready"
}

do_tools() {
  "$REPO_ROOT/hack/build-tools.sh" >/dev/null
  "$REPO_ROOT/hack/build-extra-tools.sh" >/dev/null
  "$REPO_ROOT/hack/build-node-tools.sh" >/dev/null
}

case "${1:-all}" in
  apt) do_apt ;;
  python) do_python ;;
  tools) do_tools ;;
  all) do_apt; do_python; do_tools ;;
  *) die "usage: $0 [python|apt|tools|all]" ;;
esac

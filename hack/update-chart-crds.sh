#!/usr/bin/env bash
# Copies the generated CRDs (crds/*.yaml), verbatim, to where the packaging needs them:
#   charts/lighthouse-operator/files/crds/  (templates/crds.yaml adds labels and helm.sh/resource-policy: keep)
#   manifests/base/crds/                    (kustomize cannot load files outside its directory tree)
#   hack/update-chart-crds.sh           update the copies
#   hack/update-chart-crds.sh --check   exit 1 (naming the files) when a copy drifted from crds/
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

SRC=crds
DESTS=(charts/lighthouse-operator/files/crds manifests/base/crds)

shopt -s nullglob
sources=("$SRC"/*.yaml)
[ ${#sources[@]} -gt 0 ] || die "no CRDs in $SRC/ (run hack/update-generated.sh first)"

check() {
  local drift=0 dst f
  for dst in "${DESTS[@]}"; do
    for f in "${sources[@]}"; do
      if ! cmp -s "$f" "$dst/$(basename "$f")"; then
        log "Drift: $dst/$(basename "$f") differs from $f"
        drift=1
      fi
    done
    for f in "$dst"/*.yaml; do
      [ -f "$SRC/$(basename "$f")" ] || { log "Drift: $f has no source in $SRC/"; drift=1; }
    done
  done
  [ "$drift" -eq 0 ] || die "CRD copies are out of date: run hack/update-chart-crds.sh (make generate)"
}

update() {
  local dst f
  for dst in "${DESTS[@]}"; do
    mkdir -p "$dst"
    for f in "$dst"/*.yaml; do
      [ -f "$SRC/$(basename "$f")" ] || { rm -f "$f"; log "Removed $f"; }
    done
    for f in "${sources[@]}"; do
      if ! cmp -s "$f" "$dst/$(basename "$f")"; then
        cp "$f" "$dst/$(basename "$f")"
        log "Updated $dst/$(basename "$f")"
      fi
    done
  done
}

case "${1:-}" in
  --check) check ;;
  "") update ;;
  *) die "usage: $0 [--check]" ;;
esac

#!/usr/bin/env bash
# Fails when generated files drift from their sources, then lints (ruff) and type-checks (mypy) the operator.
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

log "Regenerating into $tmp"
hack/update-generated.sh "$tmp"
rc=0
for f in crds/lighthouse.dev_lighthousebridges.yaml; do
  if ! diff -u "$f" "$tmp/$f"; then
    log "ERROR: $f is out of date: run hack/update-generated.sh (make generate) and commit the result"
    rc=1
  fi
done
if [ -x hack/update-chart-crds.sh ] && ! hack/update-chart-crds.sh --check; then
  log "ERROR: the chart/kustomize copies of the CRD drifted: run hack/update-generated.sh (make generate)"
  rc=1
fi
[ "$rc" -eq 0 ] || exit "$rc"
log "Generated files are up to date"

log "ruff"
.venv/bin/ruff check operator tests/unit/operator tests/integration/operator benchmarks/operator_*.py
log "mypy (operator package)"
.venv/bin/mypy --no-incremental -p lighthouse_operator
log "verify OK"

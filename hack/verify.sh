#!/usr/bin/env bash
# Fails when generated files drift from their sources, then checks the code: ruff (lint and format), the layering
# contracts (import-linter, pyproject.toml [tool.importlinter]) and mypy (strict for the operator).
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

operator_py=(operator tests/unit/operator tests/integration/operator tests/unit/harness benchmarks/operator_*.py
  benchmarks/rollout_bench.py benchmarks/_operator_harness.py)
log "ruff (operator)"
.venv/bin/ruff check "${operator_py[@]}"
.venv/bin/ruff format --check "${operator_py[@]}"
log "import-linter (layering contracts)"
.venv/bin/lint-imports
log "mypy --strict (operator package, and the test fake that stands in for its API client)"
.venv/bin/mypy --no-incremental --strict -p lighthouse_operator
.venv/bin/mypy --no-incremental --strict tests/unit/operator/fakes.py
log "verify OK"

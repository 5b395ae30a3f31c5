#!/usr/bin/env bash
# Fails when generated files drift from their sources, then checks the code: ruff (lint and format), the layering
# contracts (import-linter, pyproject.toml [tool.importlinter]) and mypy (strict for the operator). CI runs it before
# the tests (hack/test.sh all).
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

log "ruff check, ruff format --check (all the code; [tool.ruff.format] in pyproject.toml lists what is not yet formatted)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
log "import-linter (layering contracts)"
.venv/bin/lint-imports --no-cache
# Incremental, one cache per option set (.mypy_cache): a cold run takes seconds of CPU, a warm one about one.
log "mypy --strict (operator package, the kubectl plugin, and the test fake that stands in for its API client)"
.venv/bin/mypy --strict --cache-dir .mypy_cache/strict operator/lighthouse_operator operator/kubectl_lighthouse \
  tests/unit/operator/fakes.py
log "mypy (bridge package)"
.venv/bin/mypy -p lighthouse_bridge
log "verify OK"

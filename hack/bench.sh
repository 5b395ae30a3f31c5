#!/usr/bin/env bash
# Runs every benchmark in benchmarks/ (or the ones named) against real local servers. Each script prints its figures
# and appends them, with the command that produced them, to benchmarks/RESULTS.md.
#   hack/bench.sh [benchmarks/NAME.py ...]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

hack/services.sh up
hack/cluster.sh up
eval "$(hack/services.sh env)"
eval "$(hack/cluster.sh env)"

scripts=("$@")
if [ ${#scripts[@]} -eq 0 ]; then
  mapfile -t scripts < <(ls benchmarks/*.py 2>/dev/null | grep -v '/_')
fi
for s in "${scripts[@]}"; do
  log "Benchmark $s"
  .venv/bin/python "$s"
done

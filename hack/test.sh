#!/usr/bin/env bash
# Runs a test tier: unit | integration | e2e | all. Starts what the tier needs (data services, local cluster) and
# treats "no tests collected" (pytest exit 5) as a failure. Tests run in parallel pytest-xdist workers
# (LIGHTHOUSE_TEST_WORKERS, default 4: most integration time is spent waiting on controllers and timers, not CPU;
# 0 runs them in this process). Pytest arguments that choose workers themselves (-n, -p no:xdist) win. `all` (CI) runs hack/verify.sh first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

tier=${1:-all}; shift || true
case "$tier" in
  unit) marker="unit" ;;
  integration) marker="integration" ;;
  e2e) marker="e2e" ;;
  all) marker="unit or integration or e2e" ;;
  *) die "usage: $0 unit|integration|e2e|all [pytest args]" ;;
esac

if [ "$tier" = all ]; then
  log "Static checks first (hack/verify.sh): a lint, type or layering error fails the run before the slow tiers"
  hack/verify.sh
fi

if [ "$tier" != unit ]; then
  log "Starting data services (PostgreSQL, Redis, S3) on loopback"
  hack/services.sh up
  log "Starting the local control plane"
  hack/cluster.sh up
fi

workers=${LIGHTHOUSE_TEST_WORKERS:-4}
[ "$tier" = unit ] && workers=${LIGHTHOUSE_TEST_WORKERS:-2}
parallel=()
if [ "$workers" -gt 0 ] && ! printf '%s\n' "$@" | grep -qE '^(-n|--numprocesses)$|^-n[0-9a-z]|^--numprocesses=|^(-p)?no:xdist$'; then
  # loadgroup: tests marked xdist_group (tests/conftest.py SERIAL_GROUPS) share a worker.
  parallel=(-n "$workers" --dist loadgroup)
fi

log "Running pytest -m '$marker' ${parallel[*]}"
set +e
.venv/bin/python -m pytest -m "$marker" "${parallel[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  log "ERROR: pytest collected no tests for tier '$tier'"
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# Runs a test tier: unit | integration | e2e | node | all. Starts what the tier needs (data services, the local
# cluster, with its real node for the node tier) and treats "no tests collected" (pytest exit 5) as a failure. Tests
# marked `disruptive` (they stop or restart the real node) run after the others, alone, in a pytest run of their own.
# Tests run in parallel pytest-xdist workers (LIGHTHOUSE_TEST_WORKERS, default 4: most integration time is spent
# waiting on controllers and timers, not CPU; 0 runs them in this process). Pytest arguments that choose workers
# themselves (-n, -p no:xdist) win. `all` (CI) runs hack/verify.sh first. When another checkout holds the machine's
# real node, `node` stops at once and `all` runs the other tiers on kwok nodes, then fails for the node tier.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

tier=${1:-all}; shift || true
case "$tier" in
  unit) marker="unit" ;;
  integration) marker="integration" ;;
  e2e) marker="e2e" ;;
  node) marker="node" ;;
  all) marker="unit or integration or e2e or node" ;;
  *) die "usage: $0 unit|integration|e2e|node|all [pytest args]" ;;
esac

if [ "$tier" = all ]; then
  log "Static checks first (hack/verify.sh): a lint, type or layering error fails the run before the slow tiers"
  hack/verify.sh
fi

# Why the node tier cannot run here (another checkout holds the machine's one real node), or empty.
node_blocked=""
if [ "$tier" = node ] || [ "$tier" = all ]; then
  # The node tier needs the machine's real node; the other tiers take whatever cluster runs.
  export LIGHTHOUSE_CLUSTER_REAL_NODE=${LIGHTHOUSE_CLUSTER_REAL_NODE-1}
  if [ "$LIGHTHOUSE_CLUSTER_REAL_NODE" = 1 ] && ! node_blocked=$(hack/node.sh check 2>&1); then
    [ "$tier" = node ] && die "the node tier cannot run: ${node_blocked#*ERROR: }"
    # `all`: the other tiers still run (on kwok nodes only), and the run fails at the end for the node tier, never
    # silently green without it.
    log "The node tier cannot run: ${node_blocked#*ERROR: }"
    log "Running the other tiers on a kwok-only cluster; this run will fail for the node tier"
    export LIGHTHOUSE_CLUSTER_REAL_NODE=0
  else
    node_blocked=""
  fi
fi

if [ "$tier" != unit ]; then
  log "Starting data services (PostgreSQL, Redis, S3) on loopback"
  hack/services.sh up
  log "Starting the local cluster"
  hack/cluster.sh up >/dev/null
  # `make up`'s operator watches every namespace: it would reconcile the tests' bridges too. Park it meanwhile.
  eval "$(hack/cluster.sh env)"
  # namespace/name=replicas of each running one.
  parked=$(kubectl get deployments -A -l app.kubernetes.io/name=lighthouse-operator -o jsonpath='{range .items[?(@.spec.replicas>0)]}{.metadata.namespace}/{.metadata.name}={.spec.replicas}{"\n"}{end}' 2>/dev/null || true)
  for d in $parked; do
    log "Scaling ${d%=*} to 0 for the tests (back to ${d##*=} afterwards)"
    d=${d%=*}
    kubectl -n "${d%/*}" scale deployment "${d#*/}" --replicas=0 >/dev/null
  done
  # (Gone when the node tier's down test recreated the cluster: `make up` again brings the sample back.)
  restore_parked() {
    local d n
    for d in $parked; do
      n=${d##*=}; d=${d%=*}
      kubectl -n "${d%/*}" scale deployment "${d#*/}" --replicas="$n" >/dev/null 2>&1 || true
    done
  }
  trap restore_parked EXIT
fi

workers=${LIGHTHOUSE_TEST_WORKERS:-4}
[ "$tier" = unit ] && workers=${LIGHTHOUSE_TEST_WORKERS:-2}
parallel=()
if [ "$workers" -gt 0 ] && ! printf '%s\n' "$@" | grep -qE '^(-n|--numprocesses)$|^-n[0-9a-z]|^--numprocesses=|^(-p)?no:xdist$'; then
  # loadgroup: tests marked xdist_group (tests/conftest.py SERIAL_GROUPS) share a worker.
  parallel=(-n "$workers" --dist loadgroup)
fi

# The node tier runs in a pytest process of its own, one test at a time, beside the workers of the other tiers: its
# pods run for real on the machine's cores (bridges starting together starve their own probes), and xdist would set
# its modules' shared bridges up more than once. Its output is shown when it ends.
node_rc=0 node_pid=""
node_log="$LIGHTHOUSE_STATE/test-node.log"
if { [ "$tier" = node ] || [ "$tier" = all ]; } && [ -z "$node_blocked" ]; then
  mkdir -p "$LIGHTHOUSE_STATE"
  log "Running pytest -m 'node and not disruptive' -n 0 (output: $node_log)"
  .venv/bin/python -m pytest -m "node and not disruptive" -n 0 "$@" >"$node_log" 2>&1 &
  node_pid=$!
fi

rc=0
if [ "$tier" != node ]; then
  log "Running pytest -m '($marker) and not node and not disruptive' ${parallel[*]}"
  set +e
  .venv/bin/python -m pytest -m "($marker) and not node and not disruptive" "${parallel[@]}" "$@"
  rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then
    log "ERROR: pytest collected no tests for tier '$tier'"
    rc=1
  fi
fi
if [ -n "$node_pid" ]; then
  set +e
  wait "$node_pid"
  node_rc=$?
  set -e
  log "The node tier's run ($node_log):"
  cat "$node_log"
  # None collected: a failure for the node tier itself; in `all`, only when the caller did not narrow the run.
  if [ "$node_rc" -eq 5 ] && { [ "$tier" = node ] || [ $# -eq 0 ]; }; then
    log "ERROR: pytest collected no node-tier tests"
    node_rc=1
  fi
  if [ "$node_rc" -ne 0 ] && [ "$node_rc" -ne 5 ] && [ "$rc" -eq 0 ]; then rc=$node_rc; fi
fi
if [ -n "$node_blocked" ]; then
  log "ERROR: the node tier did not run: ${node_blocked#*ERROR: }"
  rc=1
elif [ "$tier" = node ] || [ "$tier" = all ]; then
  log "Running pytest -m '($marker) and disruptive' (alone: they stop or restart the real node)"
  set +e
  .venv/bin/python -m pytest -m "($marker) and disruptive" -n 0 "$@"
  drc=$?
  set -e
  # None selected is fine when the caller narrowed the run (-k, a path); a failure is not.
  if [ "$drc" -ne 0 ] && [ "$drc" -ne 5 ]; then rc=$drc; fi
fi
exit "$rc"

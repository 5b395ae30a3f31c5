#!/usr/bin/env bash
# `make up`: the local cluster, the CRD installed server-side, the operator running in the background, the sample
# LighthouseBridge (examples/minimal.yaml) reconciled to Ready. `make down` (hack/up.sh down) stops the operator and
# the cluster. State: .state/operator/{operator.pid,operator.log}.
#   hack/up.sh [up]     idempotent: reuses a running cluster and operator
#   hack/up.sh down     stop the operator and the cluster
#   hack/up.sh status   what runs
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

OP_DIR=$LIGHTHOUSE_STATE/operator
PIDFILE=$OP_DIR/operator.pid
OPLOG=$OP_DIR/operator.log
METRICS_PORT=${LIGHTHOUSE_OPERATOR_METRICS_PORT:-9469}
LIVENESS_PORT=${LIGHTHOUSE_OPERATOR_LIVENESS_PORT:-9470}
# Space-separated namespaces to scope the operator to (default: all namespaces). On a cluster shared with other
# operators under test, e.g. LIGHTHOUSE_OPERATOR_NAMESPACES=lighthouse-demo.
SCOPE=${LIGHTHOUSE_OPERATOR_NAMESPACES:-}
SAMPLE=examples/minimal.yaml
SAMPLE_NS=lighthouse-demo
SAMPLE_NAME=demo

operator_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start_operator() {
  if operator_running; then
    log "Operator already running pid=$(cat "$PIDFILE")"
    return 0
  fi
  mkdir -p "$OP_DIR"
  local scope=(--all-namespaces) ns
  if [ -n "$SCOPE" ]; then
    scope=()
    for ns in $SCOPE; do scope+=(--namespace "$ns"); done
  fi
  log "Starting the operator scope=${SCOPE:-all-namespaces} log=$OPLOG"
  nohup .venv/bin/lighthouse-operator "${scope[@]}" --metrics-port "$METRICS_PORT" \
    --liveness-port "$LIVENESS_PORT" >>"$OPLOG" 2>&1 &
  echo $! >"$PIDFILE"
  local i
  for i in $(seq 1 60); do
    if curl -fsS "http://127.0.0.1:$LIVENESS_PORT/healthz" >/dev/null 2>&1; then
      log "Operator is live pid=$(cat "$PIDFILE") liveness=http://127.0.0.1:$LIVENESS_PORT/healthz"
      return 0
    fi
    operator_running || { tail -n 30 "$OPLOG" >&2; die "the operator exited; see $OPLOG"; }
    sleep 1
  done
  die "the operator did not become live within 60 s; see $OPLOG"
}

stop_operator() {
  if operator_running; then
    local pid
    pid=$(cat "$PIDFILE")
    log "Stopping the operator pid=$pid"
    kill -TERM "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$PIDFILE"
}

do_up() {
  hack/bootstrap.sh all
  hack/cluster.sh up
  eval "$(hack/cluster.sh env)"
  log "Installing the CRD (server-side apply)"
  kubectl apply --server-side --field-manager=lighthouse-install --force-conflicts -f crds/ >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd/lighthousebridges.lighthouse.dev >/dev/null
  start_operator
  log "Applying $SAMPLE"
  kubectl apply --server-side --field-manager=lighthouse-sample -f "$SAMPLE" >/dev/null
  log "Waiting for lhb/$SAMPLE_NAME to be Ready (the operator creates its children; kwok runs the pods)"
  if ! kubectl -n "$SAMPLE_NS" wait --for=condition=Ready --timeout=180s "lhb/$SAMPLE_NAME" >/dev/null; then
    kubectl -n "$SAMPLE_NS" describe "lhb/$SAMPLE_NAME" >&2 || true
    die "lhb/$SAMPLE_NAME did not become Ready; operator log: $OPLOG"
  fi
  echo
  kubectl get lhb -A
  cat <<MSG

Lighthouse is up. Look further with:
  eval "\$(hack/cluster.sh env)"                      # KUBECONFIG and kubectl for this shell
  kubectl -n $SAMPLE_NS describe lhb/$SAMPLE_NAME            # conditions, components, Events
  kubectl get lighthouse -A                          # the category: every Lighthouse resource
  kubectl -n $SAMPLE_NS get all,secrets,pvc,networkpolicies -l app.kubernetes.io/instance=$SAMPLE_NAME
  kubectl -n $SAMPLE_NS scale lhb/$SAMPLE_NAME --replicas=2  # the scale subresource
  curl -s http://127.0.0.1:$METRICS_PORT/metrics | grep lighthouse_operator_   # operator metrics
  tail -f $OPLOG
  make down                                          # stop the operator and the cluster
MSG
}

do_down() {
  stop_operator
  hack/cluster.sh down
}

do_status() {
  if operator_running; then echo "operator: running pid=$(cat "$PIDFILE") log=$OPLOG"; else echo "operator: stopped"; fi
  hack/cluster.sh status || true
}

case "${1:-up}" in
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  *) die "usage: $0 [up|down|status]" ;;
esac

#!/usr/bin/env bash
# The local Kubernetes cluster for development and tests: real etcd, kube-apiserver, kube-controller-manager and
# kube-scheduler built by hack/build-tools.sh, run by kwokctl's binary runtime, with fake kwok nodes whose pods follow
# the stages in hack/cluster/stages/, and optionally ONE real node (hack/node.sh: containerd, kubelet, kube-proxy,
# CoreDNS) that really runs pods. Everything listens on 127.0.0.1 or on the node's own address; nothing is
# downloaded.
#
#   hack/cluster.sh up          start the cluster (reuses a running one), wait for Ready nodes
#   hack/cluster.sh down        stop every process of the cluster (and of its node) and delete its state
#   hack/cluster.sh status      show the cluster (exit 1 when it is not running)
#   hack/cluster.sh kubeconfig  print the kubeconfig path
#   hack/cluster.sh env         print `export KUBECONFIG=...` and a PATH with our kubectl first
#
# Settings (environment): LIGHTHOUSE_CLUSTER_PORT (apiserver port, default 26443), LIGHTHOUSE_CLUSTER_NODES (fake
# nodes, default 2), LIGHTHOUSE_CLUSTER_WORKDIR (default $LIGHTHOUSE_STATE/kwok, i.e. .state/kwok in the checkout),
# LIGHTHOUSE_CLUSTER_REAL_NODE: 1 = the cluster has the machine's real node (a running cluster without one is
# recreated; refused while another checkout's node is up), 0 = kwok nodes only (a running cluster with a node is
# recreated without), unset = reuse whatever runs, create kwok-only. `make up` and `make test` ask for 1. With a real
# node the fake nodes are tainted: a namespace opts in with annotations (hack/cluster/README.md).
# The cluster lives in $LIGHTHOUSE_CLUSTER_WORKDIR/clusters/lighthouse: kubeconfig.yaml, logs/ (one log per
# component, audit.log for the apiserver's write requests, node-*.log for the real node), pids/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NAME=lighthouse
PORT="${LIGHTHOUSE_CLUSTER_PORT:-26443}"
NODES="${LIGHTHOUSE_CLUSTER_NODES:-2}"
WORKDIR="${LIGHTHOUSE_CLUSTER_WORKDIR:-$LIGHTHOUSE_STATE/kwok}"
CLUSTER_DIR="$WORKDIR/clusters/$NAME"
KUBECONFIG_PATH="$CLUSTER_DIR/kubeconfig.yaml"
CONF_DIR="$REPO_ROOT/hack/cluster"
# The kwokctl configuration, rendered for this cluster (render_config) next to it.
RENDERED="$WORKDIR/$NAME.kwokctl.yaml"
CONFIGS=("$RENDERED" "$CONF_DIR"/stages/*.yaml)
# A running cluster is reused only if it was created from the same configuration and binaries: "<hash> <real node>".
STAMP="$WORKDIR/$NAME.config-hash"
REAL_NODE_WANTED="${LIGHTHOUSE_CLUSTER_REAL_NODE:-}"
NODE_SH="$REPO_ROOT/hack/node.sh"
# hack/node.sh works on this cluster.
export LIGHTHOUSE_CLUSTER_DIR="$CLUSTER_DIR" LIGHTHOUSE_CLUSTER_PORT="$PORT"
FAKE_TAINT=kwok.x-k8s.io/node=fake:NoSchedule

usage() { die "usage: $0 up|down|status|kubeconfig|env"; }

case "$REAL_NODE_WANTED" in
  "" | 0 | 1) ;;
  *) die "LIGHTHOUSE_CLUSTER_REAL_NODE must be 1, 0 or unset (got $REAL_NODE_WANTED)" ;;
esac

# render_config REAL_NODE: the kwokctl configuration with this cluster's PKI path, and the real node's apiserver
# settings only when it has one.
render_config() {
  mkdir -p "$WORKDIR"
  # The markers are whole lines: the file's header mentions them too, and a range from that mention dropped the
  # whole configuration before the first marker (Service range, admission plugins) from every kwok-only cluster.
  local drop='/^ *# real node:begin$/,/^ *# real node:end$/d'
  [ "$1" = 1 ] && drop='/^ *# real node:\(begin\|end\)$/d'
  sed -e "$drop" -e "s#__PKI__#$CLUSTER_DIR/pki#g" "$CONF_DIR/kwokctl.yaml" >"$RENDERED"
}

config_hash() { # config_hash REAL_NODE
  render_config "$1"
  { cat "${CONFIGS[@]}" "$CONF_DIR/audit-policy.yaml" "$CONF_DIR/storageclass.yaml"
    echo "port=$PORT nodes=$NODES tools=$(tools_dir) real-node=$1"; } | sha256sum | cut -c1-16
}

# running_real_node: 1 when the running cluster was created with the real node, 0 otherwise.
running_real_node() { local s; s=$(cat "$STAMP" 2>/dev/null) && [ "${s#* }" = 1 ] && echo 1 || echo 0; }

# bin_dir: the Go-built binaries, building them on first use (see hack/build-tools.sh).
bin_dir() { "$REPO_ROOT/hack/build-tools.sh"; }

kwok_env() {
  local bin=$1
  export KWOK_RUNTIME=binary KWOK_WORKDIR="$WORKDIR"
  export KWOK_KUBE_VERSION; KWOK_KUBE_VERSION="$(cat "$bin/../k8s-version")"
  export KWOK_ETCD_BINARY="$bin/etcd"
  export KWOK_KUBE_APISERVER_BINARY="$bin/kube-apiserver"
  export KWOK_KUBE_CONTROLLER_MANAGER_BINARY="$bin/kube-controller-manager"
  export KWOK_KUBE_SCHEDULER_BINARY="$bin/kube-scheduler"
  export KWOK_KUBECTL_BINARY="$bin/kubectl"
  export KWOK_CONTROLLER_BINARY="$bin/kwok"
}

kwokctl() {
  local args=(--name "$NAME")
  local c
  for c in "${CONFIGS[@]}"; do args+=(-c "$c"); done
  # 8>&-: the daemons kwokctl starts must not inherit (and so hold forever) the up/down lock.
  "$BIN/kwokctl" "${args[@]}" "$@" 8>&-
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# apiserver_ready: the apiserver of our cluster answers /readyz.
apiserver_ready() {
  [ -f "$KUBECONFIG_PATH" ] && kubectl get --raw /readyz --request-timeout=3s >/dev/null 2>&1
}

port_in_use() { loopback_port_busy "$1"; }

# cluster_pids: the processes of this cluster still alive: those in its pid files, and any process whose working
# directory is the cluster directory (kwokctl starts every component there), which also catches components left
# behind when their directory was deleted under them.
cluster_pids() {
  local f pid
  {
    if [ -d "$CLUSTER_DIR/pids" ]; then
      for f in "$CLUSTER_DIR"/pids/*.pid; do
        [ -f "$f" ] && cat "$f" && echo
      done
    fi
    for f in /proc/[0-9]*/cwd; do
      case "$(readlink "$f" 2>/dev/null)" in
        "$CLUSTER_DIR" | "$CLUSTER_DIR (deleted)") pid=${f#/proc/}; echo "${pid%/cwd}" ;;
      esac
    done
  } | sort -un | while read -r pid; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
  done
}

# check_no_downloads: kwokctl must use our binaries only; its dry run lists every binary it would fetch.
check_no_downloads() {
  local plan
  plan="$(kwokctl --dry-run create cluster --kube-apiserver-port "$PORT" \
    --kube-audit-policy "$CONF_DIR/audit-policy.yaml" --kubeconfig "" 2>&1)" || die "kwokctl --dry-run failed: $plan"
  if grep -E '^# Download https?://' <<<"$plan" >&2; then
    die "kwokctl would download the binaries above; the KWOK_*_BINARY settings are incomplete"
  fi
}

wait_ready() {
  local deadline=$((SECONDS + 120))
  until apiserver_ready; do
    [ $SECONDS -lt $deadline ] || die "kube-apiserver did not become ready (logs: $CLUSTER_DIR/logs)"
    sleep 0.5
  done
  local have
  have=$(kubectl get nodes -l type=kwok -o name | wc -l)
  if [ "$have" -lt "$NODES" ]; then
    log "Scaling fake nodes replicas=$NODES"
    kwokctl scale node --replicas "$NODES" \
      --param '.allocatable.cpu="1000"' --param '.allocatable.memory="4Ti"' --param '.allocatable.pods="1000"' >&2
  fi
  kubectl wait --for=condition=Ready node -l type=kwok --timeout=120s >/dev/null ||
    die "fake nodes did not become Ready (kwok log: $CLUSTER_DIR/logs/kwok-controller.log)"
  if [ "${1:-0}" = 1 ]; then
    # Pods go to the real node unless their namespace opts in to fake nodes (hack/cluster/README.md).
    kubectl taint nodes -l type=kwok "$FAKE_TAINT" --overwrite >/dev/null
  fi
  kubectl get storageclass standard >/dev/null 2>&1 || kubectl apply -f "$CONF_DIR/storageclass.yaml" >/dev/null
  # Pods cannot be created before the controller-manager has made the namespace's default ServiceAccount.
  until kubectl get serviceaccount default -n default >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "ServiceAccount default/default was not created (logs: $CLUSTER_DIR/logs)"
    sleep 0.5
  done
}

do_up() {
  BIN="$(bin_dir)"
  kwok_env "$BIN"
  # A cluster whose processes are alive may just be slow (both cores busy): give it time before judging it.
  if ! apiserver_ready && [ -n "$(cluster_pids)" ]; then
    local deadline=$((SECONDS + 60))
    until apiserver_ready || [ $SECONDS -ge $deadline ]; do sleep 1; done
  fi
  local real=${REAL_NODE_WANTED:-0} want
  # Unset: whatever runs is fine, with or without its node.
  if [ -z "$REAL_NODE_WANTED" ] && apiserver_ready; then real=$(running_real_node); fi
  want="$(config_hash "$real") $real"
  if [ "$real" = 1 ]; then
    "$NODE_SH" check
  fi
  if apiserver_ready; then
    if [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ]; then
      log "Reusing running cluster name=$NAME real-node=$real kubeconfig=$KUBECONFIG_PATH"
      wait_ready "$real"
      [ "$real" = 1 ] && "$NODE_SH" up
      echo "$KUBECONFIG_PATH"
      return 0
    fi
    log "Cluster configuration changed, recreating name=$NAME real-node=$real"
    do_down
  elif [ -d "$CLUSTER_DIR" ]; then
    # Left over from a crash or a reboot: start from a clean slate rather than half-running state.
    log "Removing stale cluster state name=$NAME dir=$CLUSTER_DIR"
    do_down
  fi
  if port_in_use "$PORT"; then
    die "port 127.0.0.1:$PORT is already in use; set LIGHTHOUSE_CLUSTER_PORT to a free port"
  fi
  mkdir -p "$WORKDIR"
  check_no_downloads
  log "Creating cluster name=$NAME port=$PORT nodes=$NODES real-node=$real workdir=$WORKDIR"
  local t0=$SECONDS
  # --kubeconfig "": kwokctl must not touch ~/.kube/config; our kubeconfig stays in the cluster directory.
  kwokctl create cluster \
    --kube-apiserver-port "$PORT" \
    --kube-audit-policy "$CONF_DIR/audit-policy.yaml" \
    --kubeconfig "" \
    --timeout 3m --wait 0s >&2 || die "kwokctl create cluster failed (logs: $CLUSTER_DIR/logs)"
  wait_ready "$real"
  [ "$real" = 1 ] && "$NODE_SH" up
  echo "$want" >"$STAMP"
  log "Cluster ready name=$NAME real-node=$real seconds=$((SECONDS - t0)) kubeconfig=$KUBECONFIG_PATH"
  echo "$KUBECONFIG_PATH"
}

do_down() {
  local pids
  # The node first: its kubelet talks to the apiserver, and its pods must not outlive the cluster.
  "$NODE_SH" down
  pids="$(cluster_pids)"
  # Stopping must never wait for a build: without the binaries, the processes are stopped directly below.
  BIN="${BIN:-$(tools_dir)/bin}"
  if [ -d "$CLUSTER_DIR" ] && [ -x "$BIN/kwokctl" ]; then
    kwok_env "$BIN"
    log "Deleting cluster name=$NAME"
    # --kubeconfig: the cluster's own file (deleted with it), so that ~/.kube/config is left alone.
    kwokctl delete cluster --kubeconfig "$KUBECONFIG_PATH" >&2 ||
      log "kwokctl delete cluster failed; stopping its processes directly"
  fi
  # kwokctl signals its processes; make sure none of this cluster's processes survives.
  local pid deadline=$((SECONDS + 15))
  for pid in $pids; do
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" 2>/dev/null || true; break; fi
      kill "$pid" 2>/dev/null || true
      sleep 0.2
    done
  done
  rm -rf "$CLUSTER_DIR" "$STAMP"
  # The apiserver drains connections for a moment after SIGTERM.
  deadline=$((SECONDS + 20))
  while port_in_use "$PORT"; do
    [ $SECONDS -lt $deadline ] || die "something still listens on 127.0.0.1:$PORT after stopping the cluster"
    sleep 0.5
  done
  log "Cluster stopped name=$NAME"
}

do_status() {
  if ! [ -f "$KUBECONFIG_PATH" ]; then
    echo "cluster $NAME: not created (hack/cluster.sh up)"
    return 1
  fi
  BIN="$(tools_dir)/bin"
  if ! [ -x "$BIN/kubectl" ] || ! apiserver_ready; then
    echo "cluster $NAME: not running (state in $CLUSTER_DIR)"
    return 1
  fi
  echo "cluster $NAME: running"
  echo "kubeconfig: $KUBECONFIG_PATH"
  echo "apiserver: $(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')"
  echo "version: $(kubectl version -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | tail -1)"
  echo "audit log: $CLUSTER_DIR/logs/audit.log"
  echo "processes: $(cluster_pids | tr '\n' ' ')"
  kubectl get nodes -o wide
  if [ "$(running_real_node)" = 1 ]; then "$NODE_SH" status || true; fi
}

do_env() {
  local bin
  bin="$(tools_dir)/bin"
  [ -x "$bin/kubectl" ] || log "warning: $bin/kubectl is not built yet (hack/build-tools.sh)"
  printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_PATH"
  printf 'export PATH=%q:"$PATH"\n' "$bin"
}

# lock: one up/down at a time (test sessions of several people may call `up` together).
lock() {
  mkdir -p "$WORKDIR"
  exec 8>"$WORKDIR/.$NAME.up.lock"
  flock -w 300 8 || die "another hack/cluster.sh up/down holds $WORKDIR/.$NAME.up.lock"
}

case "${1:-}" in
  up) check_fixed_port "$PORT" kube-apiserver; lock; do_up ;;
  down) lock; do_down ;;
  status) do_status ;;
  kubeconfig)
    [ -f "$KUBECONFIG_PATH" ] || die "cluster $NAME is not up (hack/cluster.sh up)"
    echo "$KUBECONFIG_PATH"
    ;;
  env) do_env ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# The real node of the local cluster: containerd, runc and the CNI plugins from Debian; kubelet, kube-proxy, CoreDNS
# and pause built by hack/build-node-tools.sh; a device plugin for /dev/fuse (fuse-device-plugin/); kube-router's
# network-policy controller alone (no routing, no service proxy, no CNI), which enforces NetworkPolicies.
# hack/cluster.sh calls `up` after the control plane is up and `down` before deleting it; the other commands are for
# people and tests.
#
#   hack/node.sh up        start (or keep) the node of this checkout's cluster and wait until it is Ready
#   hack/node.sh down      stop every process of the node and remove every trace of it (see `sweep`)
#   hack/node.sh sweep     remove what a node leaves on the host, whoever started it: processes, pod cgroups,
#                          mounts, network namespaces, links, iptables chains, nft tables, state directories
#   hack/node.sh status    what runs (exit 1 when the node of this checkout is not up)
#   hack/node.sh check     exit 1, saying why, when another checkout's node is up on this machine
#   hack/node.sh owner     the cluster directory that holds this machine's node (exit 1 when none does)
#   hack/node.sh import ARCHIVE...   import OCI or docker archives into containerd's k8s.io namespace (cached by digest)
#   hack/node.sh restart-kubelet     stop and start the kubelet (pods keep running)
#
# One real node per machine: the kubelet's paths (/var/lib/kubelet, its device-plugin socket directory), its ports
# (10248-10256), the node address and the iptables chains are host-wide. `up` claims the node for this checkout's
# cluster under /run/lighthouse-node and refuses while another checkout's node is alive.
#
# Addresses (all inside this machine): the node is 10.255.0.1/32 on a veth pair (lh-node0/lh-node1), pods live on the
# bridge lh-cni0 in 10.244.0.0/24 (no NAT: nothing is routed beyond the machine), Services in 10.96.0.0/16, cluster
# DNS at 10.96.0.10. The apiserver keeps listening on 127.0.0.1; a forwarder on 10.255.0.1:<port> lets pods reach it
# (and this checkout's S3 server, on 10.255.0.1:$LIGHTHOUSE_S3_PORT).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

NODE_NAME=lighthouse-node
NODE_IP=10.255.0.1
NODE_LINK=lh-node0
NODE_PEER=lh-node1
POD_SUBNET=10.244.0.0/24
POD_GATEWAY=10.244.0.1
POD_CIDR=10.244.0.0/16
CNI_BRIDGE=lh-cni0
CNI_NETWORK=lighthouse-pods
DNS_IP=10.96.0.10
FUSE_RESOURCE=lighthouse.dev/fuse
NODE_RUN=/run/lighthouse-node
NODE_LIB=/var/lib/lighthouse-node
CTR_ROOT=$NODE_LIB/containerd      # kept by `down`: the imported images are a cache
CTR_STATE=$NODE_RUN/containerd
CTR_SOCK=$CTR_STATE/containerd.sock
VOLUMES=$NODE_LIB/volumes          # PersistentVolumes (hack/cluster/stages/volume.yaml)
KUBELET_ROOT=/var/lib/kubelet
PIDS=$NODE_RUN/pids
OWNER=$NODE_RUN/owner
MACHINE_LOCK=/run/lighthouse-node.lock

# The cluster this checkout runs (hack/cluster.sh passes these; the defaults match it).
CLUSTER_DIR=${LIGHTHOUSE_CLUSTER_DIR:-${LIGHTHOUSE_CLUSTER_WORKDIR:-$LIGHTHOUSE_STATE/kwok}/clusters/lighthouse}
PORT=${LIGHTHOUSE_CLUSTER_PORT:-26443}
S3_PORT=${LIGHTHOUSE_S3_PORT:-29000}
CONF=$CLUSTER_DIR/node
LOGS=$CLUSTER_DIR/logs
PKI=$CLUSTER_DIR/pki

APT_PACKAGES=(containerd runc containernetworking-plugins iptables nftables conntrack ipset socat openssl curl jq)

kubectl() { "$(tools_dir)/bin/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig.yaml" "$@"; }
ctr() { command ctr --address "$CTR_SOCK" --namespace k8s.io "$@"; }

pid_of() { [ -f "$PIDS/$1.pid" ] && cat "$PIDS/$1.pid"; }
alive() { local pid; pid=$(pid_of "$1") && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

# start_daemon NAME CMD...: CMD outside our process group, logging to logs/node-NAME.log, run again whenever it exits
# (as systemd's Restart=always would: a crashed or restarted kubelet comes back) until stop_daemon NAME.
start_daemon() {
  local name=$1; shift
  mkdir -p "$PIDS" "$LOGS"
  # 7>&- 8>&- 9>&-: daemons must not inherit (and so hold for ever) the callers' locks. The marker in the
  # environment finds them again (our_processes) even when their pid files are lost.
  LIGHTHOUSE_NODE_DAEMON=1 setsid "$REPO_ROOT/hack/node.sh" supervise "$name" "$@" \
    >>"$LOGS/node-$name.log" 2>&1 </dev/null 7>&- 8>&- 9>&- &
  echo $! >"$PIDS/$name.pid"
}

# supervise NAME CMD...: the loop behind start_daemon; the current process is in $PIDS/NAME.child.
supervise() {
  local name=$1 child=0 rc; shift
  trap 'kill -TERM $child 2>/dev/null; wait $child 2>/dev/null; rm -f "$PIDS/$name.child"; exit 0' TERM INT
  while true; do
    "$@" &
    child=$!
    echo "$child" >"$PIDS/$name.child"
    rc=0
    wait "$child" || rc=$?
    log "$name exited with code $rc; starting it again in 1 s"
    sleep 1 &
    wait $! || true
  done
}

stop_daemon() { # stop_daemon NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 15)
  local name=$1 secs=${2:-15} pid deadline
  pid=$(pid_of "$name") || return 0
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    deadline=$((SECONDS + secs))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" "$(cat "$PIDS/$name.child" 2>/dev/null)" 2>/dev/null || true; fi
      sleep 0.2
    done
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.child"
}

# write_if_changed FILE: stdin into FILE, leaving FILE alone when the content is the same (kube-proxy exits when its
# configuration file changes, and a rewrite counts as a change).
write_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

wait_until() { # wait_until SECONDS WHAT CMD...
  local secs=$1 what=$2 deadline; shift 2
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not happen within ${secs}s (logs: $LOGS/node-*.log)"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- the machine's one node

owner() { [ -f "$OWNER" ] && cat "$OWNER"; }

# owner_alive: the kubelet recorded for the current owner still runs.
owner_alive() { alive kubelet || alive containerd; }

# check: refuses while another cluster's node is alive on this machine.
check() {
  local current
  current=$(owner || true)
  if [ -n "$current" ] && [ "$current" != "$CLUSTER_DIR" ] && owner_alive; then
    die "this machine's real node belongs to the cluster in $current (one real node per machine: host-wide" \
      "kubelet paths, ports and iptables chains). Stop it there (hack/cluster.sh down in that checkout), or use a" \
      "kwok-only cluster here: LIGHTHOUSE_CLUSTER_REAL_NODE=0"
  fi
}

claim() {
  local current
  check
  current=$(owner || true)
  if [ -n "$current" ] && [ "$current" != "$CLUSTER_DIR" ]; then
    log "Taking over the node of a stopped cluster previous=$current"
    sweep
  fi
  mkdir -p "$NODE_RUN"
  echo "$CLUSTER_DIR" >"$OWNER"
}

# ---------------------------------------------------------------- set-up

setup_network() {
  if ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    ip link add "$NODE_LINK" type veth peer name "$NODE_PEER"
  fi
  ip addr replace "$NODE_IP/32" dev "$NODE_LINK"
  ip link set "$NODE_PEER" up
  ip link set "$NODE_LINK" up
  # Pods reach Services and each other through the host; remember the old value for `down`.
  [ -f "$NODE_RUN/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$NODE_RUN/ip_forward.orig"
  echo 1 >/proc/sys/net/ipv4/ip_forward
  # kube-proxy needs bridged pod-to-pod traffic to pass through the IP layer (built into this kernel).
  [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
}

write_containerd_config() {
  local pause_ref=$1
  mkdir -p "$CONF" "$CTR_ROOT" "$CTR_STATE" "$NODE_RUN/cni/net.d"
  write_if_changed "$CONF/containerd.toml" <<EOF
# Written by hack/node.sh. Own root, state and socket: never the system's /run/containerd.
version = 2
root = "$CTR_ROOT"
state = "$CTR_STATE"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.internal.v1.opt",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  # Imported, never pulled: the name must match the image in containerd's k8s.io namespace.
  sandbox_image = "$pause_ref"
  # No CAP_SYS_RESOURCE here: containers may not lower their OOM score below containerd's.
  restrict_oom_score_adj = true
  # Network namespaces under our state directory, apart from podman's in /run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_RUN/cni/net.d"
    max_conf_num = 1
EOF
  # bridge + host-local only: no ipMasq and no portmap, so the CNI plugins write no iptables rules at all.
  write_if_changed "$NODE_RUN/cni/net.d/10-$CNI_NETWORK.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$NODE_RUN/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$POD_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
}

# client_cert NAME CN ORG: a client certificate signed by the cluster's CA, and a kubeconfig using it.
client_cert() {
  local name=$1 cn=$2 org=$3
  [ -f "$CONF/$name.kubeconfig" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$CONF/$name.key" -subj "/O=$org/CN=$cn" \
    -out "$CONF/$name.csr" 2>/dev/null
  openssl x509 -req -in "$CONF/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial -days 3650 \
    -out "$CONF/$name.crt" -extfile <(printf 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n') \
    2>/dev/null
  cat >"$CONF/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lighthouse
  cluster: {certificate-authority: $PKI/ca.crt, server: "https://127.0.0.1:$PORT"}
users:
- name: $name
  user: {client-certificate: $CONF/$name.crt, client-key: $CONF/$name.key}
contexts:
- name: $name
  context: {cluster: lighthouse, user: $name}
current-context: $name
EOF
}

write_node_configs() {
  # The Node authorizer gives system:node:<name> what a kubelet needs; system:kube-proxy is bound by default RBAC.
  client_cert kubelet "system:node:$NODE_NAME" system:nodes
  client_cert kube-proxy system:kube-proxy system:node-proxier
  write_if_changed "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The API on the node address only; health on loopback; no read-only port.
address: $NODE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CTR_SOCK
# These machines run cgroup v1 (hybrid), which kubelet 1.35 refuses unless told otherwise; no systemd.
failCgroupV1: false
cgroupDriver: cgroupfs
# No CAP_SYS_RESOURCE: the kubelet cannot lower its own OOM score.
oomScoreAdj: 0
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
# Imported images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# A shared development machine: evict only when it is really out of memory or disk.
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
failSwapOn: false
serializeImagePulls: false
EOF
  write_if_changed "$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: $CONF/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# NodePorts answer on the node address only, never on the machine's other interfaces.
nodePortAddresses: [$NODE_IP/32]
oomScoreAdj: 0
# Leave the host's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

node_ready() {
  [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

fuse_allocatable() {
  local n
  n=$(kubectl get node "$NODE_NAME" -o jsonpath="{.status.allocatable.${FUSE_RESOURCE//./\\.}}" 2>/dev/null)
  [ -n "$n" ] && [ "$n" != 0 ]
}

# forward PORT: pods reach a loopback listener of this machine at $NODE_IP:PORT.
forward() {
  local port=$1
  alive "forward-$port" && return 0
  start_daemon "forward-$port" socat "TCP-LISTEN:$port,bind=$NODE_IP,fork,reuseaddr" "TCP:127.0.0.1:$port"
}

# volumes: a directory for every PersistentVolume under $VOLUMES (world-writable, as kind's local-path provisioner
# makes them: pods of any uid write there), and none for a volume that is gone. Runs until killed. curl and jq rather
# than kubectl, which would hold 50 MiB for a watch that waits most of the time.
volumes_loop() {
  local api=(curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
  local url="https://127.0.0.1:$PORT/api/v1/persistentvolumes"
  trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
  mkdir -p "$VOLUMES"
  while true; do
    local list want version d
    list=$("${api[@]}" "$url") || { sleep 2; continue; }
    want=$(jq -r '.items[].spec.hostPath.path // empty' <<<"$list")
    version=$(jq -r '.metadata.resourceVersion' <<<"$list")
    while read -r d; do
      case "$d" in "$VOLUMES"/pvc-*) [ -d "$d" ] || install -d -m 0777 "$d" ;; esac
    done <<<"$want"
    for d in "$VOLUMES"/pvc-*; do
      [ -d "$d" ] || continue
      grep -qxF "$d" <<<"$want" || rm -rf "$d"
    done
    # The first change after the list wakes the loop; the timeout bounds how long a deleted volume's directory
    # lingers. In the background, so that SIGTERM ends the loop at once.
    { "${api[@]}" -N "$url?watch=1&resourceVersion=$version&timeoutSeconds=30" 2>/dev/null | head -c 1 >/dev/null; } &
    wait $! || true
  done
}

do_up() {
  apt_install "${APT_PACKAGES[@]}"
  [ -f "$PKI/ca.key" ] || die "no cluster PKI in $PKI: start the control plane first (hack/cluster.sh up)"
  local node_bin plugin kube_router pause_ref coredns_ref
  node_bin=$("$REPO_ROOT/hack/build-node-tools.sh")
  plugin=$("$REPO_ROOT/hack/build-node-tools.sh" --plugin)
  kube_router=$("$REPO_ROOT/hack/build-node-tools.sh" --kube-router)
  "$REPO_ROOT/hack/images.sh" node
  pause_ref=$("$REPO_ROOT/hack/images.sh" ref pause)
  coredns_ref=$("$REPO_ROOT/hack/images.sh" ref coredns)

  exec 7>"$MACHINE_LOCK"
  flock -w 300 7 || die "another hack/node.sh holds $MACHINE_LOCK"
  claim
  local t0=$SECONDS
  mkdir -p "$PIDS" "$LOGS" "$CONF"
  setup_network
  write_containerd_config "$pause_ref"
  if ! alive containerd; then
    log "Starting containerd socket=$CTR_SOCK"
    start_daemon containerd containerd --config "$CONF/containerd.toml"
  fi
  wait_until 60 "containerd start" ctr version
  import_archives "$LIGHTHOUSE_STATE/images/pause.tar" "$LIGHTHOUSE_STATE/images/coredns.tar"
  write_node_configs
  if ! alive kubelet; then
    log "Starting kubelet node=$NODE_NAME address=$NODE_IP"
    start_kubelet "$node_bin"
  fi
  wait_until 120 "node $NODE_NAME Ready" node_ready
  if ! alive kube-proxy; then
    log "Starting kube-proxy mode=nftables"
    start_daemon kube-proxy "$node_bin/kube-proxy" --config "$CONF/kube-proxy.yaml"
  fi
  if ! alive fuse-device-plugin; then
    log "Starting the FUSE device plugin resource=$FUSE_RESOURCE"
    start_daemon fuse-device-plugin "$plugin" -resource "$FUSE_RESOURCE" -mode 0666 \
      -state-dir "$NODE_RUN/fuse-device-plugin"
  fi
  if ! alive network-policy; then
    log "Starting the network-policy controller (kube-router --run-firewall only)"
    # Ingress rules per pod from the NetworkPolicies (iptables + ipset); pods without a policy are left open.
    start_daemon network-policy "$kube_router" --kubeconfig "$CLUSTER_DIR/kubeconfig.yaml" \
      --hostname-override "$NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
      --enable-cni=false --enable-pod-egress=false --enable-ipv6=false --health-port 0 --metrics-port 0 \
      --service-cluster-ip-range 10.96.0.0/16 --iptables-sync-period 1m
  fi
  forward "$PORT"
  forward "$S3_PORT"
  if ! alive volumes; then start_daemon volumes "$REPO_ROOT/hack/node.sh" volumes-loop; fi
  sed -e "s#__IMAGE__#$coredns_ref#" -e "s#__DNS_IP__#$DNS_IP#" "$REPO_ROOT/hack/cluster/node/coredns.yaml" |
    kubectl apply --server-side --field-manager=lighthouse-node -f - >/dev/null
  kubectl -n kube-system rollout status deployment/coredns --timeout=120s >/dev/null ||
    die "CoreDNS did not become ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)"
  wait_until 60 "the FUSE device plugin registering" fuse_allocatable
  log "Node ready name=$NODE_NAME address=$NODE_IP seconds=$((SECONDS - t0))"
}

start_kubelet() {
  local node_bin=$1
  start_daemon kubelet "$node_bin/kubelet" --config "$CONF/kubelet.yaml" --kubeconfig "$CONF/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --node-labels lighthouse.dev/node=real --v 1
}

# restart-kubelet: the kubelet process stops (SIGTERM) and its supervisor starts it again, as `systemctl restart`.
do_restart_kubelet() {
  alive kubelet || die "the kubelet of this node is not running"
  local child
  child=$(cat "$PIDS/kubelet.child")
  log "Restarting kubelet pid=$child"
  kill "$child"
  wait_until 30 "the old kubelet to exit" bash -c "! kill -0 $child"
  wait_until 30 "a new kubelet" bash -c "[ \"\$(cat '$PIDS/kubelet.child')\" != $child ]"
  sleep 2
  wait_until 120 "node $NODE_NAME Ready after the restart" node_ready
}

# ---------------------------------------------------------------- images

# import_archives ARCHIVE...: each archive once per content (its index digest is recorded beside containerd's root).
import_archives() {
  local a key stamp
  mkdir -p "$CTR_ROOT/.lighthouse-imported"
  for a in "$@"; do
    [ -f "$a" ] || die "no image archive $a (hack/images.sh builds them)"
    key=$(sha256sum "$a" | cut -c1-16)
    stamp="$CTR_ROOT/.lighthouse-imported/$(basename "$a").$key"
    [ -f "$stamp" ] && continue
    log "Importing image archive=$a"
    ctr images import --all-platforms "$a" >/dev/null || die "ctr images import $a failed"
    rm -f "$CTR_ROOT/.lighthouse-imported/$(basename "$a")".*
    touch "$stamp"
  done
}

# ---------------------------------------------------------------- tear-down

# our_processes: every process that belongs to a node on this machine: the daemons (pid files, and the marker in
# their environment), containerd's shims (they name our socket) and every process in the pods' cgroups.
our_processes() {
  local f pid
  {
    for f in "$PIDS"/*.pid "$PIDS"/*.child; do [ -f "$f" ] && cat "$f" && echo; done
    for f in /proc/[0-9]*/environ; do
      if grep -qzx LIGHTHOUSE_NODE_DAEMON=1 "$f" 2>/dev/null; then pid=${f#/proc/}; echo "${pid%/environ}"; fi
    done
    for f in /proc/[0-9]*/cmdline; do
      if grep -qaF -- "$CTR_SOCK" "$f" 2>/dev/null; then pid=${f#/proc/}; echo "${pid%/cmdline}"; fi
    done
    find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null || true
  } | sort -un | while read -r pid; do
    [ -n "$pid" ] && [ "$pid" != $$ ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
  done
}

# our_mounts: mount points under the node's directories, deepest first.
our_mounts() {
  awk '{print $5}' /proc/self/mountinfo | grep -E "^($KUBELET_ROOT|$NODE_RUN|$NODE_LIB)(/|$)" | sort -r || true
}

remove_iptables_chains() { # KUBE-* chains of the kubelet and kube-proxy, and the rules that jump to them
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      "$cmd" -t "$table" -S >/dev/null 2>&1 || continue
      { "$cmd" -t "$table" -S | grep -E '^-A [A-Z]+ .*-j KUBE-' || true; } | while read -r rule; do
        # shellcheck disable=SC2086 # the rule is a list of words, as iptables -S printed it
        eval "$cmd -t $table -D ${rule#-A }" 2>/dev/null || true
      done
      for chain in $("$cmd" -t "$table" -S | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd" -t "$table" -S | awk '$1=="-N" && $2 ~ /^KUBE-/ {print $2}'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

remove_pod_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/*/kubepods; do
    [ -d "$dir" ] || continue
    # Children before parents; a cgroup with no process left can be removed.
    find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# stop_containers: every container of the node killed and deleted through containerd while it still runs.
stop_containers() {
  alive containerd || return 0
  local id
  for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr tasks ls -q 2>/dev/null); do ctr tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr containers ls -q 2>/dev/null); do ctr containers delete "$id" >/dev/null 2>&1 || true; done
}

sweep() {
  local pid m deadline
  # Processes: the kubelet first (it would restart the containers), then everything else.
  stop_daemon kubelet 10
  stop_containers
  for pid in $(our_processes); do kill "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 15))
  while [ -n "$(our_processes)" ]; do
    if [ $SECONDS -ge $deadline ]; then
      for pid in $(our_processes); do kill -9 "$pid" 2>/dev/null || true; done
    fi
    if [ $SECONDS -ge $((deadline + 10)) ]; then
      log "WARNING: processes left: $(our_processes | xargs -r ps -o pid=,args= -p | tr '\n' ';')"
      break
    fi
    sleep 0.2
  done
  rm -f "$PIDS"/*.pid "$PIDS"/*.child
  remove_pod_cgroups
  for m in $(our_mounts); do umount -l "$m" 2>/dev/null || true; done
  # The pods' veths first: deleting the host end removes the pair even if the pod's namespace lingers.
  for m in $(ip -o link show master "$CNI_BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$m" 2>/dev/null || true
  done
  ip link del "$CNI_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_LINK" 2>/dev/null || true
  for m in $(nft list tables 2>/dev/null | awk '$3=="kube-proxy" {print $2}'); do
    nft delete table "$m" kube-proxy 2>/dev/null || true
  done
  remove_iptables_chains
  # kube-router's sets, once no rule refers to them.
  for m in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-|kube-router)' || true); do
    ipset destroy "$m" 2>/dev/null || true
  done
  conntrack -D -s "$POD_CIDR" >/dev/null 2>&1 || true
  conntrack -D -d "$POD_CIDR" >/dev/null 2>&1 || true
  if [ -f "$NODE_RUN/ip_forward.orig" ]; then
    cat "$NODE_RUN/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward
  fi
  rm -rf "$KUBELET_ROOT" /var/log/pods /var/log/containers "$VOLUMES"
  # Everything under the run directory but the claim, which `down` releases last.
  find "$NODE_RUN" -mindepth 1 -maxdepth 1 ! -name owner -exec rm -rf {} + 2>/dev/null || true
}

do_down() {
  exec 7>"$MACHINE_LOCK"
  flock -w 300 7 || die "another hack/node.sh holds $MACHINE_LOCK"
  local current
  current=$(owner || true)
  if [ -n "$current" ] && [ "$current" != "$CLUSTER_DIR" ] && owner_alive; then
    log "The node belongs to another cluster ($current); leaving it alone"
    return 0
  fi
  if [ -z "$current" ] && [ -z "$(our_processes)" ] && [ -z "$(our_mounts)" ] &&
    ! ip link show "$NODE_LINK" >/dev/null 2>&1; then
    return 0
  fi
  log "Stopping node name=$NODE_NAME"
  alive kube-proxy && [ -f "$CONF/kube-proxy.yaml" ] &&
    "$("$REPO_ROOT/hack/build-node-tools.sh" --dir)/kube-proxy" --cleanup >/dev/null 2>&1 || true
  sweep
  rm -f "$OWNER"
  log "Node stopped name=$NODE_NAME"
}

do_status() {
  local current rc=0 name
  current=$(owner || true)
  echo "node $NODE_NAME: owner ${current:-none}"
  for name in containerd kubelet kube-proxy fuse-device-plugin network-policy volumes "forward-$PORT" "forward-$S3_PORT"; do
    if alive "$name"; then echo "  $name: running pid=$(pid_of "$name")"; else echo "  $name: stopped"; rc=1; fi
  done
  [ "$current" = "$CLUSTER_DIR" ] || rc=1
  return $rc
}

case "${1:-}" in
  up) do_up ;;
  check) check ;;
  down) do_down ;;
  sweep)
    exec 7>"$MACHINE_LOCK"
    flock -w 300 7 || die "another hack/node.sh holds $MACHINE_LOCK"
    sweep; rm -f "$OWNER" ;;
  status) do_status ;;
  owner) owner ;;
  import) shift; import_archives "$@" ;;
  restart-kubelet) do_restart_kubelet ;;
  volumes-loop) volumes_loop ;;
  supervise) shift; supervise "$@" ;;
  *) die "usage: $0 up|down|sweep|status|owner|import ARCHIVE...|restart-kubelet" ;;
esac

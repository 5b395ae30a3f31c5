#!/usr/bin/env bash
# Builds what the real node runs beside Debian's containerd, runc and CNI plugins, into versioned cache directories
# (written atomically; a second run with the same pins costs nothing):
#   ~/.cache/lighthouse/node-tools/<key>/bin: kubelet and kube-proxy (hack/tools/node: the same k8s.io/kubernetes as
#     the control plane), coredns (hack/tools/coredns), pause (the C source in the Kubernetes module, gcc -static);
#   ~/.cache/lighthouse/fuse-device-plugin/<key>/fuse-device-plugin (our module in fuse-device-plugin/);
#   ~/.cache/lighthouse/kube-router/<key>/kube-router (hack/tools/kube-router: its network-policy controller only).
# Each group is keyed on its own inputs and recipe (below), so that editing one never rebuilds another (the kubelet
# takes minutes). Separate from hack/build-tools.sh so that these pins never invalidate the control-plane cache.
#   hack/build-node-tools.sh               build (or reuse) everything, print the node-tools bin directory
#   hack/build-node-tools.sh --dir         print the bin directory without building
#   hack/build-node-tools.sh --plugin      build (or reuse) the device plugin, print its path
#   hack/build-node-tools.sh --kube-router build (or reuse) kube-router, print its path
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

TOOLS="$REPO_ROOT/hack/tools"
PLUGIN_SRC="$REPO_ROOT/fuse-device-plugin"
module_version() { awk -v m="$2" '$1=="require" && $2==m {print $3} $1==m {print $2}' "$TOOLS/$1/go.mod" | head -1; }
# Recipes: change one when its build commands below change (the key of that group changes with it).
NODE_RECIPE="kubelet kube-proxy coredns: go build -trimpath -s -w, version ldflags; pause: gcc -Os -static"
PLUGIN_RECIPE="go build -trimpath -s -w"
KUBE_ROUTER_RECIPE="go build -trimpath -s -w"
key() { { cat "$@"; echo "$RECIPE"; } | sha256sum | cut -c1-16; }
DEST="$LIGHTHOUSE_CACHE/node-tools/$(RECIPE=$NODE_RECIPE key "$TOOLS"/{node,coredns}/go.{mod,sum})"
PLUGIN_DEST="$LIGHTHOUSE_CACHE/fuse-device-plugin/$(RECIPE=$PLUGIN_RECIPE key "$PLUGIN_SRC"/go.{mod,sum} "$PLUGIN_SRC"/*.go)"
KR_DEST="$LIGHTHOUSE_CACHE/kube-router/$(RECIPE=$KUBE_ROUTER_RECIPE key "$TOOLS"/kube-router/go.{mod,sum})"

K8S_VERSION=$(module_version node k8s.io/kubernetes)
[ "$K8S_VERSION" = "$(module_version kubernetes k8s.io/kubernetes)" ] ||
  die "hack/tools/node pins k8s.io/kubernetes $K8S_VERSION but hack/tools/kubernetes pins" \
    "$(module_version kubernetes k8s.io/kubernetes): the kubelet must match the control plane"

export CGO_ENABLED=0 GOFLAGS=-mod=mod
# Two shared cores: one package compiles at a time beside whatever else runs.
export GOMAXPROCS="${GOMAXPROCS:-2}"

build() { # build MODULE_DIR PACKAGE OUTPUT_PATH [extra ldflags]
  local dir=$1 pkg=$2 out=$3 extra=${4:-}
  local t0=$SECONDS
  log "Building $(basename "$out") ($pkg)"
  (cd "$dir" && nice go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "-s -w $extra" -o "$out" "$pkg")
  log "Built $(basename "$out") in $((SECONDS - t0))s"
}

# with_cache DEST LOCKDIR FUNCTION: runs FUNCTION TMPDIR under a lock unless DEST is complete, then renames.
with_cache() {
  local dest=$1 lockdir=$2 fn=$3
  [ -f "$dest/.complete" ] && return 0
  command -v go >/dev/null || die "go is not installed (Go 1.26 is expected on this machine)"
  mkdir -p "$lockdir"
  exec 9>"$lockdir/.build.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then
    local tmp
    tmp="$(mktemp -d "$lockdir/.tmp.XXXXXX")"
    # shellcheck disable=SC2064 # the path is fixed now
    trap "rm -rf '$tmp'" EXIT
    "$fn" "$tmp"
    touch "$tmp/.complete"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    trap - EXIT
  fi
  exec 9>&-
}

build_node() {
  local tmp=$1 start=$SECONDS minor ver_flags="" pkg coredns_version src
  mkdir -p "$tmp/bin"
  apt_install gcc libc6-dev
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ver_flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build "$TOOLS/node" k8s.io/kubernetes/cmd/kubelet "$tmp/bin/kubelet" "$ver_flags"
  build "$TOOLS/node" k8s.io/kubernetes/cmd/kube-proxy "$tmp/bin/kube-proxy" "$ver_flags"
  coredns_version=$(module_version coredns github.com/coredns/coredns)
  build "$TOOLS/coredns" github.com/coredns/coredns "$tmp/bin/coredns" \
    "-X github.com/coredns/coredns/coremain.GitCommit=$coredns_version"
  # The pause container: its C source ships in the Kubernetes module, built as the Kubernetes Makefile does.
  src=$(cd "$TOOLS/node" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -f "$src/build/pause/linux/pause.c" ] || die "pause.c not found in the k8s.io/kubernetes module ($src)"
  local pause_tag
  pause_tag=$(awk -F'[ ?=]+' '$1=="TAG" {print $2; exit}' "$src/build/pause/Makefile")
  gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-lighthouse" -o "$tmp/bin/pause" "$src/build/pause/linux/pause.c"
  printf 'kubernetes %s\ncoredns %s\npause %s\n' "$K8S_VERSION" "$coredns_version" "$pause_tag" >"$tmp/versions"
  log "Node tools ready ($((SECONDS - start))s)"
}

build_plugin() {
  local tmp=$1
  build "$PLUGIN_SRC" . "$tmp/fuse-device-plugin"
}

build_kube_router() {
  local tmp=$1
  build "$TOOLS/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "$tmp/kube-router"
}

case "${1:-}" in
  --dir) echo "$DEST/bin" ;;
  --plugin)
    with_cache "$PLUGIN_DEST" "$LIGHTHOUSE_CACHE/fuse-device-plugin" build_plugin
    echo "$PLUGIN_DEST/fuse-device-plugin"
    ;;
  --kube-router)
    with_cache "$KR_DEST" "$LIGHTHOUSE_CACHE/kube-router" build_kube_router
    echo "$KR_DEST/kube-router"
    ;;
  "")
    with_cache "$DEST" "$LIGHTHOUSE_CACHE/node-tools" build_node
    with_cache "$PLUGIN_DEST" "$LIGHTHOUSE_CACHE/fuse-device-plugin" build_plugin
    with_cache "$KR_DEST" "$LIGHTHOUSE_CACHE/kube-router" build_kube_router
    echo "$DEST/bin"
    ;;
  *) die "usage: $0 [--dir|--plugin|--kube-router]" ;;
esac

#!/usr/bin/env bash
# Builds the control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl), kwok and
# kwokctl from the Go modules pinned in hack/tools/*/go.mod, into a versioned cache directory. A second run with the
# same pins costs nothing. Prints the bin directory on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

# The requirement sits either on its own `require` line or inside a `require ( ... )` block.
K8S_VERSION=$(awk '$1=="require" && $2=="k8s.io/kubernetes" {print $3; exit} $1=="k8s.io/kubernetes" {print $2; exit}' \
  "$REPO_ROOT/hack/tools/kubernetes/go.mod")
[[ $K8S_VERSION == v1.* ]] || die "cannot read the k8s.io/kubernetes version from hack/tools/kubernetes/go.mod"
DEST="$(tools_dir)"
if [ -f "$DEST/.complete" ]; then
  echo "$DEST/bin"
  exit 0
fi

command -v go >/dev/null || die "go is not installed (Go 1.26 is expected on this machine)"
mkdir -p "$LIGHTHOUSE_CACHE/tools"
exec 9>"$LIGHTHOUSE_CACHE/tools/.build.lock"
flock 9
if [ -f "$DEST/.complete" ]; then echo "$DEST/bin"; exit 0; fi

TMP="$(mktemp -d "$LIGHTHOUSE_CACHE/tools/.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# Two cores: keep the linker's memory in check and leave room for other work.
export GOMAXPROCS="${GOMAXPROCS:-2}"
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ver_flags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ver_flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ver_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build() { # build MODULE_DIR PACKAGE OUTPUT [extra ldflags]
  local dir=$1 pkg=$2 out=$3 extra=${4:-}
  local t0=$SECONDS
  log "Building $out ($pkg)"
  (cd "$REPO_ROOT/hack/tools/$dir" && go build -trimpath -tags selinux,notest,grpcnotrace \
      -ldflags "-s -w $extra" -o "$TMP/bin/$out" "$pkg")
  log "Built $out in $((SECONDS - t0))s"
}

start=$SECONDS
build etcd go.etcd.io/etcd/server/v3 etcd
build kwok sigs.k8s.io/kwok/cmd/kwok kwok
build kwok sigs.k8s.io/kwok/cmd/kwokctl kwokctl
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  build kubernetes "k8s.io/kubernetes/cmd/$c" "$c" "$ver_flags"
done
echo "$K8S_VERSION" >"$TMP/k8s-version"
touch "$TMP/.complete"
rm -rf "$DEST"
mv "$TMP" "$DEST"
trap - EXIT
log "Tools ready in $DEST ($((SECONDS - start))s)"
echo "$DEST/bin"

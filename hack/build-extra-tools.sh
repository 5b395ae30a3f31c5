#!/usr/bin/env bash
# Builds helm and promtool from the Go modules pinned in hack/tools/{helm,promtool}/go.mod into their own versioned
# cache directory, ~/.cache/lighthouse/extra-tools/<key>/bin (each binary written atomically: built aside, then
# renamed). Separate from hack/build-tools.sh so these pins never invalidate the control-plane cache.
# A second run with the same pins costs nothing. Prints the bin directory on stdout.
#   hack/build-extra-tools.sh            build (or reuse) both and print the bin directory
#   hack/build-extra-tools.sh helm       only helm (what `make up` needs to install the chart); promtool likewise
#   hack/build-extra-tools.sh --dir      print the bin directory without building
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

TOOLS="$REPO_ROOT/hack/tools"
extra_key() {
  cat "$TOOLS"/{helm,promtool}/go.mod "$TOOLS"/{helm,promtool}/go.sum "$REPO_ROOT/hack/build-extra-tools.sh" \
    | sha256sum | cut -c1-16
}
DEST="$LIGHTHOUSE_CACHE/extra-tools/$(extra_key)"
case "${1:-all}" in
  --dir) echo "$DEST/bin"; exit 0 ;;
  all) WANT=(helm promtool) ;;
  helm | promtool) WANT=("$1") ;;
  *) die "usage: $0 [helm|promtool|all|--dir]" ;;
esac
have_all() { local t; for t in "${WANT[@]}"; do [ -x "$DEST/bin/$t" ] || return 1; done; }
if have_all; then echo "$DEST/bin"; exit 0; fi

command -v go >/dev/null || die "go is not installed (Go 1.26 is expected on this machine)"
mkdir -p "$LIGHTHOUSE_CACHE/extra-tools"
exec 9>"$LIGHTHOUSE_CACHE/extra-tools/.build.lock"
flock 9
if have_all; then echo "$DEST/bin"; exit 0; fi

TMP="$(mktemp -d "$LIGHTHOUSE_CACHE/extra-tools/.tmp.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/bin" "$DEST/bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# Two shared cores: one package compiles at a time beside whatever else runs.
export GOMAXPROCS="${GOMAXPROCS:-2}"

module_version() { awk -v m="$2" '$1=="require" && $2==m {print $3} $1==m {print $2}' "$TOOLS/$1/go.mod" | head -1; }
HELM_VERSION=$(module_version helm helm.sh/helm/v3)
PROM_VERSION=$(module_version promtool github.com/prometheus/prometheus)

build() { # build MODULE_DIR PACKAGE OUTPUT [extra ldflags]: skipped when not wanted or already there
  local dir=$1 pkg=$2 out=$3 extra=${4:-}
  local t0=$SECONDS
  [[ " ${WANT[*]} " == *" $out "* ]] && [ ! -x "$DEST/bin/$out" ] || return 0
  log "Building $out ($pkg)"
  (cd "$TOOLS/$dir" && nice go build -trimpath -ldflags "-s -w $extra" -o "$TMP/bin/$out" "$pkg")
  mv "$TMP/bin/$out" "$DEST/bin/$out"
  log "Built $out in $((SECONDS - t0))s"
}

start=$SECONDS
# helm prints its version from these variables (otherwise v3.x-dev), and `helm template` and `helm lint` assume the
# Kubernetes version of the client-go it was built with (otherwise 1.20, which fails the chart's kubeVersion), as
# helm's own Makefile does.
client_go=$(module_version helm k8s.io/client-go)
k8s_minor=${client_go#v0.}; k8s_minor=${k8s_minor%%.*}
helm_flags="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
build helm helm.sh/helm/v3/cmd/helm helm "$helm_flags"
# prometheus v0.3xx.y is Prometheus 3.xx.y.
prom_release=${PROM_VERSION#v0.}; prom_release="3.${prom_release#3}"
build promtool github.com/prometheus/prometheus/cmd/promtool promtool \
  "-X github.com/prometheus/common/version.Version=${prom_release} -X github.com/prometheus/common/version.Branch=release"
printf 'helm %s\npromtool %s\n' "$HELM_VERSION" "$PROM_VERSION" >"$DEST/versions"
log "Extra tools ready in $DEST: ${WANT[*]} ($((SECONDS - start))s)"
echo "$DEST/bin"

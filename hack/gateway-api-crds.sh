#!/usr/bin/env bash
# Prints the directory holding the Gateway API's standard-channel CRDs (GatewayClass, Gateway, HTTPRoute, GRPCRoute,
# ReferenceGrant) of the pinned release, fetched as the Go module sigs.k8s.io/gateway-api (which carries them under
# config/crd/) into the Go module cache: cached, checksummed by go.sum's database, nothing else downloaded.
# The tests install them only where they test spec.expose.gateway; the operator works without them.
#   hack/gateway-api-crds.sh            print the directory (fetching the module on first use)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

VERSION=v1.2.1  # Gateway API v1.2: HTTPRoute gateway.networking.k8s.io/v1, ReferenceGrant v1beta1
command -v go >/dev/null || die "go is not installed (Go 1.26 is expected on this machine)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Outside any module (a throwaway directory), `go mod download` fetches just this module.
dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] && [ -d "$dir/config/crd/standard" ] || die "sigs.k8s.io/gateway-api@$VERSION has no config/crd/standard"
echo "$dir/config/crd/standard"

#!/usr/bin/env bash
# Writes every generated file from its source: the LighthouseBridge CRD from the pydantic models.
#   hack/update-generated.sh [OUTPUT_ROOT]   (default: the repository; hack/verify.sh passes a temp dir)
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

out=${1:-$REPO_ROOT}
mkdir -p "$out/crds"
.venv/bin/python -m lighthouse_operator.crd "$out/crds/lighthouse.dev_lighthousebridges.yaml"
# The packaging keeps verbatim copies (chart, kustomize base); refresh them when writing into the repository.
if [ "$out" = "$REPO_ROOT" ] && [ -x hack/update-chart-crds.sh ]; then
  hack/update-chart-crds.sh
fi

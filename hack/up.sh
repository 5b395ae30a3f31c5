#!/usr/bin/env bash
# `make up`: the whole product, for real, on this machine: the local cluster with its real node (hack/cluster.sh,
# hack/node.sh), the images built (hack/images.sh: operator, bridge, the FUSE node plugin, and PostgreSQL and Redis
# from Debian's packages) and imported into the node's containerd, the operator installed from the Helm chart as a pod
# with the chart's RBAC and the chart's FUSE node plugin (CSI) as a DaemonSet,
# and the sample LighthouseBridge (examples/minimal.yaml) Ready with its bridge, PostgreSQL and Redis pods running and
# FUSE mounted in the bridge pod. `make down` (hack/up.sh down) stops the cluster and its node.
#   hack/up.sh [up]     idempotent: reuses the running cluster, images and release
#   hack/up.sh down     stop the cluster and its node
#   hack/up.sh status   what runs
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

RELEASE=lighthouse
RELEASE_NS=lighthouse-system
SAMPLE=examples/minimal.yaml
SAMPLE_NS=lighthouse-demo
SAMPLE_NAME=demo
IMAGES=(operator bridge fuse-plugin postgres redis)
# The FUSE device plugin that hack/node.sh runs on the node (see fuse-device-plugin/), for bridges in fuse.mode
# devicePlugin; the default mode is csi (the chart's node plugin).
FUSE_RESOURCE=lighthouse.dev/fuse

images_ref() { hack/images.sh ref "$1"; }

install_operator() {
  local helm
  helm="$(hack/build-extra-tools.sh helm)/helm"
  log "Installing the operator from the Helm chart release=$RELEASE namespace=$RELEASE_NS"
  local operator_ref=${1}
  # The CRD may exist already (the tests apply it): let the release adopt it rather than refuse to install.
  if kubectl get crd lighthousebridges.lighthouse.dev >/dev/null 2>&1; then
    kubectl label --overwrite crd lighthousebridges.lighthouse.dev app.kubernetes.io/managed-by=Helm >/dev/null
    kubectl annotate --overwrite crd lighthousebridges.lighthouse.dev meta.helm.sh/release-name="$RELEASE" \
      meta.helm.sh/release-namespace="$RELEASE_NS" >/dev/null
  fi
  # The chart's images, and the defaults the operator gives every bridge: our images; FUSE through the chart's CSI node
  # plugin (the default mode, csi), and the node's device plugin for bridges that ask for mode devicePlugin.
  local plugin_ref
  plugin_ref=$(images_ref fuse-plugin)
  "$helm" upgrade --install "$RELEASE" charts/lighthouse-operator --namespace "$RELEASE_NS" --create-namespace \
    --set image.repository="${operator_ref%:*}" --set image.tag="${operator_ref##*:}" \
    --set fusePlugin.image.repository="${plugin_ref%:*}" --set fusePlugin.image.tag="${plugin_ref##*:}" \
    --set defaults.images.bridge="$(images_ref bridge)" \
    --set defaults.images.postgres="$(images_ref postgres)" \
    --set defaults.images.redis="$(images_ref redis)" \
    --set defaults.fuse.devicePluginResource="$FUSE_RESOURCE" \
    --wait --timeout 180s >/dev/null ||
    die "helm could not install the operator (kubectl -n $RELEASE_NS describe pods)"
  # A new image under the same tag (a rebuilt checkout) needs new pods: helm sees no change in the manifest.
  local running
  running=$(kubectl -n "$RELEASE_NS" get pods -l app.kubernetes.io/instance="$RELEASE" \
    -o jsonpath='{.items[*].status.containerStatuses[0].imageID}')
  if [ -n "$running" ] && ! grep -q "$(image_digest operator)" <<<"$running"; then
    log "Operator image rebuilt: restarting its pod"
    kubectl -n "$RELEASE_NS" rollout restart deployment -l app.kubernetes.io/instance="$RELEASE" >/dev/null
    kubectl -n "$RELEASE_NS" rollout status deployment -l app.kubernetes.io/instance="$RELEASE" --timeout=180s >/dev/null
  fi
  # The same for the FUSE node plugin (running mounts survive its restart: docs/fuse-modes.md).
  running=$(kubectl -n "$RELEASE_NS" get pods -l app.kubernetes.io/component=fuse-node \
    -o jsonpath='{.items[*].status.containerStatuses[0].imageID}')
  if [ -n "$running" ] && ! grep -q "$(image_digest fuse-plugin)" <<<"$running"; then
    log "FUSE node plugin image rebuilt: restarting its pods"
    kubectl -n "$RELEASE_NS" rollout restart daemonset -l app.kubernetes.io/component=fuse-node >/dev/null
  fi
  kubectl -n "$RELEASE_NS" rollout status daemonset -l app.kubernetes.io/component=fuse-node --timeout=180s \
    >/dev/null || die "the FUSE node plugin did not become ready (kubectl -n $RELEASE_NS describe daemonset)"
}

# image_digest NAME: the image ID (config digest) of the image in its archive, as the kubelet reports a pod's imageID.
image_digest() {
  local archive="$LIGHTHOUSE_STATE/images/$1.tar" manifest
  manifest=$(tar -xOf "$archive" index.json | jq -r '.manifests[0].digest')
  tar -xOf "$archive" "blobs/sha256/${manifest#sha256:}" | jq -r '.config.digest'
}

wait_sample() {
  log "Waiting for lhb/$SAMPLE_NAME to be Ready (bridge, PostgreSQL and Redis pods on the real node)"
  if ! kubectl -n "$SAMPLE_NS" wait --for=condition=Ready --timeout=300s "lhb/$SAMPLE_NAME" >/dev/null; then
    kubectl -n "$SAMPLE_NS" describe "lhb/$SAMPLE_NAME" >&2 || true
    kubectl -n "$SAMPLE_NS" get pods -o wide >&2 || true
    die "lhb/$SAMPLE_NAME did not become Ready; operator log: kubectl -n $RELEASE_NS logs deploy/$RELEASE-lighthouse-operator"
  fi
  local sel="app.kubernetes.io/instance=$SAMPLE_NAME,app.kubernetes.io/component=bridge"
  kubectl -n "$SAMPLE_NS" wait --for=condition=Ready pod -l "$sel" --timeout=120s >/dev/null
  # The mount follows Ready (without it the bridge serves, degraded); the operator reports it from the pods' /health.
  if ! kubectl -n "$SAMPLE_NS" wait --for=condition=FuseAvailable --timeout=120s "lhb/$SAMPLE_NAME" >/dev/null; then
    log "WARNING: FUSE is not mounted in the sample bridge:" \
      "$(kubectl -n "$SAMPLE_NS" get "lhb/$SAMPLE_NAME" -o jsonpath='{.status.conditions[?(@.type=="FuseAvailable")].message}')"
  fi
}

do_up() {
  hack/bootstrap.sh apt
  hack/bootstrap.sh python
  hack/build-tools.sh >/dev/null
  LIGHTHOUSE_CLUSTER_REAL_NODE=1 hack/cluster.sh up >/dev/null
  eval "$(hack/cluster.sh env)"
  hack/images.sh all
  hack/images.sh stores
  local i archives=()
  for i in "${IMAGES[@]}"; do archives+=("$LIGHTHOUSE_STATE/images/$i.tar"); done
  hack/node.sh import "${archives[@]}"
  install_operator "$(images_ref operator)"
  log "Applying $SAMPLE"
  kubectl apply --server-side --field-manager=lighthouse-sample -f "$SAMPLE" >/dev/null
  wait_sample
  echo
  kubectl get lhb -A
  kubectl -n "$SAMPLE_NS" get pods -o wide
  cat <<MSG

Lighthouse is up: the operator runs in $RELEASE_NS, the sample bridge in $SAMPLE_NS on the real node.
  eval "\$(hack/cluster.sh env)"                                  # KUBECONFIG and kubectl for this shell
  kubectl -n $SAMPLE_NS port-forward svc/$SAMPLE_NAME-bridge 8765:8765 &     # the bridge API on 127.0.0.1:8765
  curl -s http://127.0.0.1:8765/health
  TOKEN=\$(kubectl -n $SAMPLE_NS get secret $SAMPLE_NAME-admin-token -o jsonpath='{.data.token}' | base64 -d)
  curl -s -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' http://127.0.0.1:8765/validate \\
    -d '{"tool_name": "Bash", "tool_input": {"command": "ls -la"}, "agent_id": "me"}'   # validate a command
  kubectl -n $SAMPLE_NS exec deploy/$SAMPLE_NAME-bridge -- ls -la /mnt/lighthouse/project/current   # the shadow, through FUSE
  kubectl -n $SAMPLE_NS describe lhb/$SAMPLE_NAME                       # conditions, components, Events
  kubectl -n $RELEASE_NS logs deploy/$RELEASE-lighthouse-operator      # the operator
  make down                                                      # stop the cluster and its node
MSG
}

do_down() {
  hack/cluster.sh down
}

do_status() {
  hack/cluster.sh status || true
}

case "${1:-up}" in
  up) do_up ;;
  down) do_down ;;
  status) do_status ;;
  *) die "usage: $0 [up|down|status]" ;;
esac

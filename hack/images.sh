#!/usr/bin/env bash
# Builds the OCI images with buildah, without a registry and without Docker:
#   1. a Debian bookworm base image made locally with debootstrap (cached: skipped when it exists);
#   2. Python wheels built on the host (the `operator` extra, and separately the `bridge`+`fuse` extras);
#   3. Dockerfile.operator and Dockerfile.bridge built with `buildah bud --pull=never`;
#   4. OCI archives exported to .state/images/<name>.tar.
# Also, for the real node (hack/node.sh imports the archives into its containerd):
#   stores: PostgreSQL 15 and Redis 7.0 from Debian's packages (Dockerfile.postgres, Dockerfile.redis), the images the
#           operator is told to use for managed stores (chart values defaults.images.*), never Docker Hub names;
#   node:   pause and CoreDNS, one static binary each (hack/build-node-tools.sh) in an otherwise empty image;
#   testing: images the node tier needs to break things for real (exits: a process that exits 1 at start).
# Every step is keyed on its inputs, so a second run with an unchanged tree only checks stamps.
#   hack/images.sh [all|base|operator|bridge|fuse-plugin|stores|node|testing|list|refs|ref NAME]
#     (default: all = operator, bridge, fuse-plugin: the CSI node plugin and the /dev/fuse device plugin)
# Prints nothing on stdout except for `refs` (one image reference per line), `ref NAME` and `list`.
# LIGHTHOUSE_IMAGE_TAG: tag of the operator and bridge images (default: the project version), for a checkout that
# must not share tags with others in the machine's image storage.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

IMAGES_DIR="$LIGHTHOUSE_STATE/images"
BUILD_DIR="$LIGHTHOUSE_STATE/images/build"
BASE_IMAGE="${LIGHTHOUSE_BASE_IMAGE:-localhost/lighthouse-base:bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
VERSION=$(awk -F'"' '/^version = /{print $2; exit}' pyproject.toml)
# crun fails on this cgroup v1 hybrid host, and rlimits cannot be raised above the current hard limit.
RUNTIME_FLAGS=(--runtime /usr/sbin/runc)
ULIMIT_FLAGS=(--ulimit nofile=1024:1024 --ulimit nproc=1000:1000)
# Wheels are built by Debian's own python3 (the interpreter the images run), so environment markers such as
# python_full_version resolve exactly as they will inside the image.
BUILDER_VENV="$BUILD_DIR/pyenv"
PY="$BUILDER_VENV/bin/python"

# Components and the pip extras each image installs (each Dockerfile removes the other component's package).
declare -A EXTRAS=([operator]="operator" [bridge]="bridge,fuse" [fuse-plugin]="csi")
# The source directories each image's own package comes from (beside the shared ones in the project wheel).
declare -A SOURCES=([operator]="operator" [bridge]="bridge" [fuse-plugin]="nodeplugin shared/lighthouse_fusefd fuse-device-plugin")

TAG=${LIGHTHOUSE_IMAGE_TAG:-$VERSION}
# Store images carry the server's version (the operator reads PostgreSQL's major from the tag).
declare -A STORE_TAGS=([postgres]=15 [redis]=7.0)

node_tool_version() { awk -v t="$1" '$1==t {print $2}' "$("$REPO_ROOT/hack/build-node-tools.sh" --dir)/../versions"; }

image_ref() {
  case "$1" in
    operator | bridge | fuse-plugin) echo "localhost/lighthouse-$1:$TAG" ;;
    postgres | redis) echo "localhost/lighthouse-$1:${STORE_TAGS[$1]}" ;;
    pause | coredns) echo "localhost/lighthouse-$1:$(node_tool_version "$1" | sed 's/^v//')" ;;
    exits) echo "localhost/lighthouse-test-exits:$TAG" ;;
    *) die "no image named $1" ;;
  esac
}

ensure_packages() {
  # Building and running images as root (kernel overlayfs, no uidmap or slirp4netns), plus what the wheel builder
  # needs: Debian's python3 with venv and headers, and libfuse3 for pyfuse3's sdist.
  apt_install buildah podman runc debootstrap python3-venv python3-dev libfuse3-dev pkg-config gcc
}

ensure_builder_python() {
  [ -x "$PY" ] && return 0
  log "Creating the wheel builder virtualenv from /usr/bin/python3"
  rm -rf "$BUILDER_VENV"
  /usr/bin/python3 -m venv "$BUILDER_VENV"
  "$PY" -m pip install --quiet --upgrade pip setuptools wheel >&2
}

image_exists() { buildah images --quiet "$1" >/dev/null 2>&1; }

build_base() {
  if image_exists "$BASE_IMAGE"; then
    return 0
  fi
  mkdir -p "$IMAGES_DIR"
  exec 8>"$IMAGES_DIR/.base.lock"
  flock 8
  if image_exists "$BASE_IMAGE"; then return 0; fi
  local rootfs t0=$SECONDS
  rootfs=$(mktemp -d "$IMAGES_DIR/.rootfs.XXXXXX")
  log "Building base image $BASE_IMAGE with debootstrap (bookworm, minbase, python3)"
  # python3 (3.11 on bookworm) is the only runtime the images share; everything else comes from wheels.
  debootstrap --variant=minbase --include=python3-minimal,python3,libpython3.11-stdlib \
    bookworm "$rootfs" "$DEBIAN_MIRROR" >"$IMAGES_DIR/debootstrap.log" 2>&1 \
    || { rm -rf "$rootfs"; die "debootstrap failed, see $IMAGES_DIR/debootstrap.log"; }
  # Trim what no container needs at run time: docs, man pages, locales, apt's downloaded lists and packages.
  rm -rf "$rootfs"/usr/share/{doc,man,info}/* "$rootfs"/usr/share/locale/* \
    "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/* "$rootfs"/debootstrap
  # Keep future `apt-get install` in Dockerfiles small and free of docs.
  cat >"$rootfs/etc/apt/apt.conf.d/90lighthouse" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90lighthouse-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  local ctr
  ctr=$(buildah from scratch)
  # tar keeps ownership, modes and setuid bits of the tree (buildah mount works as root).
  local mnt
  mnt=$(buildah mount "$ctr")
  tar -C "$rootfs" -cf - . | tar -C "$mnt" -xpf -
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd /bin/bash \
    --label org.opencontainers.image.title=lighthouse-base \
    --label org.opencontainers.image.description="Debian bookworm minbase with python3 for Lighthouse images" \
    --label org.opencontainers.image.base.name=debian:bookworm "$ctr"
  buildah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  log "Built base image $BASE_IMAGE ($((SECONDS - t0))s)"
}

# Python wheels, in two parts so a source change does not re-resolve dependencies against the index:
#   deps-<component>-<key>/   every dependency of the component's extras (keyed on pyproject.toml and the builder);
#   project-<key>/            the lighthouse wheel itself, built from a clean copy of the tracked sources.

tree_files() { # tree_files PATH... -> tracked and untracked-but-not-ignored files, sorted
  git ls-files -co --exclude-standard "$@" | LC_ALL=C sort | while read -r f; do [ -f "$f" ] && echo "$f"; done
}

files_key() { # files_key PATH... -> hash of the names and contents
  tree_files "$@" | while read -r f; do echo "$f"; cat "$f"; done | sha256sum | cut -c1-16
}

PIP_LOG="$BUILD_DIR/pip.log"

pip_quiet() { # run pip with its chatter in $PIP_LOG, shown only when it fails
  if ! "$PY" -m pip "$@" >>"$PIP_LOG" 2>&1; then
    tail -40 "$PIP_LOG" >&2
    return 1
  fi
}

build_deps() { # build_deps COMPONENT -> prints the directory of dependency wheels (and pip's own wheel)
  local name=$1 extras=${EXTRAS[$1]}
  local key dir tmp pip_version extra_wheels=()
  # pyfuse3 is our patched build (hack/build-pyfuse3.sh, cached), made by the same Debian python3.
  if [[ ",$extras," == *,fuse,* ]]; then extra_wheels+=("$(hack/build-pyfuse3.sh "$PY")"); fi
  key=$( (cat pyproject.toml; echo "$extras"; "$PY" --version; printf '%s\n' "${extra_wheels[@]##*/}") \
    | sha256sum | cut -c1-16)
  dir="$BUILD_DIR/deps-$name-$key"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return 0; fi
  log "Building dependency wheels for $name (extras: $extras)"
  tmp=$(mktemp -d "$BUILD_DIR/.deps.XXXXXX")
  # Debian's python3 builds the sdists (pyfuse3 links libfuse3) for the CPython 3.11 that the image runs.
  pip_quiet wheel --wheel-dir "$tmp/wheels" ".[$extras]" "${extra_wheels[@]}" \
    || { rm -rf "$tmp"; die "pip wheel failed for $name"; }
  rm -f "$tmp"/wheels/lighthouse-*.whl
  # pip itself runs from its wheel inside the build stage (the base image has no pip and no ensurepip).
  pip_version=$("$PY" -c 'import importlib.metadata as m; print(m.version("pip"))')
  pip_quiet download --no-deps --only-binary=:all: --dest "$tmp/pip" "pip==$pip_version" \
    || { rm -rf "$tmp"; die "could not fetch the pip wheel"; }
  mv "$tmp"/pip/pip-*.whl "$tmp/pip/pip.whl"
  touch "$tmp/.complete"
  rm -rf "$BUILD_DIR"/deps-"$name"-*
  mv "$tmp" "$dir"
  echo "$dir"
}

build_project() { # -> prints the directory holding the lighthouse wheel
  local key dir tmp src
  key=$(files_key pyproject.toml README.md operator bridge shared nodeplugin)
  dir="$BUILD_DIR/project-$key"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return 0; fi
  log "Building the lighthouse wheel"
  tmp=$(mktemp -d "$BUILD_DIR/.project.XXXXXX")
  # A clean copy: no build/ or egg-info left in the work tree, no stray caches in the wheel.
  src="$tmp/src"
  mkdir -p "$src"
  tree_files pyproject.toml README.md operator bridge shared nodeplugin | grep -v -e '__pycache__' -e '\.pyc$' \
    | tar -cf - -T - | tar -C "$src" -xf -
  pip_quiet wheel --no-deps --no-build-isolation --wheel-dir "$tmp/wheels" "$src" \
    || { rm -rf "$tmp"; die "building the lighthouse wheel failed"; }
  rm -rf "$src"
  touch "$tmp/.complete"
  rm -rf "$BUILD_DIR"/project-*
  mv "$tmp" "$dir"
  echo "$dir"
}

build_component() { # build_component operator|bridge|fuse-plugin
  local name=$1 ref deps project key ctx revision created base_id
  ref=$(image_ref "$name")
  ensure_builder_python
  deps=$(build_deps "$name")
  project=$(build_project)
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  # Reproducible label: the commit's date, not the wall clock.
  created=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
  base_id=$(buildah images --quiet --no-trunc "$BASE_IMAGE" | head -1)
  # The image depends on its own package's source only (the other one is removed from it).
  # shellcheck disable=SC2086 # SOURCES holds a list of directories
  key=$( (basename "$deps"; files_key pyproject.toml ${SOURCES[$name]}; cat "Dockerfile.$name" .dockerignore
          echo "$base_id $revision $VERSION") | sha256sum | cut -c1-16)
  up_to_date "$name" "$key" "$ref" && return 0
  log "Building image $ref"
  local t0=$SECONDS
  # A dedicated context: wheels only, never the repository (no .venv, no .state, no secrets).
  ctx="$BUILD_DIR/context-$name"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp -a "$deps/pip" "$ctx/pip"
  cp -a "$deps/wheels" "$ctx/deps"
  cp -a "$project/wheels" "$ctx/project"
  cp .dockerignore "$ctx/.dockerignore"
  if [ "$name" = fuse-plugin ]; then
    # The /dev/fuse device plugin: a static Go binary (fuse-device-plugin/, cached by its sources).
    cp "$("$REPO_ROOT/hack/build-node-tools.sh" --plugin)" "$ctx/fuse-device-plugin"
  fi
  buildah bud --quiet --pull=never --layers --network host "${RUNTIME_FLAGS[@]}" "${ULIMIT_FLAGS[@]}" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$VERSION" \
    --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
    --file "$REPO_ROOT/Dockerfile.$name" --tag "$ref" "$ctx" >/dev/null
  export_image "$name" "$key" "$ref"
  log "Built $ref ($((SECONDS - t0))s)"
  # Superseded builds leave untagged images; keep a day of them as layer cache, drop the rest.
  podman image prune --force --filter until=24h >/dev/null 2>&1 || true
}

up_to_date() { # up_to_date NAME KEY REF: the archive and the image exist and were made from these inputs
  [ -f "$IMAGES_DIR/$1.tar" ] && [ "$(cat "$IMAGES_DIR/$1.key" 2>/dev/null)" = "$2" ] && image_exists "$3"
}

export_image() { # export_image NAME KEY REF: the OCI archive .state/images/NAME.tar and its input stamp
  local name=$1 key=$2 ref=$3
  log "Exporting $ref to $IMAGES_DIR/$name.tar"
  rm -f "$IMAGES_DIR/$name.tar.tmp"
  podman save --quiet --format oci-archive -o "$IMAGES_DIR/$name.tar.tmp" "$ref"
  mv "$IMAGES_DIR/$name.tar.tmp" "$IMAGES_DIR/$name.tar"
  echo "$key" >"$IMAGES_DIR/$name.key"
}

build_store() { # build_store postgres|redis: Dockerfile.<name> on the base image, from Debian's packages
  local name=$1 ref key ctx base_id t0=$SECONDS
  ref=$(image_ref "$name")
  base_id=$(buildah images --quiet --no-trunc "$BASE_IMAGE" | head -1)
  key=$( (cat "Dockerfile.$name" hack/images/*.sh; echo "$base_id $VERSION") | sha256sum | cut -c1-16)
  up_to_date "$name" "$key" "$ref" && return 0
  log "Building image $ref from Debian packages"
  ctx="$BUILD_DIR/context-$name"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp hack/images/*.sh "$ctx/"
  buildah bud --quiet --pull=never --layers --network host "${RUNTIME_FLAGS[@]}" "${ULIMIT_FLAGS[@]}" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "VERSION=$VERSION" \
    --file "$REPO_ROOT/Dockerfile.$name" --tag "$ref" "$ctx" >/dev/null
  export_image "$name" "$key" "$ref"
  log "Built $ref ($((SECONDS - t0))s)"
}

build_exits() { # the base image whose entrypoint exits 1 at once: a revision that crashes on the real node
  local ref key ctr
  ref=$(image_ref exits)
  key=$( (buildah images --quiet --no-trunc "$BASE_IMAGE" | head -1; echo "$ref") | sha256sum | cut -c1-16)
  up_to_date exits "$key" "$ref" && return 0
  log "Building image $ref"
  ctr=$(buildah from --pull=never "$BASE_IMAGE")
  buildah config --entrypoint '["/bin/false"]' --cmd '[]' --user 65532:65532 \
    --label org.opencontainers.image.title=lighthouse-test-exits "$ctr"
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  export_image exits "$key" "$ref"
}

build_binary_image() { # build_binary_image pause|coredns: one static binary as the entrypoint of an empty image
  local name=$1 ref key bin ctr user
  bin="$("$REPO_ROOT/hack/build-node-tools.sh")/$name"
  ref=$(image_ref "$name")
  key=$( (sha256sum "$bin"; echo "$ref") | sha256sum | cut -c1-16)
  up_to_date "$name" "$key" "$ref" && return 0
  log "Building image $ref"
  # The pause container runs as nobody, as the upstream image does; CoreDNS's pod sets its own user.
  user=65535:65535
  [ "$name" = pause ] || user=65534:65534
  ctr=$(buildah from scratch)
  buildah copy --quiet --chmod 0755 "$ctr" "$bin" "/$name" >/dev/null
  buildah config --entrypoint "[\"/$name\"]" --user "$user" \
    --label "org.opencontainers.image.title=lighthouse-$name" \
    --label "org.opencontainers.image.description=$name built from its pinned module by hack/build-node-tools.sh" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
  export_image "$name" "$key" "$ref"
}

main() {
  local what=${1:-all}
  case "$what" in
    refs) image_ref operator; image_ref bridge; image_ref fuse-plugin; return 0 ;;
    ref) image_ref "${2:?usage: $0 ref NAME}"; return 0 ;;
    list) buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep lighthouse || true; return 0 ;;
  esac
  if [ "$what" = node ]; then
    # Only buildah and podman: no Python wheels, no base image.
    apt_install buildah podman runc
  else
    ensure_packages
  fi
  mkdir -p "$IMAGES_DIR" "$BUILD_DIR"
  # One build at a time: two cores are shared, and concurrent test sessions would race on tags and archives.
  exec 9>"$IMAGES_DIR/.build.lock"
  flock 9
  case "$what" in
    base) build_base ;;
    operator | bridge | fuse-plugin) build_base; build_component "$what" ;;
    stores) build_base; build_store postgres; build_store redis ;;
    node) build_binary_image pause; build_binary_image coredns ;;
    testing) build_base; build_exits ;;
    all) build_base; build_component operator; build_component bridge; build_component fuse-plugin ;;
    *) die "usage: $0 [all|base|operator|bridge|fuse-plugin|stores|node|testing|list|refs|ref NAME]" ;;
  esac
}

main "$@"

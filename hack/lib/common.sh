# Sourced by hack/*.sh: repo root, cache locations, logging.
# shellcheck shell=bash
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export REPO_ROOT
export LIGHTHOUSE_CACHE="${LIGHTHOUSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lighthouse}"
export LIGHTHOUSE_STATE="${LIGHTHOUSE_STATE:-$REPO_ROOT/.state}"
export GOTOOLCHAIN=local

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# apt_install PKG...: installs Debian packages that are missing (apt-get update once per day).
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "Installing Debian packages: ${missing[*]}"
  local stamp=/var/lib/apt/periodic/lighthouse-update-stamp
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    mkdir -p "$(dirname "$stamp")" && touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# pinned_venv DIR PYTHON PIN...: a virtualenv with exactly these pins, created once (DIR/.complete marks it done).
pinned_venv() {
  local dir=$1 py=$2
  shift 2
  [ -f "$dir/.complete" ] && return 0
  log "Creating the virtualenv $dir ($*)"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip >&2
  "$dir/bin/python" -m pip install -q "$@" >&2
  touch "$dir/.complete"
}

# tools_dir: the versioned directory of the Go-built binaries (see hack/build-tools.sh).
tools_key() {
  local t=$REPO_ROOT/hack/tools
  cat "$t"/{etcd,kubernetes,kwok}/go.mod "$t"/{etcd,kubernetes,kwok}/go.sum "$REPO_ROOT/hack/build-tools.sh" \
    | sha256sum | cut -c1-16
}
tools_dir() { echo "$LIGHTHOUSE_CACHE/tools/$(tools_key)"; }

# check_fixed_port PORT WHAT: a fixed listening port must lie outside the kernel's ephemeral range (outgoing
# connections take local ports from it at random, so a fixed port there is sometimes already taken), unless reserved.
check_fixed_port() {
  local port=$1 what=$2 lo hi
  read -r lo hi </proc/sys/net/ipv4/ip_local_port_range
  if [ "$port" -ge "$lo" ] && [ "$port" -le "$hi" ] &&
    ! grep -qE "(^|,)$port(,|$)" /proc/sys/net/ipv4/ip_local_reserved_ports; then
    die "$what port $port lies in the ephemeral range $lo-$hi; choose a port below $lo"
  fi
}

# loopback_port_busy PORT: something listens on 127.0.0.1:PORT (or on every address). Listeners on other addresses
# do not count: the real node's forwarders (hack/node.sh) use the same port numbers on the node address.
loopback_port_busy() {
  ss -Htln "sport = :$1" 2>/dev/null | awk '{print $4}' |
    grep -qE "^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]|\[::1\]|\[::ffff:127\.0\.0\.1\]):$1\$"
}

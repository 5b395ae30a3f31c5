#!/usr/bin/env bash
# Real data services for development and the integration tier, on loopback only, with data under .state/services:
#   PostgreSQL (Debian)   127.0.0.1:${LIGHTHOUSE_PG_PORT:-25432}     superuser lighthouse / lighthouse, database lighthouse
#   Redis (Debian)        127.0.0.1:${LIGHTHOUSE_REDIS_PORT:-26379}  password lighthouse, appendonly
#   S3 (moto server)      127.0.0.1:${LIGHTHOUSE_S3_PORT:-29000}     bucket lighthouse created on up
# The ports differ from the defaults so that a system instance (5432/6379) is never touched, and lie below the
# kernel's ephemeral range (32768-60999), from which outgoing connections take their local ports at random.
#   hack/services.sh up       start what is not running (idempotent), wait until each answers
#   hack/services.sh down     stop all three; nothing is left listening on their ports
#   hack/services.sh status   what runs
#   hack/services.sh env      shell exports: eval "$(hack/services.sh env)"
set -o errexit -o nounset -o pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$REPO_ROOT"

PG_PORT=${LIGHTHOUSE_PG_PORT:-25432}
REDIS_PORT=${LIGHTHOUSE_REDIS_PORT:-26379}
S3_PORT=${LIGHTHOUSE_S3_PORT:-29000}
PASSWORD=lighthouse
S3_BUCKET=${LIGHTHOUSE_S3_DEFAULT_BUCKET:-lighthouse}
AWS_KEY=lighthouse
AWS_SECRET=lighthouse-secret
REGION=us-east-1

SVC_DIR=$LIGHTHOUSE_STATE/services
PG_DIR=$SVC_DIR/postgres
PG_DATA=$PG_DIR/data
PG_RUN=$PG_DIR/run          # unix socket directory
PG_LOG=$PG_DIR/postgres.log
REDIS_DIR=$SVC_DIR/redis
REDIS_PID=$REDIS_DIR/redis.pid
S3_DIR=$SVC_DIR/s3
S3_PID=$S3_DIR/moto.pid
S3_LOG=$S3_DIR/moto.log
LOCK=$SVC_DIR/services.lock

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -n "$d" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
  echo "$d"
}

# PostgreSQL refuses to run as root: run it as an unprivileged user that owns the data directory.
pg_user() {
  if [ "$(id -u)" -ne 0 ]; then id -un; return; fi
  if getent passwd postgres >/dev/null; then echo postgres; return; fi
  getent passwd lighthouse >/dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin lighthouse
  echo lighthouse
}

as_pg() {
  local u
  u=$(pg_user)
  if [ "$(id -un)" = "$u" ]; then "$@"; else runuser -u "$u" -- "$@"; fi
}

port_busy() { loopback_port_busy "$1"; }

wait_for() {  # wait_for DESCRIPTION SECONDS CMD...
  local what=$1 secs=$2; shift 2
  local i
  for ((i = 0; i < secs * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

pidfile_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL
pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1; }
pg_running() { [ -f "$PG_DATA/postmaster.pid" ] && as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

pg_up() {
  local bin user
  bin=$(pg_bin)
  user=$(pg_user)
  if pg_running; then
    wait_for postgres 30 pg_ready || die "PostgreSQL runs but does not answer on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
    log "PostgreSQL already running port=$PG_PORT data=$PG_DATA"
    return 0
  fi
  port_busy "$PG_PORT" && die "port $PG_PORT is in use by another process; set LIGHTHOUSE_PG_PORT"
  mkdir -p "$PG_DIR" "$PG_RUN"
  chmod 755 "$LIGHTHOUSE_STATE" "$SVC_DIR"
  chown "$user" "$PG_DIR" "$PG_RUN"
  # The server user must be able to traverse every parent (e.g. a checkout under /root): grant search (x) only.
  if ! runuser -u "$user" -- test -x "$PG_DIR" 2>/dev/null && [ "$(id -u)" -eq 0 ]; then
    local d=$PG_DIR
    while [ "$d" != / ]; do
      d=$(dirname "$d")
      runuser -u "$user" -- test -x "$d" 2>/dev/null || { chmod o+x "$d"; log "Granted search permission path=$d"; }
    done
  fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "Initializing PostgreSQL data=$PG_DATA user=$user"
    rm -rf "$PG_DATA"
    local pwfile=$PG_DIR/.pw
    printf '%s\n' "$PASSWORD" >"$pwfile"
    chown "$user" "$pwfile"
    chmod 600 "$pwfile"
    as_pg "$bin/initdb" -D "$PG_DATA" -U lighthouse --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
      || die "initdb failed (log: $PG_DIR/initdb.log)"
    rm -f "$pwfile"
    cat >>"$PG_DATA/postgresql.conf" <<EOF
# lighthouse: loopback only, socket under .state (set by hack/services.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_RUN'
max_connections = 200
shared_buffers = 128MB
logging_collector = off
EOF
  fi
  log "Starting PostgreSQL port=$PG_PORT"
  touch "$PG_LOG" && chown "$user" "$PG_LOG"
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_RUN" start >/dev/null 9>&- \
    || die "PostgreSQL did not start (log: $PG_LOG)"
  wait_for postgres 30 pg_ready || die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
  if ! as_pg "$bin/psql" -h "$PG_RUN" -p "$PG_PORT" -U lighthouse -d postgres -Atqc \
      "SELECT 1 FROM pg_database WHERE datname = 'lighthouse'" | grep -q 1; then
    as_pg "$bin/createdb" -h "$PG_RUN" -p "$PG_PORT" -U lighthouse lighthouse
    log "Created database name=lighthouse"
  fi
  log "PostgreSQL ready url=postgresql://lighthouse:***@127.0.0.1:$PG_PORT/lighthouse"
}

pg_down() {
  if pg_running; then
    as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    log "Stopped PostgreSQL port=$PG_PORT"
  fi
}

# ---------------------------------------------------------------- Redis
redis_cli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -a "$PASSWORD" --no-auth-warning "$@"; }
redis_ready() { [ "$(redis_cli ping 2>/dev/null)" = PONG ]; }

redis_up() {
  if pidfile_alive "$REDIS_PID"; then
    wait_for redis 30 redis_ready || die "Redis runs but does not answer on 127.0.0.1:$REDIS_PORT"
    log "Redis already running port=$REDIS_PORT"
    return 0
  fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT is in use by another process; set LIGHTHOUSE_REDIS_PORT"
  mkdir -p "$REDIS_DIR"
  cat >"$REDIS_DIR/redis.conf" <<EOF
# written by hack/services.sh
bind 127.0.0.1
protected-mode yes
port $REDIS_PORT
requirepass $PASSWORD
daemonize yes
pidfile $REDIS_PID
logfile $REDIS_DIR/redis.log
dir $REDIS_DIR
appendonly yes
save ""
databases 64
EOF
  log "Starting Redis port=$REDIS_PORT"
  redis-server "$REDIS_DIR/redis.conf" 9>&- || die "Redis did not start (log: $REDIS_DIR/redis.log)"
  wait_for redis 30 redis_ready || die "Redis does not answer on 127.0.0.1:$REDIS_PORT (log: $REDIS_DIR/redis.log)"
  log "Redis ready url=redis://:***@127.0.0.1:$REDIS_PORT/0"
}

redis_down() {
  if pidfile_alive "$REDIS_PID"; then
    local pid
    pid=$(cat "$REDIS_PID")
    redis_cli shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    wait_for redis-stop 30 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    log "Stopped Redis port=$REDIS_PORT"
  fi
  rm -f "$REDIS_PID"
}

# ---------------------------------------------------------------- S3 (moto server)
s3_ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$S3_PORT/"; }

s3_up() {
  if pidfile_alive "$S3_PID"; then
    wait_for s3 30 s3_ready || die "moto server runs but does not answer on 127.0.0.1:$S3_PORT (log: $S3_LOG)"
    log "S3 server already running port=$S3_PORT"
  else
    port_busy "$S3_PORT" && die "port $S3_PORT is in use by another process; set LIGHTHOUSE_S3_PORT"
    [ -x .venv/bin/moto_server ] || "$REPO_ROOT/hack/bootstrap.sh" python
    [ -x .venv/bin/moto_server ] || die ".venv/bin/moto_server missing after bootstrap (extra dev: moto[server])"
    mkdir -p "$S3_DIR"
    log "Starting S3 server (moto) port=$S3_PORT"
    # setsid: the server outlives this script and the caller's process group (pytest, make).
    setsid .venv/bin/moto_server -H 127.0.0.1 -p "$S3_PORT" >"$S3_LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$S3_PID"
    wait_for s3 60 s3_ready || die "moto server does not answer on 127.0.0.1:$S3_PORT (log: $S3_LOG)"
  fi
  # moto keeps buckets in memory: (re)create the default one. Moto does not check signatures.
  curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET" || true
  log "S3 server ready endpoint=http://127.0.0.1:$S3_PORT bucket=$S3_BUCKET"
}

s3_down() {
  if pidfile_alive "$S3_PID"; then
    local pid
    pid=$(cat "$S3_PID")
    kill "$pid" 2>/dev/null || true
    wait_for s3-stop 30 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    log "Stopped S3 server port=$S3_PORT"
  fi
  rm -f "$S3_PID"
}

# ---------------------------------------------------------------- commands
# Serializes up/down between concurrent callers (several pytest sessions). Daemons are started with 9>&- so that
# they do not inherit the lock.
with_lock() {
  mkdir -p "$SVC_DIR"
  exec 9>"$LOCK"
  flock -w 300 9 || die "timed out waiting for $LOCK"
  "$@"
}

do_up() {
  apt_install postgresql redis-server redis-tools curl iproute2 util-linux
  [ -x .venv/bin/python ] || "$REPO_ROOT/hack/bootstrap.sh" python
  pg_up
  redis_up
  s3_up
}

do_down() {
  pg_down
  redis_down
  s3_down
  local p busy=0
  for p in "$PG_PORT" "$REDIS_PORT" "$S3_PORT"; do
    if port_busy "$p"; then log "WARNING: port $p still has a listener"; busy=1; fi
  done
  return $busy
}

do_status() {
  local rc=0
  if pg_running && pg_ready; then echo "postgres  running  127.0.0.1:$PG_PORT  data=$PG_DATA"
  else echo "postgres  stopped"; rc=3; fi
  if pidfile_alive "$REDIS_PID" && redis_ready; then echo "redis     running  127.0.0.1:$REDIS_PORT  pid=$(cat "$REDIS_PID")"
  else echo "redis     stopped"; rc=3; fi
  if pidfile_alive "$S3_PID" && s3_ready; then echo "s3        running  127.0.0.1:$S3_PORT  pid=$(cat "$S3_PID")"
  else echo "s3        stopped"; rc=3; fi
  return $rc
}

do_env() {
  cat <<EOF
export LIGHTHOUSE_DATABASE_URL='postgresql://lighthouse:$PASSWORD@127.0.0.1:$PG_PORT/lighthouse'
export LIGHTHOUSE_REDIS_URL='redis://:$PASSWORD@127.0.0.1:$REDIS_PORT/0'
export LIGHTHOUSE_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export LIGHTHOUSE_S3_BUCKET='$S3_BUCKET'
export LIGHTHOUSE_S3_REGION='$REGION'
export LIGHTHOUSE_S3_PATH_STYLE='true'
export AWS_ACCESS_KEY_ID='$AWS_KEY'
export AWS_SECRET_ACCESS_KEY='$AWS_SECRET'
export AWS_DEFAULT_REGION='$REGION'
EOF
}

case "${1:-}" in
  up)
    check_fixed_port "$PG_PORT" PostgreSQL; check_fixed_port "$REDIS_PORT" Redis; check_fixed_port "$S3_PORT" S3
    with_lock do_up ;;
  down) with_lock do_down ;;
  status) do_status ;;
  env) do_env ;;
  *) die "usage: $0 up|down|status|env" ;;
esac

#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis on free loopback ports, for the tests (scripts/test calls this).
#
#   scripts/services.sh start          start both (installing them from Debian's packages when
#                                      missing), wait until they accept connections, and write
#                                      .tmp/services.env; when they already run, only rewrite it
#   scripts/services.sh stop           stop both and delete their data and .tmp/services.env;
#                                      succeeds when nothing runs
#   scripts/services.sh status         say what runs
#   scripts/services.sh pg-stop|pg-start|redis-stop|redis-start
#                                      stop or start one service again on the same port and data,
#                                      for tests that restart a service mid-test
#
# .tmp/services.env holds KEYCARD_TEST_DATABASE_URL (superuser keycard, trust auth),
# KEYCARD_TEST_REDIS_URL, KEYCARD_TEST_PG_DATA, KEYCARD_TEST_PG_PORT, KEYCARD_TEST_REDIS_PORT and
# KEYCARD_TEST_SERVICES_SH (this script). Everything lives under .tmp/services/.
# KEYCARD_SERVICES_TIMEOUT (seconds, default 60) bounds each wait for a service.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$ROOT/scripts/services.sh"
TMP="$ROOT/.tmp"
RUN="$TMP/services"
ENV_FILE="$TMP/services.env"
PG_HOME="$RUN/pg"          # owned by the server's user; holds the socket and the log
PG_DATA="$PG_HOME/data"
PG_LOG="$PG_HOME/postgres.log"
PG_PORT_FILE="$RUN/pg.port"
REDIS_DIR="$RUN/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
REDIS_PORT_FILE="$RUN/redis.port"
TIMEOUT="${KEYCARD_SERVICES_TIMEOUT:-60}"

say() { echo "services.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Prints the last lines of a log to stderr, indented, for error messages.
log_tail() {
  if [ -r "$1" ]; then
    say "last lines of $1:"
    tail -n 25 "$1" | sed 's/^/    /' >&2 || true
  else
    say "(no log at $1)"
  fi
}

is_root() { [ "$(id -u)" = 0 ]; }

as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$* missing and apt-get not available; install it by hand"
  say "installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    || die "apt-get update failed"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# ---------------------------------------------------------------------------------------------
# Ports

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

free_port() {
  local port=""
  if command -v python3 >/dev/null 2>&1; then
    port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' 2>/dev/null) || port=""
  fi
  if [ -z "$port" ]; then
    local _
    for _ in $(seq 1 200); do
      port=$((20000 + RANDOM % 40000))
      port_in_use "$port" || break
      port=""
    done
  fi
  [ -n "$port" ] || die "could not find a free port on 127.0.0.1"
  echo "$port"
}

# Reads a port file; prints nothing when there is none.
read_port() { [ -f "$1" ] && tr -dc '0-9' <"$1" || true; }

# Pid alive and (when the name is given) its command name matches, so a reused pid is not ours.
pid_alive() {
  local pid="$1" name="${2:-}"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    # A killed server that nobody has reaped yet is a zombie: count it as gone.
    local stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    case "$stat" in Z*|X*) return 1 ;; esac
  fi
  if [ -n "$name" ] && [ -r "/proc/$pid/comm" ]; then
    grep -q "$name" "/proc/$pid/comm" 2>/dev/null || return 1
  fi
}

wait_gone() {
  local pid="$1" i
  for i in $(seq 1 $((TIMEOUT * 10))); do
    pid_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

PG_BIN=""

find_pg_bin() {
  local dir=""
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
  elif [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
    dir=/usr/lib/postgresql/15/bin
  else
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] || return 1
  PG_BIN="$dir"
}

ensure_pg_bin() {
  [ -n "$PG_BIN" ] && return 0
  find_pg_bin && return 0
  apt_install postgresql
  find_pg_bin || die "initdb/pg_ctl not found even after installing postgresql"
}

pg_isready_bin() {
  if [ -x "$PG_BIN/pg_isready" ]; then echo "$PG_BIN/pg_isready"; else command -v pg_isready || true; fi
}

# Runs a PostgreSQL server program as the postgres user when we are root (initdb and pg_ctl
# refuse root), from a directory that user can enter.
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_pid() { [ -f "$PG_DATA/postmaster.pid" ] && head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_running() { pid_alive "$(pg_pid)" postgres; }

pg_init() {
  ensure_pg_bin
  rm -rf "$PG_HOME"
  mkdir -p "$PG_HOME"
  if is_root; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres \
        || die "could not create the postgres user"
    fi
    # The server runs as postgres: it must reach its directory and own it.
    chmod o+x "$TMP" "$RUN"
    local d="$ROOT"
    while [ "$d" != / ]; do
      if ! runuser -u postgres -- test -x "$d"; then chmod o+x "$d"; fi
      d=$(dirname "$d")
    done
    chown postgres: "$PG_HOME"
  fi
  if ! as_pg "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U keycard -E UTF8 --locale=C \
      >"$PG_HOME/initdb.log" 2>&1; then
    log_tail "$PG_HOME/initdb.log"
    die "initdb failed for $PG_DATA"
  fi
}

# Starts the cluster in $PG_DATA on the port in $PG_PORT_FILE and waits for connections.
pg_start_existing() {
  ensure_pg_bin
  local port socket_dir
  port=$(read_port "$PG_PORT_FILE")
  [ -n "$port" ] || die "no PostgreSQL port recorded in $PG_PORT_FILE (run start first)"
  [ -f "$PG_DATA/PG_VERSION" ] || die "no PostgreSQL cluster in $PG_DATA (run start first)"
  if pg_running; then return 0; fi
  if port_in_use "$port"; then
    die "cannot start PostgreSQL: something else already listens on 127.0.0.1:$port"
  fi
  # Unix socket paths are limited to about 107 bytes; without a short enough dir use TCP only.
  socket_dir="$PG_HOME"
  [ ${#socket_dir} -le 90 ] || socket_dir=""
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" \
      -o "-p $port -k '$socket_dir' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null 2>"$PG_HOME/pg_ctl.err" 9>&-; then
    log_tail "$PG_HOME/pg_ctl.err"
    log_tail "$PG_LOG"
    die "PostgreSQL did not start on 127.0.0.1:$port"
  fi
  local isready i
  isready=$(pg_isready_bin)
  for i in $(seq 1 $((TIMEOUT * 10))); do
    if [ -n "$isready" ]; then
      "$isready" -q -h 127.0.0.1 -p "$port" -U keycard -d postgres && return 0
    else
      port_in_use "$port" && return 0
    fi
    sleep 0.1
  done
  log_tail "$PG_LOG"
  die "PostgreSQL on 127.0.0.1:$port did not accept connections within ${TIMEOUT}s"
}

pg_stop() {
  [ -d "$PG_DATA" ] || return 0
  local pid
  pid=$(pg_pid)
  if [ -n "$pid" ] && pg_running; then
    if find_pg_bin; then
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$TIMEOUT" stop >/dev/null 2>&1 || true
    fi
    if pid_alive "$pid" postgres; then
      kill -INT "$pid" 2>/dev/null || true
      wait_gone "$pid" || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" || true; }
    fi
  fi
  if pid_alive "$pid" postgres; then say "PostgreSQL (pid $pid) would not stop"; return 1; fi
  return 0
}

pg_start() {
  if pg_running && [ -n "$(read_port "$PG_PORT_FILE")" ]; then return 0; fi
  # Not running: start from a fresh cluster (the data is throwaway).
  pg_stop || true
  pg_init
  free_port >"$PG_PORT_FILE"
  pg_start_existing
}

# ---------------------------------------------------------------------------------------------
# Redis

ensure_redis_bin() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  apt_install redis-server
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found even after installing redis-server"
  command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools
}

redis_pid() { [ -f "$REDIS_PID" ] && tr -dc '0-9' <"$REDIS_PID" || true; }

redis_running() { pid_alive "$(redis_pid)" redis; }

# Starts Redis on the port in $REDIS_PORT_FILE and waits for PONG.
redis_start_existing() {
  ensure_redis_bin
  local port
  port=$(read_port "$REDIS_PORT_FILE")
  [ -n "$port" ] || die "no Redis port recorded in $REDIS_PORT_FILE (run start first)"
  if redis_running; then return 0; fi
  if port_in_use "$port"; then
    die "cannot start Redis: something else already listens on 127.0.0.1:$port"
  fi
  mkdir -p "$REDIS_DIR"
  rm -f "$REDIS_PID"
  if ! redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_DIR" >/dev/null 2>"$REDIS_DIR/start.err" 9>&-; then
    log_tail "$REDIS_DIR/start.err"
    log_tail "$REDIS_LOG"
    die "redis-server did not start on 127.0.0.1:$port"
  fi
  local i
  for i in $(seq 1 $((TIMEOUT * 10))); do
    if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
      # The daemon writes its pid file just after it forks; give it a moment.
      local j
      for j in $(seq 1 50); do [ -s "$REDIS_PID" ] && break; sleep 0.1; done
      return 0
    fi
    sleep 0.1
  done
  log_tail "$REDIS_LOG"
  die "Redis on 127.0.0.1:$port did not answer PING within ${TIMEOUT}s"
}

redis_stop() {
  local pid port
  pid=$(redis_pid)
  port=$(read_port "$REDIS_PORT_FILE")
  if [ -n "$pid" ] && redis_running; then
    if [ -n "$port" ] && command -v redis-cli >/dev/null 2>&1; then
      redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
    fi
    wait_gone "$pid" || true
    if pid_alive "$pid" redis; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" || true; }
    fi
  fi
  rm -f "$REDIS_PID"
  if pid_alive "$pid" redis; then say "Redis (pid $pid) would not stop"; return 1; fi
  return 0
}

redis_start() {
  if redis_running && [ -n "$(read_port "$REDIS_PORT_FILE")" ]; then return 0; fi
  redis_stop || true
  rm -rf "$REDIS_DIR"
  mkdir -p "$REDIS_DIR"
  free_port >"$REDIS_PORT_FILE"
  redis_start_existing
}

# ---------------------------------------------------------------------------------------------
# Commands

write_env() {
  local pg_port redis_port
  pg_port=$(read_port "$PG_PORT_FILE")
  redis_port=$(read_port "$REDIS_PORT_FILE")
  cat >"$ENV_FILE.new" <<ENV
KEYCARD_TEST_DATABASE_URL=postgres://keycard@127.0.0.1:$pg_port/postgres
KEYCARD_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/
KEYCARD_TEST_PG_DATA=$PG_DATA
KEYCARD_TEST_PG_PORT=$pg_port
KEYCARD_TEST_REDIS_PORT=$redis_port
KEYCARD_TEST_SERVICES_SH=$SELF
ENV
  mv -f "$ENV_FILE.new" "$ENV_FILE"
}

# Serializes concurrent runs against the same checkout. The servers are started with fd 9
# closed so that they do not hold the lock after we exit.
lock() {
  mkdir -p "$TMP"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TMP/services.lock"
    flock -w "$TIMEOUT" 9 || die "another services.sh holds $TMP/services.lock"
  fi
}

cmd_start() {
  lock
  mkdir -p "$RUN"
  chmod 755 "$RUN"
  local pg_was redis_was
  pg_running && pg_was=1 || pg_was=0
  redis_running && redis_was=1 || redis_was=0
  pg_start
  redis_start
  write_env
  local what="started"
  [ "$pg_was$redis_was" = 11 ] && what="already running"
  say "$what: PostgreSQL on 127.0.0.1:$(read_port "$PG_PORT_FILE"), Redis on 127.0.0.1:$(read_port "$REDIS_PORT_FILE"); wrote ${ENV_FILE#"$ROOT/"}"
}

cmd_stop() {
  lock
  local ok=1
  pg_stop || ok=0
  redis_stop || ok=0
  if [ "$ok" = 1 ]; then
    rm -rf "$RUN"
  else
    say "left $RUN in place because a service would not stop"
  fi
  rm -f "$ENV_FILE" "$ENV_FILE.new"
  say "stopped"
  return 0
}

cmd_status() {
  local port
  port=$(read_port "$PG_PORT_FILE")
  if pg_running; then
    echo "PostgreSQL: running on 127.0.0.1:$port (pid $(pg_pid), data $PG_DATA)"
  else
    echo "PostgreSQL: stopped"
  fi
  port=$(read_port "$REDIS_PORT_FILE")
  if redis_running; then
    echo "Redis: running on 127.0.0.1:$port (pid $(redis_pid))"
  else
    echo "Redis: stopped"
  fi
  if [ -f "$ENV_FILE" ]; then echo "env file: $ENV_FILE"; else echo "env file: none"; fi
}

usage() {
  echo "usage: scripts/services.sh start|stop|status|pg-stop|pg-start|redis-stop|redis-start" >&2
  exit 2
}

[ $# -eq 1 ] || usage
case "$1" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  pg-stop) lock; pg_stop ;;
  pg-start) lock; pg_start_existing ;;
  redis-stop) lock; redis_stop ;;
  redis-start) lock; redis_start_existing ;;
  -h|--help|help) usage ;;
  *) say "unknown command '$1'"; usage ;;
esac

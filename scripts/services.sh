#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis on loopback ports, for the tests.
#
#   scripts/services.sh start    start both (installing them from Debian's packages when missing),
#                                write .tmp/services.env
#   scripts/services.sh stop     stop both and delete their data
#   scripts/services.sh status   say what runs
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.tmp/services"
ENV_FILE="$ROOT/.tmp/services.env"
PG_DIR="$RUN/pg"
REDIS_DIR="$RUN/redis"

say() { echo "services.sh: $*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root to run: $*"; fi
}

apt_install() {
  say "installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  if command -v "$1" >/dev/null; then command -v "$1"; return; fi
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$found" ] && { echo "$found"; return; }
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a PostgreSQL server command as the postgres user when we are root (initdb refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if ! pg_bin initdb >/dev/null; then apt_install postgresql; fi
  local initdb pg_ctl
  initdb=$(pg_bin initdb) || die "initdb not found even after installing postgresql"
  pg_ctl=$(pg_bin pg_ctl)
  if [ -f "$PG_DIR/postmaster.pid" ] && as_pg "$pg_ctl" -D "$PG_DIR" status >/dev/null 2>&1; then
    PG_PORT=$(cat "$RUN/pg.port"); return
  fi
  rm -rf "$PG_DIR"; mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || as_root useradd --system --home-dir /var/lib/postgresql postgres
    chmod o+x "$ROOT" "$ROOT/.tmp" "$RUN"
    chown postgres "$PG_DIR"
  fi
  PG_PORT=$(free_port)
  echo "$PG_PORT" > "$RUN/pg.port"
  as_pg "$initdb" -D "$PG_DIR" -A trust -U keycard >"$RUN/pg-initdb.log" 2>&1 || { tail -20 "$RUN/pg-initdb.log" >&2; die "initdb failed"; }
  if ! as_pg "$pg_ctl" -D "$PG_DIR" -l "$PG_DIR/log" -w -t 30 \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null; then
    tail -20 "$PG_DIR/log" >&2 || true
    die "PostgreSQL did not start"
  fi
}

start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if [ -f "$RUN/redis.port" ] && redis-cli -p "$(cat "$RUN/redis.port")" ping >/dev/null 2>&1; then
    REDIS_PORT=$(cat "$RUN/redis.port"); return
  fi
  mkdir -p "$REDIS_DIR"
  REDIS_PORT=$(free_port)
  echo "$REDIS_PORT" > "$RUN/redis.port"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  tail -20 "$REDIS_DIR/redis.log" >&2 || true
  die "Redis did not start"
}

start() {
  mkdir -p "$RUN"
  start_postgres
  start_redis
  cat > "$ENV_FILE" <<ENV
KEYCARD_TEST_DATABASE_URL=postgres://keycard@127.0.0.1:$PG_PORT/postgres
KEYCARD_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
KEYCARD_TEST_PG_DATA=$PG_DIR
KEYCARD_TEST_PG_PORT=$PG_PORT
KEYCARD_TEST_REDIS_PORT=$REDIS_PORT
ENV
  say "PostgreSQL on 127.0.0.1:$PG_PORT, Redis on 127.0.0.1:$REDIS_PORT ($ENV_FILE)"
}

stop() {
  local pg_ctl
  if [ -f "$PG_DIR/postmaster.pid" ] && pg_ctl=$(pg_bin pg_ctl); then
    as_pg "$pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [ -f "$RUN/redis.port" ]; then
    redis-cli -p "$(cat "$RUN/redis.port")" shutdown nosave >/dev/null 2>&1 || true
  fi
  if [ -f "$REDIS_DIR/redis.pid" ]; then kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true; fi
  rm -rf "$RUN" "$ENV_FILE"
}

status() {
  if [ -f "$RUN/pg.port" ]; then echo "PostgreSQL: 127.0.0.1:$(cat "$RUN/pg.port")"; else echo "PostgreSQL: stopped"; fi
  if [ -f "$RUN/redis.port" ]; then echo "Redis: 127.0.0.1:$(cat "$RUN/redis.port")"; else echo "Redis: stopped"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/services.sh start|stop|status" >&2; exit 2 ;;
esac

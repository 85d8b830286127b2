#!/usr/bin/env bash
# Throwaway redis-server for tests.
#
#   redis.sh start | stop | status | env
#
# Everything lives in $DIR (default $TESTENV_DIR/redis): redis.pid, redis.log.
# Listens on 127.0.0.1:$PORT only (a random free port unless PORT is set),
# protected mode on, no persistence (--save "" --appendonly no: throwaway
# data), daemonized with a pidfile. Not systemd, not the Debian default
# instance (a redis-server on 6379 is left alone). Set REDIS_PASSWORD to
# require a password (it then appears in REDIS_URL).
set -euo pipefail
LOG_TAG=redis
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=${DIR:-$TESTENV_DIR/redis}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
REDIS_PASSWORD=${REDIS_PASSWORD:-}

running_pid() { pid_alive "$DIR/redis.pid" redis-server; }


do_stop() {
  local pid
  if pid=$(running_pid); then stop_pid "$pid" redis-server 5; else log "not running"; fi
  rm -f "$DIR/redis.pid"
}

do_start() {
  local t0; t0=$(now)
  if running_pid >/dev/null; then log "already running (stop first for a fresh instance)"; return 0; fi
  [[ -x $REDIS_SERVER ]] || die "$REDIS_SERVER not found: run deploy/testenv/install-deps.sh"
  rm -rf "$DIR"; mkdir -p "$DIR"
  PORT=${PORT:-$(free_port)}
  port_busy "$PORT" && die "port $PORT is in use: $(who_listens "$PORT")"
  local auth=()
  [[ -n $REDIS_PASSWORD ]] && auth=(--requirepass "$REDIS_PASSWORD")
  if ! "$REDIS_SERVER" --port "$PORT" --bind 127.0.0.1 --protected-mode yes \
      --save "" --appendonly no --dir "$DIR" \
      --daemonize yes --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
      "${auth[@]}" >"$DIR/redis.out" 2>&1; then
    log "redis-server failed to start"; tail_logs "$DIR/redis.out" "$DIR/redis.log"; return 1
  fi
  local up=0
  for _ in $(seq 1 100); do
    [[ $(REDISCLI_AUTH=$REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null) == PONG ]] && { up=1; break; }
    sleep 0.05
  done
  if [[ $up != 1 ]]; then
    log "redis-server did not answer PING on 127.0.0.1:$PORT"; tail_logs "$DIR/redis.out" "$DIR/redis.log"
    do_stop; return 1
  fi
  local url="redis://127.0.0.1:$PORT/0"
  [[ -n $REDIS_PASSWORD ]] && url="redis://:$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$REDIS_PASSWORD")@127.0.0.1:$PORT/0"
  local kv=("REDIS_ADDR=127.0.0.1:$PORT" "REDIS_URL=$url" "REDIS_PORT=$PORT")
  [[ -n $REDIS_PASSWORD ]] && kv+=("REDIS_PASSWORD=$REDIS_PASSWORD")
  kv+=("REDIS_PID=$(tr -d ' \n' <"$DIR/redis.pid")")
  write_env "$DIR/env" "${kv[@]}"
  log "ready on 127.0.0.1:$PORT in $(since "$t0")s, pid $(tr -d ' \n' <"$DIR/redis.pid")"
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) if pid=$(running_pid); then log "running, pid $pid"; cat "$DIR/env"; else log "not running"; exit 1; fi ;;
  env) [[ -f $DIR/env ]] || die "no env file: not started"; cat "$DIR/env" ;;
  *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac

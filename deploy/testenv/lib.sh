# shellcheck shell=bash
# Shared helpers for the deploy/testenv scripts (sourced, not executed).
#
# Every server lives in its own directory under $TESTENV_DIR
# (default /tmp/warden-testenv), listens on 127.0.0.1 only, runs as a plain
# background process (never systemd, never the Debian default instance) and
# writes an env file of KEY=VALUE lines there. Progress goes to stderr.

TESTENV_DIR=${TESTENV_DIR:-/tmp/warden-testenv}
TESTENV_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$TESTENV_SRC/../.." && pwd)

# samba's Python tools need Debian's /usr/bin/python3, not a pyenv one
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { echo "[${LOG_TAG:-testenv}] $*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.2f\", $(now) - $1}"; }

# port_busy PORT: true when something accepts TCP connections on 127.0.0.1:PORT
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# who_listens PORT: the ss line(s) of whoever listens on PORT, for error messages
who_listens() { ss -ltnpH "sport = :$1" 2>/dev/null || true; }

# free_port: a random port in 20000-59999 that nothing listens on (127.0.0.1)
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! port_busy "$p"; then echo "$p"; return 0; fi
  done
  return 1
}

# pid_alive PIDFILE COMM-PREFIX: prints the pid when PIDFILE names a live process
# whose command name starts with COMM-PREFIX (so a recycled pid is not signalled)
pid_alive() {
  [[ -f $1 ]] || return 1
  local pid; pid=$(tr -d ' \n' <"$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]] || return 1
  echo "$pid"
}

# stop_pid PID NAME [WAIT-SECONDS]: SIGTERM, wait, then SIGKILL (process group
# first when PID leads one: the scripts start servers with setsid)
stop_pid() {
  local pid=$1 name=$2 wait=${3:-10}
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((wait * 20))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name pid $pid still alive after ${wait}s, SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  log "stopped $name (pid $pid)"
}

# write_env FILE KEY=VALUE...: KEY=VALUE lines; values that are not shell-safe
# as they are get single quotes, so the file can be sourced by sh/bash
write_env() {
  local f=$1; shift
  local kv k v
  : >"$f.tmp"
  for kv in "$@"; do
    k=${kv%%=*}; v=${kv#*=}
    if [[ $v =~ ^[A-Za-z0-9_.,:/@%+=!-]*$ ]]; then
      printf '%s=%s\n' "$k" "$v" >>"$f.tmp"
    else
      printf "%s='%s'\n" "$k" "${v//\'/\'\\\'\'}" >>"$f.tmp"
    fi
  done
  mv "$f.tmp" "$f"
}

# tail_logs FILE...: the last lines of each existing log, to stderr
tail_logs() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    echo "----- tail $f -----" >&2
    tail -n 25 "$f" >&2
  done
}

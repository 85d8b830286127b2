#!/usr/bin/env bash
# Starts the real test servers on loopback: OpenLDAP, redis-server and a Samba
# AD DC (installing missing Debian packages first, unless SKIP_INSTALL=1).
# Writes every address and credential to $TESTENV_DIR/env (KEY=VALUE lines,
# default /tmp/warden-testenv/env) and prints them as `export KEY=VALUE` lines
# on stdout, so that
#
#   eval "$(deploy/testenv/up.sh)" && go test ./...
#
# works. Progress goes to stderr. deploy/testenv/down.sh stops everything.
# Knobs: TESTENV_DIR, SKIP_INSTALL=1, SERVICES (default "openldap redis samba";
# e.g. SERVICES="openldap redis" when 127.0.0.1:389 is taken), and the knobs
# of each server script.
set -euo pipefail
LOG_TAG=testenv
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=${SERVICES:-openldap redis samba}
t0=$(now)
if [[ ${SKIP_INSTALL:-0} != 1 ]]; then
  "$TESTENV_SRC/install-deps.sh"
fi
mkdir -p "$TESTENV_DIR"
rm -f "$TESTENV_DIR/env"

started=()
fail() {
  log "error: $1 failed to start; stopping what was started"
  local s
  for s in "${started[@]}"; do "$TESTENV_SRC/$s.sh" stop >&2 || true; done
  exit 1
}
for svc in $SERVICES; do
  case $svc in
    openldap) script=openldap ;;
    redis) script=redis ;;
    samba|samba-ad) script=samba-ad ;;
    *) die "unknown service '$svc' in SERVICES (openldap, redis, samba)" ;;
  esac
  "$TESTENV_SRC/$script.sh" start >&2 || fail "$svc"
  started+=("$script")
done

{
  echo "# written by deploy/testenv/up.sh at $(date -u +%FT%TZ); source with: set -a; . FILE; set +a"
  echo "TESTENV_DIR=$TESTENV_DIR"
  for s in "${started[@]}"; do "$TESTENV_SRC/$s.sh" env; done
} >"$TESTENV_DIR/env.tmp"
mv "$TESTENV_DIR/env.tmp" "$TESTENV_DIR/env"

# export lines for eval: re-read the file through bash so quoting is exact
(
  set -a; . "$TESTENV_DIR/env"; set +a
  grep -E '^[A-Z_][A-Z0-9_]*=' "$TESTENV_DIR/env" | cut -d= -f1 | while read -r k; do
    v=${!k}
    if [[ $v =~ ^[A-Za-z0-9_.,:/@%+=-]*$ ]]; then
      printf 'export %s=%s\n' "$k" "$v"
    else   # single quotes: also safe to paste into an interactive shell (!)
      printf "export %s='%s'\n" "$k" "${v//\'/\'\\\'\'}"
    fi
  done
)
log "all up in $(since "$t0")s: $SERVICES; env in $TESTENV_DIR/env"

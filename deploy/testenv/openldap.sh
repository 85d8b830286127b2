#!/usr/bin/env bash
# Throwaway OpenLDAP (slapd 2.5, Debian bookworm) with Warden's seed data.
#
#   openldap.sh start    build a fresh instance, load deploy/ldap/seed.ldif, start
#   openldap.sh stop     stop it (SIGTERM to the pid in $DIR/slapd.pid)
#   openldap.sh status   exit 0 and print the env file if running, else exit 1
#   openldap.sh env      print the env file (KEY=VALUE lines)
#   openldap.sh run      like start, then stay in the foreground until slapd
#                        exits or SIGTERM (the docker-compose image uses this)
#
# Everything lives in $DIR (default $TESTENV_DIR/openldap): cn=config in
# slapd.d/, mdb in data/, a self-signed cert in tls/, slapd.log. Not systemd,
# not the Debian default instance (a slapd already running elsewhere is left
# alone: we pick our own free ports). Listens on $LISTEN_HOST (127.0.0.1):
# ldap://:$PORT (StartTLS), ldaps://:$TLS_PORT, and ldapi:// in $DIR.
#
# Overlays: memberof (stored memberOf, direct groups only; MEMBEROF=dynlist
# computes memberOf at search time, nested included) and ppolicy (default
# policy without lockout; per-user policies for the locked and pwexpired users).
#
# Knobs: TESTENV_DIR, DIR, PORT, TLS_PORT (random free ports if unset),
#   LISTEN_HOST, ADMIN_PW, USER_PW, BIND_PW (svc-idp, default USER_PW),
#   ADMIN_PW_FILE, BIND_PW_FILE (the same, read from a file),
#   MEMBEROF (overlay|dynlist), SLAPD_DEBUG (slapd -d level, default none:
#   only what slapd always reports), SEED.
set -euo pipefail
LOG_TAG=openldap
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=${DIR:-$TESTENV_DIR/openldap}
SUFFIX=dc=example,dc=org            # fixed: the seed is written for it
ADMIN_DN="cn=admin,$SUFFIX"
# *_FILE: read the secret from a file (docker-compose secrets)
[[ -n ${ADMIN_PW_FILE:-} ]] && ADMIN_PW=$(<"$ADMIN_PW_FILE")
[[ -n ${BIND_PW_FILE:-} ]] && BIND_PW=$(<"$BIND_PW_FILE")
ADMIN_PW=${ADMIN_PW:-admin-secret}
USER_PW=${USER_PW:-Passw0rd!}
BIND_PW=${BIND_PW:-$USER_PW}
LISTEN_HOST=${LISTEN_HOST:-127.0.0.1}
# slapd -d: "none" still logs what slapd always reports (a failed bind of
# its listener, a bad configuration), so that a start that fails says why
DEBUG=${SLAPD_DEBUG:-none}
MEMBEROF=${MEMBEROF:-overlay}
SEED=${SEED:-$REPO_ROOT/deploy/ldap/seed.ldif}
SLAPD=${SLAPD:-/usr/sbin/slapd}
MODDIR=${MODDIR:-/usr/lib/ldap}
SCHEMA=${SCHEMA:-/etc/ldap/schema}

running_pid() { pid_alive "$DIR/slapd.pid" slapd; }

do_stop() {
  local pid
  if pid=$(running_pid); then stop_pid "$pid" slapd 5; else log "not running"; fi
  rm -f "$DIR/slapd.pid"
}

write_config() {
  local admin_hash=$1 memberof_module memberof_overlay
  if [[ $MEMBEROF == dynlist ]]; then
    memberof_module=dynlist
    memberof_overlay="dn: olcOverlay={0}dynlist,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcDynListConfig
olcOverlay: {0}dynlist
olcDynListAttrSet: groupOfURLs memberURL member+memberOf@groupOfNames*"
  elif [[ $MEMBEROF == overlay ]]; then
    memberof_module=memberof
    memberof_overlay="dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf"
  else
    die "MEMBEROF must be overlay or dynlist, not '$MEMBEROF'"
  fi
  cat >"$DIR/config.ldif" <<LDIF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $DIR/slapd.pid
olcArgsFile: $DIR/slapd.args
olcTLSCertificateFile: $DIR/tls/server.crt
olcTLSCertificateKeyFile: $DIR/tls/server.key
olcLogLevel: none

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $MODDIR
olcModuleLoad: back_mdb
olcModuleLoad: $memberof_module
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$SCHEMA/core.ldif
include: file://$SCHEMA/cosine.ldif
include: file://$SCHEMA/nis.ldif
include: file://$SCHEMA/inetorgperson.ldif
include: file://$SCHEMA/dyngroup.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 1000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=admin,cn=config
olcRootPW: $admin_hash
olcAccess: {0}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * break

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: $DIR/data
olcSuffix: $SUFFIX
olcRootDN: $ADMIN_DN
olcRootPW: $admin_hash
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid,cn,mail eq
olcDbIndex: entryUUID eq
olcDbIndex: member,memberOf eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by users read by * none

$memberof_overlay

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: cn=default,ou=policies,$SUFFIX
olcPPolicyHashCleartext: TRUE
olcPPolicyUseLockout: TRUE
LDIF
}

# do_start starts slapd, retrying four times with fresh random ports when the
# caller did not fix them: a random port can be taken between the check and
# slapd's bind (seen once in CI-like runs: slapd exits at once, log empty).
do_start() {
  local want_port=${PORT:-} want_tls=${TLS_PORT:-} attempt
  for attempt in 1 2 3 4 5; do
    PORT=$want_port TLS_PORT=$want_tls
    if start_once; then return 0; fi
    [[ -z $want_port && -z $want_tls && $attempt -lt 5 ]] || return 1
    log "retrying with other ports (attempt $((attempt + 1)) of 5)"
    sleep "0.$((attempt * 2))"
  done
}

start_once() {
  local t0; t0=$(now)
  if running_pid >/dev/null; then log "already running (stop first for a fresh instance)"; return 0; fi
  command -v "$SLAPD" >/dev/null || die "$SLAPD not found: run deploy/testenv/install-deps.sh"
  [[ -f $SEED ]] || die "seed $SEED not found"
  rm -rf "$DIR"
  mkdir -p "$DIR"/{slapd.d,data,tls}
  PORT=${PORT:-$(free_port)}; TLS_PORT=${TLS_PORT:-$(free_port)}
  while [[ $PORT == "$TLS_PORT" ]]; do TLS_PORT=$(free_port); done
  if [[ $LISTEN_HOST == 127.0.0.1 ]]; then
    port_busy "$PORT" && die "port $PORT is in use: $(who_listens "$PORT")"
    port_busy "$TLS_PORT" && die "port $TLS_PORT is in use: $(who_listens "$TLS_PORT")"
  fi

  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 3650 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,DNS:openldap,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$DIR/tls/server.key" -out "$DIR/tls/server.crt" 2>/dev/null
  chmod 600 "$DIR/tls/server.key"

  write_config "$(slappasswd -s "$ADMIN_PW")"
  slapadd -n0 -F "$DIR/slapd.d" -l "$DIR/config.ldif" >"$DIR/slapadd.log" 2>&1 \
    || { log "slapadd of cn=config failed"; tail_logs "$DIR/slapadd.log"; return 1; }

  local ldapi="ldapi://${DIR//\//%2F}%2Fldapi"
  local urls="ldap://$LISTEN_HOST:$PORT/ ldaps://$LISTEN_HOST:$TLS_PORT/ $ldapi"
  setsid "$SLAPD" -d "$DEBUG" -F "$DIR/slapd.d" -h "$urls" >"$DIR/slapd.log" 2>&1 </dev/null &
  local spid=$! url="ldap://127.0.0.1:$PORT" up=0
  for _ in $(seq 1 200); do
    if ldapsearch -x -H "$url" -b "" -s base namingContexts >/dev/null 2>&1; then up=1; break; fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ $up != 1 ]]; then
    local rc=running
    if ! kill -0 "$spid" 2>/dev/null; then rc=0; wait "$spid" 2>/dev/null || rc=$?; fi
    log "slapd did not start (pid $spid, exit status $rc, ports $PORT and $TLS_PORT)"; tail_logs "$DIR/slapd.log"
    kill -TERM "$spid" 2>/dev/null || true
    return 1
  fi
  [[ -f $DIR/slapd.pid ]] || echo "$spid" >"$DIR/slapd.pid"

  # seed: hashes substituted, loaded online so memberof/ppolicy see it; the
  # relax control lets the rootdn set ppolicy's operational attributes
  local user_hash bind_hash
  user_hash=$(slappasswd -s "$USER_PW"); bind_hash=$(slappasswd -s "$BIND_PW")
  sed -e "s|@USER_PW_HASH@|$user_hash|" -e "s|@BIND_PW_HASH@|$bind_hash|" "$SEED" >"$DIR/seed.ldif"
  if ! ldapmodify -a -e relax -x -H "$url" -D "$ADMIN_DN" -w "$ADMIN_PW" -f "$DIR/seed.ldif" >"$DIR/seed.log" 2>&1; then
    log "loading the seed failed"; tail_logs "$DIR/seed.log" "$DIR/slapd.log"
    do_stop; return 1
  fi

  write_env "$DIR/env" \
    "LDAP_URL=ldap://127.0.0.1:$PORT" \
    "LDAPS_URL=ldaps://127.0.0.1:$TLS_PORT" \
    "LDAPI_URL=$ldapi" \
    "LDAP_BASE_DN=$SUFFIX" \
    "LDAP_USERS_DN=ou=people,$SUFFIX" \
    "LDAP_GROUPS_DN=ou=groups,$SUFFIX" \
    "LDAP_BIND_DN=cn=svc-idp,ou=people,$SUFFIX" \
    "LDAP_BIND_PW=$BIND_PW" \
    "LDAP_USER_PW=$USER_PW" \
    "LDAP_CA_CERT=$DIR/tls/server.crt" \
    "LDAP_ADMIN_DN=$ADMIN_DN" \
    "LDAP_ADMIN_PW=$ADMIN_PW" \
    "LDAP_MEMBEROF=$MEMBEROF" \
    "LDAP_PID=$(cat "$DIR/slapd.pid")"
  log "ready on $LISTEN_HOST:$PORT (ldaps :$TLS_PORT) in $(since "$t0")s, pid $(cat "$DIR/slapd.pid")"
}

do_run() { # foreground for containers: start, then wait for slapd; TERM stops it
  do_start
  local pid; pid=$(running_pid)
  trap 'do_stop; exit 0' TERM INT
  while kill -0 "$pid" 2>/dev/null; do sleep 1 & wait $!; done
  log "slapd exited"; tail_logs "$DIR/slapd.log"; exit 1
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  run) do_run ;;
  status) if pid=$(running_pid); then log "running, pid $pid"; cat "$DIR/env"; else log "not running"; exit 1; fi ;;
  env) [[ -f $DIR/env ]] || die "no env file: not started"; cat "$DIR/env" ;;
  *) echo "usage: $0 start|stop|restart|status|env|run" >&2; exit 2 ;;
esac

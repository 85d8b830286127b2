#!/usr/bin/env bash
# Throwaway Samba 4 Active Directory DC (Debian bookworm, samba 4.17) with
# Warden's seed data.
#
#   samba-ad.sh start    fresh instance from the cached template (provisioned
#                        and populated on first use, ~15 s; later starts ~1 s)
#   samba-ad.sh stop     SIGTERM the samba master (pid in $INST/run/samba.pid)
#   samba-ad.sh status   exit 0 and print the env file if running, else exit 1
#   samba-ad.sh env      print the env file (KEY=VALUE lines)
#   FRESH=1 samba-ad.sh start   rebuild the template
#
# Everything lives in $DIR (default $TESTENV_DIR/samba): the instance in
# $INST ($DIR/dc: smb.conf, private/, state/, run/, log/, tls/), the template
# in $DIR/template-<hash of the seed code and passwords>.tar (a changed
# seed rebuilds it).
# Not systemd, not the Debian samba-ad-dc service.
#
# Samba's ports are NOT configurable: it listens on 127.0.0.1:389 (LDAP,
# StartTLS), :636 (LDAPS), :3268/:3269 (GC), :88/:464 (KDC). So one instance
# per network namespace; a second one runs in a namespace of its own (its
# clients too):
#   ip netns add adtest && ip netns exec adtest ip link set lo up
#   ip netns exec adtest env TESTENV_DIR=/tmp/adtest deploy/testenv/samba-ad.sh start
#
# Seed (the same people and groups as deploy/ldap/seed.ldif): svc-idp, alice,
# bob, carol, dave, erin, frank, jürgen, pat (CN "Pat O'Connor, Jr. (ext*)");
# groups admins, developers, engineering, staff, company (3 levels of nesting
# above developers), loop-a <-> loop-b (a cycle, frank in loop-a); account
# states for bind errors: locked (data 775), pwexpired (532), mustchange
# (773), disabled (533), acctexpired (701). No domain-wide lockout: the
# domain threshold is 0 and a PSO with threshold 3 applies to "locked" only,
# which is locked at every start by 3 bad binds.
#
# Knobs: TESTENV_DIR, DIR, INST, REALM, DOMAIN, ADMIN_PW, USER_PW,
#   STRONG_AUTH ("ldap server require strong auth", default yes: simple binds
#   only over TLS), OLD_PASSWORD_PERIOD ("old password allowed period" in
#   minutes, default 0: Samba's own default, 60, lets the old password of a
#   changed one bind for another hour), LOG_LEVEL (1), START_TIMEOUT (30 s),
#   FRESH=1.
set -euo pipefail
LOG_TAG=samba-ad
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ADDR=127.0.0.1
DIR=${DIR:-$TESTENV_DIR/samba}
INST=${INST:-$DIR/dc}
REALM=${REALM:-EXAMPLE.TEST}
DOMAIN=${DOMAIN:-EXAMPLE}
HOSTNAME_DC=dc1
ADMIN_PW=${ADMIN_PW:-Adm1n-Str0ng!Pass}
USER_PW=${USER_PW:-Passw0rd!}
STRONG_AUTH=${STRONG_AUTH:-yes}
SERVICES="ldap cldap kdc"
LOCKED_THRESHOLD=3
LOG_LEVEL=${LOG_LEVEL:-1}
OLD_PASSWORD_PERIOD=${OLD_PASSWORD_PERIOD:-0}
START_TIMEOUT=${START_TIMEOUT:-30}
realm_lc=${REALM,,}
BASE_DN=$(echo "$realm_lc" | sed 's/^/DC=/; s/\./,DC=/g')
CONF=$INST/etc/smb.conf

running_pid() { pid_alive "$INST/run/samba.pid" samba; }

do_stop() {
  local pid
  if pid=$(running_pid); then stop_pid "$pid" samba 10; else log "not running"; fi
}

write_conf() { # our own smb.conf (provision's is replaced; the DB files carry no paths)
  mkdir -p "$INST"/{etc,run,log,cache,state,bind-dns}
  cat >"$CONF" <<CONF
[global]
	netbios name = ${HOSTNAME_DC^^}
	realm = $REALM
	workgroup = $DOMAIN
	server role = active directory domain controller
	interfaces = $ADDR
	bind interfaces only = yes
	disable netbios = yes
	server services = $SERVICES
	dns proxy = no
	private dir = $INST/private
	lock directory = $INST
	state directory = $INST/state
	cache directory = $INST/cache
	binddns dir = $INST/bind-dns
	pid directory = $INST/run
	ncalrpc dir = $INST/run/ncalrpc
	winbindd socket directory = $INST/run/winbindd
	ntp signd socket directory = $INST/run/ntp_signd
	log file = $INST/log/samba.log
	logging = file
	log level = $LOG_LEVEL
	panic action =
	idmap_ldb:use rfc2307 = yes
	ldap server require strong auth = $STRONG_AUTH
	tls enabled = yes
	tls keyfile = $INST/tls/key.pem
	tls certfile = $INST/tls/cert.pem
	tls cafile = $INST/tls/cert.pem
	ldb:nosync = true
	# a changed password stops working at once (default: 60 more minutes
	# for NTLM, and Samba's LDAP simple binds count as NTLM), so that tests
	# of password changes can check the old one fails
	old password allowed period = $OLD_PASSWORD_PERIOD
CONF
}

make_cert() {
  mkdir -p "$INST/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$HOSTNAME_DC.$realm_lc" \
    -addext "subjectAltName=DNS:$HOSTNAME_DC.$realm_lc,DNS:$realm_lc,DNS:localhost,IP:$ADDR" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -keyout "$INST/tls/key.pem" -out "$INST/tls/cert.pem" 2>/dev/null
  chmod 600 "$INST/tls/key.pem"   # samba refuses keys that are not 0600
}

provision_and_populate() {
  local t0; t0=$(now)
  rm -rf "$INST"; mkdir -p "$INST"
  : >"$DIR/populate.log"
  samba-tool domain provision --targetdir="$INST" --realm="$REALM" --domain="$DOMAIN" \
    --server-role=dc --dns-backend=NONE --use-rfc2307 --adminpass="$ADMIN_PW" \
    --host-name="$HOSTNAME_DC" --host-ip="$ADDR" \
    --option="interfaces=$ADDR" --option="bind interfaces only=yes" >"$DIR/provision.log" 2>&1 \
    || { log "provision failed"; tail_logs "$DIR/provision.log"; return 1; }
  log "provisioned in $(since "$t0")s"
  write_conf
  local t1; t1=$(now)
  local H=(-H "$INST/private/sam.ldb" -s "$CONF")
  st() {
    echo "+ samba-tool $*" >>"$DIR/populate.log"
    samba-tool "$@" "${H[@]}" >>"$DIR/populate.log" 2>&1 \
      || { log "samba-tool $1 $2 $3 failed"; tail_logs "$DIR/populate.log"; return 1; }
  }
  # no domain-wide lockout: tests must not be able to lock alice or bob
  st domain passwordsettings set --max-pwd-age=0 --min-pwd-age=0 --account-lockout-threshold=0
  local n=1 u uid gn sn home
  for u in svc-idp:Service:Account alice:Alice:Anderson bob:Bob:Brown carol:Carol:Clark \
           dave:Dave:Davis erin:Erin:Evans frank:Frank:Fischer "jürgen:Jürgen:Müller" \
           pat:Pat:O\'Connor \
           locked:Locked:User pwexpired:Expired:Password mustchange:Must:Change \
           disabled:Disabled:User acctexpired:Expired:Account; do
    IFS=: read -r uid gn sn <<<"$u"
    home=$uid; [[ $uid == jürgen ]] && home=juergen
    # CN = "Given Surname" like real AD (pat: "Pat O'Connor, Jr. (ext*)"); svc-idp: CN=svc-idp
    local cnopt=(); [[ $uid == svc-idp || $uid == pat ]] && cnopt=(--use-username-as-cn)
    st user create "$uid" "$USER_PW" "${cnopt[@]}" --given-name="$gn" --surname="$sn" \
       --mail-address="$home@$realm_lc" --nis-domain="${DOMAIN,,}" --uid-number=$((10000 + n)) \
       --gid-number=10000 --unix-home="/home/$home" --login-shell=/bin/bash
    n=$((n + 1))
  done
  # pat's CN carries DN and filter metacharacters; samba-tool does not escape
  # DNs, so create it as CN=pat and rename with ldbrename
  ldbrename -H "$INST/private/sam.ldb" "CN=pat,CN=Users,$BASE_DN" \
    "CN=Pat O'Connor\\, Jr. (ext*),CN=Users,$BASE_DN" >>"$DIR/populate.log" 2>&1 \
    || { log "ldbrename of pat failed"; tail_logs "$DIR/populate.log"; return 1; }
  cat >"$DIR/pat.ldif" <<LDIF
dn: CN=Pat O'Connor\\, Jr. (ext*),CN=Users,$BASE_DN
changetype: modify
replace: sn
sn: O'Connor, Jr. (ext*)
-
replace: displayName
displayName: Pat O'Connor, Jr. (ext*)
LDIF
  ldbmodify -H "$INST/private/sam.ldb" "$DIR/pat.ldif" >>"$DIR/populate.log" 2>&1 \
    || { log "ldbmodify of pat failed"; tail_logs "$DIR/populate.log"; return 1; }
  local g gid=20001
  for g in admins developers engineering staff company loop-a loop-b; do
    st group add "$g" --nis-domain="${DOMAIN,,}" --gid-number=$gid; gid=$((gid + 1))
  done
  st group addmembers admins alice
  st group addmembers developers "bob,carol,pat,jürgen"
  st group addmembers engineering developers,admins,dave
  st group addmembers staff engineering,erin
  st group addmembers company staff
  st group addmembers loop-a loop-b,frank
  if ! samba-tool group addmembers loop-b loop-a "${H[@]}" >>"$DIR/populate.log" 2>&1; then
    log "samba refused the loop-b -> loop-a cycle (continuing without it)"
  fi
  # account states
  st user setpassword mustchange --newpassword="$USER_PW" --must-change-at-next-login   # data 773
  st user disable disabled                                                               # data 533
  st user setexpiry acctexpired --days=0                                                 # data 701
  # data 775: a PSO that locks after 3 failures for a long time, on "locked" only
  st domain passwordsettings pso create lockout-3 10 --account-lockout-threshold=$LOCKED_THRESHOLD \
     --account-lockout-duration=99999 --reset-account-lockout-after=99999
  st domain passwordsettings pso apply lockout-3 locked
  # data 532: a PSO with maxPwdAge just over 1 day (Samba ignores <= 1 day),
  # password set "3 days ago" with faketime
  if command -v faketime >/dev/null; then
    st domain passwordsettings pso create expire-fast 20 --max-pwd-age=1 --min-pwd-age=0
    cat >"$DIR/pso.ldif" <<LDIF
dn: CN=expire-fast,CN=Password Settings Container,CN=System,$BASE_DN
changetype: modify
replace: msDS-MaximumPasswordAge
msDS-MaximumPasswordAge: -864000000001
LDIF
    ldbmodify -H "$INST/private/sam.ldb" "$DIR/pso.ldif" >>"$DIR/populate.log" 2>&1
    st domain passwordsettings pso apply expire-fast pwexpired
    faketime -f '-3d' samba-tool user setpassword pwexpired --newpassword="$USER_PW" "${H[@]}" >>"$DIR/populate.log" 2>&1
  else
    log "faketime not installed: pwexpired will NOT be expired"
  fi
  log "populated in $(since "$t1")s"
  rm -f "$DIR"/template-*.tar
  tar -C "$INST" -cf "$TEMPLATE.tmp" --exclude=./run --exclude=./log --exclude=./tls --exclude=./etc .
  mv "$TEMPLATE.tmp" "$TEMPLATE"
}

check_ports() {
  local p busy=()
  for p in 389 636 3268 3269 88 464; do port_busy "$p" && busy+=("$p"); done
  [[ ${#busy[@]} == 0 ]] && return 0
  log "error: Samba AD needs 127.0.0.1 ports 389, 636, 3268, 3269, 88, 464 (not configurable), but these are in use: ${busy[*]}"
  log "  :${busy[0]} $(who_listens "${busy[0]}" | head -1)"
  log "stop that server (another samba-ad.sh? deploy/testenv/down.sh), or run in a network namespace:"
  log "  ip netns add adtest; ip netns exec adtest ip link set lo up; ip netns exec adtest $0 start"
  return 1
}

do_start() {
  local t0; t0=$(now)
  if running_pid >/dev/null; then log "already running (stop first for a fresh instance)"; return 0; fi
  command -v samba >/dev/null || die "samba not found: run deploy/testenv/install-deps.sh"
  check_ports
  mkdir -p "$DIR"
  # the template is keyed by what goes into it: a changed seed or password rebuilds it
  local key; key=$( { declare -f provision_and_populate write_conf; echo "$REALM $DOMAIN $USER_PW $ADMIN_PW"; } | sha256sum | cut -c1-12)
  TEMPLATE=${TEMPLATE:-$DIR/template-$key.tar}
  if [[ ${FRESH:-0} == 1 || ! -f $TEMPLATE ]]; then
    log "no template $TEMPLATE yet: provisioning (once, ~10-15 s)"
    provision_and_populate
  fi
  rm -rf "$INST"; mkdir -p "$INST"
  tar -C "$INST" -xf "$TEMPLATE"
  write_conf
  make_cert
  local t1; t1=$(now)
  setsid samba --foreground --no-process-group -s "$CONF" >"$INST/log/samba.out" 2>&1 </dev/null &
  local spid=$! ok=0
  local deadline=$((SECONDS + START_TIMEOUT))   # integer seconds (awk's print would round to %.6g)
  while ((SECONDS < deadline)); do
    if grep -q 'no network interfaces found' "$INST/log/samba.log" 2>/dev/null; then
      log "samba found no interface with address $ADDR (is lo up? ip link set lo up)"; break
    fi
    if ldapsearch -x -H "ldap://$ADDR" -b "" -s base dnsHostName >/dev/null 2>&1 \
       && LDAPTLS_REQCERT=never ldapsearch -x -H "ldaps://$ADDR" -b "" -s base dnsHostName >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $ok != 1 ]]; then
    log "samba did not come up within ${START_TIMEOUT}s (pid $spid); logs in $INST/log/"
    tail_logs "$INST/log/samba.out" "$INST/log/samba.log"
    kill -TERM -- "-$spid" 2>/dev/null || kill -TERM "$spid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$spid" 2>/dev/null || true
    return 1
  fi
  [[ -f $INST/run/samba.pid ]] || echo "$spid" >"$INST/run/samba.pid"
  local tstart; tstart=$(since "$t1")
  # lock "locked": its PSO locks after LOCKED_THRESHOLD bad binds (LDAPS: strong auth may be on)
  for _ in $(seq 1 "$LOCKED_THRESHOLD"); do
    LDAPTLS_CACERT=$INST/tls/cert.pem ldapwhoami -x -H "ldaps://$ADDR" -D "locked@$REALM" -w wrong-password >/dev/null 2>&1 || true
  done
  write_env "$INST/env" \
    "AD_URL=ldap://$ADDR:389" \
    "AD_LDAPS_URL=ldaps://$ADDR:636" \
    "AD_GC_URL=ldap://$ADDR:3268" \
    "AD_BASE_DN=$BASE_DN" \
    "AD_USERS_DN=CN=Users,$BASE_DN" \
    "AD_REALM=$REALM" \
    "AD_DOMAIN=$DOMAIN" \
    "AD_BIND_UPN=svc-idp@$REALM" \
    "AD_BIND_DN=CN=svc-idp,CN=Users,$BASE_DN" \
    "AD_BIND_PW=$USER_PW" \
    "AD_USER_PW=$USER_PW" \
    "AD_CA_CERT=$INST/tls/cert.pem" \
    "AD_ADMIN_UPN=Administrator@$REALM" \
    "AD_ADMIN_PW=$ADMIN_PW" \
    "AD_KRB5_CONF=$INST/private/krb5.conf" \
    "AD_STRONG_AUTH=$STRONG_AUTH" \
    "AD_OLD_PASSWORD_PERIOD=$OLD_PASSWORD_PERIOD" \
    "AD_PID=$(tr -d ' \n' <"$INST/run/samba.pid")"
  log "ready on $ADDR:389/636 in ${tstart}s, total $(since "$t0")s, pid $(tr -d ' \n' <"$INST/run/samba.pid")"
}

case ${1:-} in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) if pid=$(running_pid); then log "running, pid $pid"; cat "$INST/env"; else log "not running"; exit 1; fi ;;
  env) [[ -f $INST/env ]] || die "no env file: not started"; cat "$INST/env" ;;
  *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac

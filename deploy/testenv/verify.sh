#!/usr/bin/env bash
# End-to-end check of the test environment: the seed data and behaviour that
# Warden's tests rely on, checked with the OpenLDAP command-line clients and
# redis-cli (independent of Warden's code). Uses the running servers when
# $TESTENV_DIR/env exists, otherwise starts them with up.sh and stops them at
# the end. Prints PASS/FAIL lines and a summary; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")"
. ./lib.sh
pass=0; fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
ko() { echo "FAIL $*"; fail=$((fail + 1)); }
chk() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else ko "$name"; fi; }
is() { local name=$1 got=$2 want=$3; if [[ $got == "$want" ]]; then ok "$name"; else ko "$name: got '$got', want '$want'"; fi; }

started=0
if [[ ! -f $TESTENV_DIR/env ]]; then
  SKIP_INSTALL=${SKIP_INSTALL:-1} ./up.sh >/dev/null || { echo "FAIL up.sh"; exit 1; }
  started=1
fi
set -a; . "$TESTENV_DIR/env"; set +a
t0=$(now)

# only 127.0.0.1 (ss -H: no header; column 4 is the local address)
loopback_only() { # PORT...
  local p addrs
  for p in "$@"; do
    addrs=$(ss -ltnH "sport = :$p" | awk '{print $4}' | sort -u)
    [[ -n $addrs && $(grep -vc '^127\.0\.0\.1:' <<<"$addrs") == 0 ]] || return 1
  done
}

# ---------------------------------------------------------------- OpenLDAP
P="ou=people,$LDAP_BASE_DN"; G="ou=groups,$LDAP_BASE_DN"
A="uid=alice,$P"
LS=(ldapsearch -LLL -o ldif-wrap=no -x -H "$LDAP_URL" -D "$LDAP_BIND_DN" -w "$LDAP_BIND_PW" -b "$LDAP_BASE_DN")
chk "openldap: listens on 127.0.0.1 only"  loopback_only "${LDAP_URL##*:}" "${LDAPS_URL##*:}"
chk "openldap: user bind"                   ldapwhoami -x -H "$LDAP_URL" -D "$A" -w "$LDAP_USER_PW"
ldapwhoami -x -H "$LDAP_URL" -D "$A" -w wrong >/dev/null 2>&1; is "openldap: wrong password -> 49" $? 49
ldapwhoami -x -H "$LDAP_URL" -D "uid=nobody,$P" -w "$LDAP_USER_PW" >/dev/null 2>&1; is "openldap: unknown user -> 49" $? 49
chk "openldap: LDAPS bind with the CA"      env LDAPTLS_CACERT="$LDAP_CA_CERT" ldapwhoami -x -H "$LDAPS_URL" -D "$A" -w "$LDAP_USER_PW"
chk "openldap: StartTLS bind with the CA"   env LDAPTLS_CACERT="$LDAP_CA_CERT" ldapwhoami -ZZ -x -H "$LDAP_URL" -D "$A" -w "$LDAP_USER_PW"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=wrong-ca \
  -keyout /dev/null -out "$TESTENV_DIR/wrong-ca.pem" 2>/dev/null
! env LDAPTLS_CACERT="$TESTENV_DIR/wrong-ca.pem" LDAPTLS_REQCERT=demand ldapwhoami -x -H "$LDAPS_URL" -D "$A" -w "$LDAP_USER_PW" >/dev/null 2>&1 \
  && ok "openldap: LDAPS with a wrong CA fails" || ko "openldap: LDAPS with a wrong CA fails"
chk "openldap: svc-idp bind + search"       "${LS[@]}" -s base
is "openldap: anonymous sees nothing"       "$(ldapsearch -LLL -x -H "$LDAP_URL" -b "$LDAP_BASE_DN" '(uid=alice)' dn 2>/dev/null | grep -c '^dn:')" 0
n=$("${LS[@]}" -b "$P" '(objectClass=inetOrgPerson)' dn | grep -c '^dn')
is "openldap: 12 people (svc-idp, 8 users, 3 states)" "$n" 12
if [[ $LDAP_MEMBEROF == overlay ]]; then
  is "openldap: bob memberOf (stored, direct)" "$("${LS[@]}" '(uid=bob)' memberOf | sed -n 's/^memberOf: //p')" "cn=developers,$G"
fi
# walk the nesting upwards through group memberOf: developers -> engineering -> staff -> company
chain=""; g="cn=developers,$G"
for _ in 1 2 3 4; do
  up=$("${LS[@]}" "(&(objectClass=groupOfNames)(member=$g))" dn | sed -n 's/^dn: //p' | grep -v '^cn=developers' | head -1)
  [[ -n $up ]] || break
  chain+="${up%%,*} "; g=$up
done
is "openldap: nesting above developers"     "$chain" "cn=engineering cn=staff cn=company "
is "openldap: engineering members"          "$("${LS[@]}" '(cn=engineering)' member | sed -n 's/^member: //p' | sort | tr '\n' ' ')" \
  "cn=admins,$G cn=developers,$G uid=dave,$P "
pat=$("${LS[@]}" '(uid=pat)' dn | sed -n 's/^dn: //p')
is "openldap: pat's DN"                     "$pat" "cn=Pat O'Connor\\2C Jr. (ext*),$P"
chk "openldap: pat binds"                   ldapwhoami -x -H "$LDAP_URL" -D "cn=Pat O'Connor\\, Jr. (ext*),$P" -w "$LDAP_USER_PW"
is "openldap: (cn=*\\2a*) matches pat only" "$("${LS[@]}" '(cn=*\2a*)' uid | sed -n 's/^uid: //p')" pat
is "openldap: jürgen found by uid"          "$("${LS[@]}" '(uid=jürgen)' mail | sed -n 's/^mail: //p')" juergen@example.org
chk "openldap: jürgen binds"                ldapwhoami -x -H "$LDAP_URL" -D "uid=jürgen,$P" -w "$LDAP_USER_PW"
is "openldap: developers has 4 members"     "$("${LS[@]}" '(cn=developers)' member | grep -c '^member')" 4
is "openldap: frank memberOf loop-a"        "$("${LS[@]}" "(member=uid=frank,$P)" cn | sed -n 's/^cn: //p')" loop-a
is "openldap: loop-a <-> loop-b"            "$("${LS[@]}" "(|(&(cn=loop-a)(member=cn=loop-b,$G))(&(cn=loop-b)(member=cn=loop-a,$G)))" dn | grep -c '^dn')" 2
pp() { ldapwhoami -e ppolicy -x -H "$LDAP_URL" -D "uid=$1,$P" -w "$LDAP_USER_PW" 2>&1; echo "rc=$?"; }
out=$(pp locked);     [[ $out == *"Account locked"* && $out == *rc=49* ]] && ok "openldap: locked -> 49, ppolicy accountLocked" || ko "openldap: locked: $out"
out=$(pp mustchange); [[ $out == *"Password must be changed"* && $out == *rc=0* ]] && ok "openldap: mustchange -> 0, ppolicy changeAfterReset" || ko "openldap: mustchange: $out"
out=$(pp pwexpired);  [[ $out == *"Password expired"* && $out == *rc=49* ]] && ok "openldap: pwexpired -> 49, ppolicy passwordExpired" || ko "openldap: pwexpired: $out"
out=$(ldapsearch -x -H "$LDAP_URL" -D "uid=mustchange,$P" -w "$LDAP_USER_PW" -b "$LDAP_BASE_DN" -s base 2>&1); [[ $? == 50 ]] \
  && ok "openldap: mustchange search after bind -> 50" || ko "openldap: mustchange search: $out"
for _ in 1 2 3 4 5 6 7 8 9 10; do ldapwhoami -x -H "$LDAP_URL" -D "$A" -w wrong >/dev/null 2>&1; done
chk "openldap: alice not locked after 10 wrong passwords" ldapwhoami -x -H "$LDAP_URL" -D "$A" -w "$LDAP_USER_PW"

# ---------------------------------------------------------------- Samba AD
if [[ -n ${AD_URL:-} ]]; then
  export LDAPTLS_CACERT=$AD_CA_CERT
  chk "samba: LDAP ports on 127.0.0.1 only"   loopback_only 389 636
  ldapwhoami -x -H "$AD_URL" -D "alice@$AD_REALM" -w "$AD_USER_PW" >/dev/null 2>&1; is "samba: plaintext simple bind refused (8)" $? 8
  S=(ldapsearch -LLL -o ldif-wrap=no -x -H "$AD_LDAPS_URL" -D "$AD_BIND_UPN" -w "$AD_BIND_PW" -b "$AD_BASE_DN")
  ub() { ldapsearch -x -H "$AD_LDAPS_URL" -D "$1" -w "$2" -b "$AD_BASE_DN" -s base >/dev/null 2>&1; }
  chk "samba: LDAPS bind (svc-idp UPN) + search"  "${S[@]}" -s base
  chk "samba: LDAPS bind by DN"                   ub "$AD_BIND_DN" "$AD_BIND_PW"
  chk "samba: StartTLS UPN bind + search"         ldapsearch -x -ZZ -H "$AD_URL" -D "alice@$AD_REALM" -w "$AD_USER_PW" -b "$AD_BASE_DN" -s base
  chk "samba: DOMAIN\\user bind"                   ub "$AD_DOMAIN\\alice" "$AD_USER_PW"
  ! env LDAPTLS_CACERT="$TESTENV_DIR/wrong-ca.pem" LDAPTLS_REQCERT=demand ldapsearch -x -H "$AD_LDAPS_URL" -D "alice@$AD_REALM" -w "$AD_USER_PW" -b "$AD_BASE_DN" -s base >/dev/null 2>&1 \
    && ok "samba: LDAPS with a wrong CA fails" || ko "samba: LDAPS with a wrong CA fails"
  dn() { "${S[@]}" "(&(objectClass=user)(sAMAccountName=$1))" dn | sed -n 's/^dn: //p'; }
  bob=$(dn bob)
  is "samba: bob's DN"                        "$bob" "CN=Bob Brown,$AD_USERS_DN"
  is "samba: bob memberOf (direct)"           "$("${S[@]}" -b "$bob" -s base memberOf | sed -n 's/^memberOf: //p')" "CN=developers,$AD_USERS_DN"
  is "samba: in-chain groups of bob"          "$("${S[@]}" "(member:1.2.840.113556.1.4.1941:=$bob)" cn | sed -n 's/^cn: //p' | sort | tr '\n' ' ')" \
    "company developers engineering staff "
  frank=$(dn frank)
  is "samba: in-chain groups of frank (cycle)" "$("${S[@]}" "(member:1.2.840.113556.1.4.1941:=$frank)" cn | sed -n 's/^cn: //p' | sort | tr '\n' ' ')" "loop-a loop-b "
  is "samba: pat's DN"                        "$(dn pat)" "CN=Pat O'Connor\\, Jr. (ext*),$AD_USERS_DN"
  chk "samba: pat binds (UPN)"                ub "pat@$AD_REALM" "$AD_USER_PW"
  is "samba: jürgen found"                    "$("${S[@]}" '(sAMAccountName=jürgen)' mail | sed -n 's/^mail: //p')" juergen@example.test
  chk "samba: jürgen binds (UPN)"             ub "jürgen@$AD_REALM" "$AD_USER_PW"
  is "samba: developers has 4 members"        "$("${S[@]}" '(&(objectClass=group)(cn=developers))' member | grep -c '^member')" 4
  for pair in alice:52e nobody:52e locked:775 pwexpired:532 mustchange:773 disabled:533 acctexpired:701; do
    u=${pair%%:*}; want=${pair##*:}; pw=$AD_USER_PW; [[ $u == alice ]] && pw=wrong
    got=$(ldapwhoami -x -H "$AD_LDAPS_URL" -D "$u@$AD_REALM" -w "$pw" 2>&1 | grep -o 'data [0-9a-f]*' | cut -d' ' -f2)
    is "samba: $u -> data $want" "$got" "$want"
  done
  for _ in 1 2 3 4 5 6 7 8 9 10; do ub "alice@$AD_REALM" wrong; done
  chk "samba: alice not locked after 10 wrong passwords" ub "alice@$AD_REALM" "$AD_USER_PW"
else
  ko "samba: AD_URL unset (SERVICES without samba?)"
fi

# ---------------------------------------------------------------- redis
R=(redis-cli -h "${REDIS_ADDR%:*}" -p "${REDIS_ADDR##*:}")
[[ -n ${REDIS_PASSWORD:-} ]] && export REDISCLI_AUTH=$REDIS_PASSWORD
chk "redis: listens on 127.0.0.1 only"      loopback_only "${REDIS_ADDR##*:}"
is "redis: PING"                            "$("${R[@]}" ping 2>&1)" PONG
is "redis: SET/GET"                         "$("${R[@]}" set verify:k v EX 10 >/dev/null; "${R[@]}" get verify:k)" v
is "redis: PING via REDIS_URL"              "$(redis-cli -u "$REDIS_URL" ping 2>&1)" PONG
is "redis: protected mode"                  "$("${R[@]}" config get protected-mode | tail -1)" yes

echo "checks took $(since "$t0")s"
[[ $started == 1 ]] && ./down.sh 2>/dev/null
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]

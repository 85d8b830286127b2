#!/usr/bin/env bash
# Installs, with apt-get, the Debian packages the real test servers and the
# test suite need, and only those that are missing (checked with dpkg-query).
# Quiet and quick when everything is present; runs `apt-get update` only when
# something must be installed. Needs root for that (exits 1 with the list of
# missing packages otherwise).
#
# Services the packages would start (redis-server on 6379, smbd, ...) are not
# needed: the tests start their own instances on other ports. While this
# script installs, a temporary policy-rc.d keeps Debian from starting them,
# unless the machine already has a policy-rc.d of its own.
set -euo pipefail

PACKAGES=(
  slapd ldap-utils                                  # OpenLDAP
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules samba-vfs-modules
  winbind krb5-user ldb-tools                       # Samba AD DC
  faketime                                          # Samba: an already expired password
  redis-server                                      # sessions
  openssl ca-certificates                           # test certificates
  chromium                                          # browser tests
  xmlsec1 python3-pysaml2                           # independent SAML verifiers
  awscli                                            # /usr/bin/aws (v2): STS plumbing against moto
  gcc libc6-dev                                     # go test -race needs cgo
)

# one dpkg-query for all (as `dpkg -s` per package, but one process);
# "ii" = installed; a package dpkg never heard of is missing too
declare -A have=()
while read -r name abbrev; do
  [[ $abbrev == ii* ]] && have[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ -n ${have[$p]:-} ]] || missing+=("$p")
done
[[ ${#missing[@]} == 0 ]] && exit 0

if [[ $(id -u) != 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]}" >&2
  echo "install-deps: run as root (sudo $0), or install them with apt-get" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# slapd: no default database (we run our own instances)
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "install-deps: done" >&2

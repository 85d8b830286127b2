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
  redis-server oathtool                             # sessions
  openssl ca-certificates                           # test certificates
  chromium                                          # browser tests
  xmlsec1 python3-pysaml2                           # independent SAML verifiers
  python3-jwcrypto                                  # independent client assertions (workloads)
  awscli                                            # /usr/bin/aws (v2): STS plumbing against moto
  fish                                              # the Access keys panel's fish form, run
  gcc libc6-dev                                     # go test -race needs cgo
  python3-venv python3-pip                          # moto_server via pip (below)
  stress-ng                                         # make test-under-load
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

# moto_server (AWS service mocks for the STS plumbing tests) is not packaged
# by Debian: when no moto_server is found (PATH, /usr/local/bin, a pyenv
# Python), it is installed with pip into its own virtualenv,
# /opt/warden-testenv/moto, linked as /usr/local/bin/moto_server.
MOTO_VENV=/opt/warden-testenv/moto
have_moto() {
  command -v moto_server >/dev/null 2>&1 && return 0
  [[ -x /usr/local/bin/moto_server ]] && return 0
  compgen -G "${PYENV_ROOT:-$HOME/.pyenv}/versions/*/bin/moto_server" >/dev/null 2>&1 && return 0
  compgen -G "/root/.pyenv/versions/*/bin/moto_server" >/dev/null 2>&1
}
install_moto() {
  have_moto && return 0
  if [[ $(id -u) != 0 ]]; then
    echo "install-deps: moto_server missing; run as root to install it with pip" >&2
    return 1
  fi
  echo "install-deps: installing moto[server] with pip into $MOTO_VENV" >&2
  if ! { python3 -m venv "$MOTO_VENV" >&2 &&
         "$MOTO_VENV/bin/pip" install -q 'moto[server]' >&2; }; then
    echo "install-deps: pip could not install moto[server] (is PyPI reachable?); the tests that need moto_server will say so" >&2
    return 0
  fi
  ln -sf "$MOTO_VENV/bin/moto_server" /usr/local/bin/moto_server
}

if [[ ${#missing[@]} == 0 ]]; then
  install_moto
  exit 0
fi

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
install_moto
echo "install-deps: done" >&2

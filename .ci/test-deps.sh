#!/usr/bin/env bash
# Installs the Debian packages whose servers the tests start for real: OpenLDAP (slapd), a Samba
# AD domain controller, Chromium (status page screenshots) and shellcheck. Needs root and apt-get;
# elsewhere it says what is missing and the tests that need it skip (in CI they fail instead).
set -euo pipefail

packages=(slapd ldap-utils samba samba-ad-dc samba-dsdb-modules winbind samba-ad-provision chromium fonts-liberation shellcheck)
# PostgreSQL server binaries (initdb, postgres) for the state store tests (scim/state/pgtest).
packages+=(postgresql)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "test-deps: not root or no apt-get; missing Debian packages: ${missing[*]} (the tests that need them will skip)"
  exit 0
fi
echo "test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting daemons: the tests run their own servers on their own ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Stop anything that started anyway, so that ports 389/636/88 are free for the tests.
for d in slapd samba samba-ad-dc smbd nmbd winbind; do
  pkill -x "$d" 2>/dev/null || true
done

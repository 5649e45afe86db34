#!/usr/bin/env bash
# Installs the Debian packages that the tests and the benchmark call as external programs.
# Idempotent: does nothing (and prints nothing) when every command is already present.
set -euo pipefail

# command -> Debian package that provides it
declare -A PACKAGE_FOR=(
  [curl]=curl
  [nghttp]=nghttp2-client
  [h2load]=nghttp2-client
  [nginx]=nginx
  [wrk]=wrk
  [promtool]=prometheus
  [prometheus]=prometheus
  [redis-server]=redis-server
  [openssl]=openssl
  [chromium]=chromium
  [iptables]=iptables
  [cc]=gcc
)

missing=()
for cmd in "${!PACKAGE_FOR[@]}"; do
  # nginx and iptables live in /usr/sbin, which a non-login PATH may lack.
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
    pkg="${PACKAGE_FOR[$cmd]}"
    [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
  fi
done

[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-test-deps: missing ${missing[*]} and not root (no sudo)" >&2
    exit 1
  fi
else
  SUDO=()
fi

echo "install-test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# Debian's nginx package starts a system-wide nginx on port 80 when installed; the tests start
# their own, so forbid service starts during the install unless a policy is already in place.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  added_policy=1
fi
cleanup() { if [ "$added_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

for cmd in "${!PACKAGE_FOR[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ]; then
    echo "install-test-deps: $cmd still missing after installing ${missing[*]}" >&2
    exit 1
  fi
done
echo "install-test-deps: done" >&2

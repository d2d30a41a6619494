#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing yjt needs.
# Installs nothing when everything is already there; uses sudo when not
# run as root.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libjansson-dev libglib2.0-dev
  libsqlite3-dev libssl-dev libcmocka-dev tzdata
  python3 python3-pytest python3-websockets openssl curl
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

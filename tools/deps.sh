#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing yjt needs.
# Installs nothing when everything is already there; uses sudo when not
# run as root.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libjansson-dev libglib2.0-dev
  libsqlite3-dev libssl-dev libcmocka-dev tzdata libsrtp2-dev libnice-dev libhiredis-dev
  # the Redis store and the several-node tests start redis-servers of their own
  redis-server
  python3 python3-pytest python3-websockets openssl curl
  clang libclang-rt-14-dev
  chromium coturn nodejs npm
  # ffprobe reads back the recordings of SFU calls in the browser test
  ffmpeg
  # a CJK font, so that the console's screenshots from the browser test
  # show Chinese text rather than empty boxes
  fonts-wqy-microhei
)

# A Node.js installed another way (one whose nodejs package brings its own
# npm and conflicts with Debian's) counts: only the commands are needed.
command_for() {
  case "$1" in
    nodejs) echo node ;;
    npm) echo npm ;;
  esac
}

missing=()
for p in "${PACKAGES[@]}"; do
  cmd=$(command_for "$p")
  if [ -n "$cmd" ] && command -v "$cmd" >/dev/null 2>&1; then
    continue
  fi
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

# coturn and redis-server are only for the tests, which start their own
# servers on free ports and stop them: the packages' system services must
# not run (they would take ports 3478 and 6379, and outlive the tests).
for svc in coturn redis-server; do
  if [[ " ${missing[*]} " == *" $svc "* ]]; then
    if [ -d /run/systemd/system ]; then
      $SUDO systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
    else
      $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
      $SUDO service "$svc" stop >/dev/null 2>&1 || true
    fi
  fi
done

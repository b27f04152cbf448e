#!/usr/bin/env bash
# Installs the Debian / Raspberry Pi OS packages Facegate needs, only those that are missing.
#   system_deps.sh run    what the kiosk needs (Python venv support)
#   system_deps.sh test   plus what the tests need (PostgreSQL server, Chromium, Mosquitto)
set -euo pipefail
mode=${1:-run}

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then need+=(python3-venv); fi
if [ "$mode" = test ]; then
  [ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || need+=(postgresql)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
fi
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing system packages: ${need[*]} (install them with your package manager)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"

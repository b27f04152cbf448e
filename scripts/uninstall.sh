#!/usr/bin/env bash
# Remove Facegate installed by scripts/install.sh. Keeps the data (/var/lib/facegate) and the
# settings (/etc/facegate) unless --purge is given; the system users stay unless --purge.
#   sudo scripts/uninstall.sh [--purge] [--root DIR]
set -euo pipefail
ROOT=/
PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2; shift 2 ;;
    --purge) PURGE=1; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/}
[ "$(id -u)" -eq 0 ] || { echo "uninstall.sh must run as root" >&2; exit 1; }
units=(facegate-appliance.service facegate-api.service facegate-sync.service facegate-notify.service
       facegate-ui.service facegate.target)
if [ "$ROOT" = / ] && [ -d /run/systemd/system ]; then
  systemctl disable --now --quiet "${units[@]}" || true
elif command -v systemctl >/dev/null 2>&1; then
  systemctl --root="$ROOT" disable --quiet "${units[@]}" 2>/dev/null || true
fi
for u in "${units[@]}"; do rm -f "$R/etc/systemd/system/$u"; done
[ "$ROOT" = / ] && [ -d /run/systemd/system ] && systemctl daemon-reload
rm -rf "$R/opt/facegate" "$R/usr/local/bin/facegate" "$R/var/lib/facegate-ui"
if [ "$PURGE" = 1 ]; then
  rm -rf "$R/var/lib/facegate" "$R/etc/facegate"
  ua=(); [ "$ROOT" = / ] || ua=(--root "$ROOT")
  for u in facegate facegate-ui; do
    grep -q "^$u:" "$R/etc/passwd" && userdel "${ua[@]}" "$u"
  done
  echo "Facegate removed, with its data, settings and users."
else
  echo "Facegate removed. Kept: /var/lib/facegate (the store: faces and entry log)," \
    "/etc/facegate (settings) and the users facegate, facegate-ui; --purge deletes them."
fi

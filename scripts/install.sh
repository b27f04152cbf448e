#!/usr/bin/env bash
# Install (or upgrade in place) Facegate on Raspberry Pi OS Bookworm or Debian 12, as root:
#
#   sudo scripts/install.sh                 # from a checkout of this repository
#
# What it changes (and nothing else):
#   - Debian packages: python3, python3-venv, ca-certificates (apt, only the missing ones)
#   - system users: facegate (the door, API and sync; groups video and, on a Pi, gpio) and
#     facegate-ui (the console: cannot open the store)
#   - /opt/facegate: the code, owned by root, read-only to the services; /opt/facegate/.venv
#   - /var/lib/facegate (0700 facegate): the store, snapshots, run files -- kept on upgrade
#   - /etc/facegate/facegate.env (0600 root) from .env.example when absent -- never overwritten
#   - /etc/systemd/system: facegate-{appliance,api,sync,notify,ui}.service and facegate.target
#   - /usr/local/bin/facegate: `facegate enroll ...`, `facegate doctor` as the facegate user
#
# Options:
#   --root DIR      install into DIR instead of / (DESTDIR style, for tests and images)
#   --no-apt        do not install Debian packages
#   --no-pip        create the venv without installing the Python requirements (tests)
#   --wheels DIR    install the Python requirements from this wheel folder only (offline, Pi)
#   --no-start      enable the units but do not start them
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=/
APT=1
PIP=1
START=1
WHEELS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2; shift 2 ;;
    --no-apt) APT=0; shift ;;
    --no-pip) PIP=0; shift ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/}            # prefix for paths: "" for the real root
LIVE=0                 # installing onto the running system?
[ "$ROOT" = / ] && LIVE=1

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh must run as root (sudo scripts/install.sh)" >&2
  exit 1
fi

say() { printf '==> %s\n' "$*"; }

# --- Debian packages -----------------------------------------------------------------------
if [ "$APT" = 1 ] && [ "$LIVE" = 1 ]; then
  need=()
  for pkg in python3 python3-venv ca-certificates; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    say "installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi

# --- users -----------------------------------------------------------------------------------
ua_root=()
[ "$LIVE" = 1 ] || ua_root=(--root "$ROOT")
if [ "$LIVE" = 0 ] && [ ! -f "$R/etc/passwd" ]; then
  echo "install.sh: $R/etc/passwd missing: the --root tree needs an /etc with passwd and group" >&2
  exit 1
fi
has_user() { grep -q "^$1:" "$R/etc/passwd"; }
has_group() { grep -q "^$1:" "$R/etc/group"; }
for u in facegate facegate-ui; do
  if ! has_user "$u"; then
    say "creating system user $u"
    useradd "${ua_root[@]}" --system --user-group --no-create-home \
      --home-dir "/var/lib/$u" --shell /usr/sbin/nologin "$u"
  fi
done
for g in video gpio; do  # only the door touches the camera and the pins
  if has_group "$g"; then
    usermod "${ua_root[@]}" -a -G "$g" facegate
  fi
done
uid_of() { awk -F: -v u="$1" '$1 == u { print $3 }' "$R/etc/passwd"; }
gid_of() { awk -F: -v g="$1" '$1 == g { print $3 }' "$R/etc/group"; }
FG="$(uid_of facegate):$(gid_of facegate)"
UI="$(uid_of facegate-ui):$(gid_of facegate-ui)"

# --- code, root-owned and read-only to the services -----------------------------------------
APP="$R/opt/facegate"
if [ "$(cd "$SRC" && pwd -P)" = "$(mkdir -p "$APP" && cd "$APP" && pwd -P)" ]; then
  echo "install.sh: run it from a checkout, not from $APP itself" >&2
  exit 2
fi
say "installing the code into $APP"
mkdir -p "$APP"
# upgrade in place: replace everything but the venv
find "$APP" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./data --exclude=./.env \
  --exclude='__pycache__' --exclude=./.pytest_cache --exclude=./tests -cf - . | tar -C "$APP" -xf -
chown -R root:root "$APP"
chmod -R u+rwX,go+rX,go-w "$APP"

# --- virtualenv ------------------------------------------------------------------------------
if [ ! -x "$APP/.venv/bin/python" ]; then
  say "creating the virtualenv"
  if [ "$PIP" = 1 ]; then python3 -m venv "$APP/.venv"; else python3 -m venv --without-pip "$APP/.venv"; fi
fi
if [ "$PIP" = 1 ]; then
  say "installing the Python requirements"
  pip_opts=(--quiet --disable-pip-version-check)
  [ -n "$WHEELS" ] && pip_opts+=(--no-index --find-links "$WHEELS")
  "$APP/.venv/bin/python" -m pip install "${pip_opts[@]}" -r "$APP/requirements.txt"
  "$APP/.venv/bin/python" -m pip install "${pip_opts[@]}" --no-deps -r "$APP/requirements-nodeps.txt"
fi
chown -R root:root "$APP/.venv"
chmod -R go-w "$APP/.venv"

# --- data and settings -----------------------------------------------------------------------
install -d -m 0700 -o "${FG%:*}" -g "${FG#*:}" "$R/var/lib/facegate"
install -d -m 0700 -o "${UI%:*}" -g "${UI#*:}" "$R/var/lib/facegate-ui"
install -d -m 0755 "$R/etc/facegate"
ENV="$R/etc/facegate/facegate.env"
if [ ! -e "$ENV" ]; then
  say "writing $ENV from .env.example (edit it: door name, time zone, pins, camera)"
  umask 077
  sed -e 's|^FACEGATE_DATA_DIR=.*|FACEGATE_DATA_DIR=/var/lib/facegate|' \
    "$SRC/.env.example" > "$ENV"
  umask 022
else
  say "keeping $ENV"
fi
chown root:root "$ENV"
chmod 0600 "$ENV"

# --- units and the command wrapper -----------------------------------------------------------
UNITDIR="$R/etc/systemd/system"
install -d -m 0755 "$UNITDIR"
for f in "$SRC"/systemd/facegate-*.service "$SRC"/systemd/facegate.target; do
  install -m 0644 "$f" "$UNITDIR/"
done
install -d -m 0755 "$R/usr/local/bin"
cat > "$R/usr/local/bin/facegate" <<'EOF'
#!/bin/sh
# `facegate COMMAND ...` = `python -m appliance COMMAND ...` as the facegate user, with the
# installed settings (e.g. facegate enroll --name Ada ada.jpg; facegate doctor; facegate backup F).
set -e
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
# the settings are data, read as systemd's EnvironmentFile= reads them, never run as shell: a
# URL's & or ; and a password's $ stay what they are, and nothing in the file runs as root
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    FACEGATE_*=*)
      name=${line%%=*}; value=${line#*=}
      case "$value" in
        \"*\") value=${value#\"}; value=${value%\"} ;;
        \'*\') value=${value#\'}; value=${value%\'} ;;
      esac
      export "$name=$value" ;;
  esac
done < /etc/facegate/facegate.env
cd /opt/facegate
module=appliance
case "${1:-}" in
  api) module=admin_api; shift ;;   # facegate api token create --role admin --name me
  sync) module=sync; shift ;;       # facegate sync status
esac
exec setpriv --reuid=facegate --regid=facegate --init-groups \
  /opt/facegate/.venv/bin/python -m "$module" "$@"
EOF
chmod 0755 "$R/usr/local/bin/facegate"

# --- migrations (keep data, bring the schema up to date) ------------------------------------
if [ "$LIVE" = 1 ] && [ "$PIP" = 1 ]; then
  say "migrating the store"
  (cd "$APP" && setpriv --reuid=facegate --regid=facegate --init-groups \
    env FACEGATE_DATA_DIR=/var/lib/facegate "$APP/.venv/bin/python" -c \
    'from appliance.store import open_db; open_db("/var/lib/facegate/facegate.db").conn.close()')
else
  say "migrations not run here (not the live system, or no requirements); the services run them"
fi

# --- enable and start ------------------------------------------------------------------------
units=(facegate-appliance.service facegate-api.service facegate-sync.service facegate-notify.service
       facegate-ui.service facegate.target)
if [ "$LIVE" = 1 ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --quiet "${units[@]}"
  if [ "$START" = 1 ]; then
    say "(re)starting facegate.target"
    systemctl restart facegate.target
  fi
  STARTED=1
else
  if command -v systemctl >/dev/null 2>&1; then
    systemctl --root="$ROOT" enable --quiet "${units[@]}" && say "enabled the units in $ROOT"
  fi
  say "SKIPPED starting: systemd is not running here (or --root). On the target system run:"
  say "    sudo systemctl daemon-reload && sudo systemctl enable --now facegate.target"
  STARTED=0
fi

cat <<EOF

Facegate is installed.
  settings   /etc/facegate/facegate.env (root, 0600) -- then: sudo systemctl restart facegate.target
  data       /var/lib/facegate (facegate, 0700)     -- backup: sudo facegate backup FILE
  services   systemctl status facegate.target       -- self-check: sudo facegate doctor
  console    http://127.0.0.1:8501 on this machine; from another one:
             ssh -L 8501:127.0.0.1:8501 $(hostname 2>/dev/null || echo pi)  then open http://localhost:8501
  API token  sudo facegate api token create --role admin --name me   (the console asks for it)
  first person (absolute paths the facegate user can read, e.g. in /tmp)
             sudo facegate enroll --name "Ada Lovelace" /tmp/ada1.jpg /tmp/ada2.jpg
             sudo facegate identify /tmp/another-photo-of-ada.jpg
EOF
[ "$STARTED" = 1 ] || echo "(services not started: see SKIPPED above)"

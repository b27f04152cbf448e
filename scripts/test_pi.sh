#!/usr/bin/env bash
# make test-pi: the Raspberry Pi path, checked on an x86_64 machine (../shared/PI-NOTES.md):
#  1. every pinned requirement resolves to a wheel for Raspberry Pi OS Bookworm (aarch64,
#     glibc 2.36, CPython 3.11): nothing would compile on the Pi;
#  2. in an arm64 Debian root, scripts/install.sh lays out the install (users, code, units), the
#     requirements install from that wheelhouse, and under qemu-user emulating a Cortex-A72 (Pi 4)
#     `enroll` takes a fixture photo and `identify` names the person in another one.
# Needs root (chroot, useradd); caches the wheelhouse and the root in CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
FIXTURES=${FACEGATE_FIXTURES:-$REPO/../shared/fixtures}
FIXTURES=$(cd "$FIXTURES" && pwd)
CACHE=${CACHE:-/var/cache/facegate-pi}
PY=${PY:-$REPO/.venv/bin/python}
start=$(date +%s)
step() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }
[ "$(id -u)" -eq 0 ] || { echo "test-pi: needs root (chroot)" >&2; exit 1; }
mkdir -p "$CACHE"

# --- 1. wheels for aarch64 ------------------------------------------------------------------
W="$CACHE/wheels-aarch64"
mkdir -p "$W"
plat=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
      --platform manylinux_2_36_aarch64 --platform manylinux_2_34_aarch64
      --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64)
# face_recognition_models is an sdist of data files: its wheel is platform-independent
grep -v '^face_recognition_models' requirements.txt > "$CACHE/req-pi.txt"
"$PY" -m pip download --quiet "${plat[@]}" -d "$W" -r "$CACHE/req-pi.txt"
# markers are evaluated for this host: the aarch64-only pins need their own download
grep 'platform_machine == "aarch64"' requirements.txt | sed 's/;.*//' > "$CACHE/req-arm-only.txt"
"$PY" -m pip download --quiet "${plat[@]}" -d "$W" -r "$CACHE/req-arm-only.txt"
ls "$W"/face_recognition_models-*.whl >/dev/null 2>&1 \
  || "$PY" -m pip wheel --quiet --no-deps -w "$W" "$(grep '^face_recognition_models' requirements.txt | awk '{print $1}')"
"$PY" -m pip download --quiet --no-deps -d "$W" -r requirements-nodeps.txt
step "every pin resolves to an aarch64 / pure wheel ($(ls "$W" | wc -l) wheels)"

# --- 2. an arm64 Debian root under qemu-user (Cortex-A72) -----------------------------------
command -v qemu-aarch64-static >/dev/null \
  || apt-get install -y -qq --no-install-recommends qemu-user-static
command -v mmdebstrap >/dev/null || apt-get install -y -qq --no-install-recommends mmdebstrap
BASE="$CACHE/root-arm64.tar"
if [ ! -s "$BASE" ]; then
  mmdebstrap --quiet --variant=extract --arch=arm64 \
    --include=python3,python3-pip,python3-venv,libpython3.11,ca-certificates,libgomp1,libstdc++6,libgl1,libglib2.0-0,passwd \
    bookworm "$CACHE/root-arm64.partial.tar" && mv "$CACHE/root-arm64.partial.tar" "$BASE"
  step "arm64 root made"
fi
DIR=$(mktemp -d /tmp/facegate-pi.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
tar -C "$DIR" -xf "$BASE"
cp /usr/bin/qemu-aarch64-static "$DIR/usr/bin/"
# --variant=extract runs no maintainer script: base-passwd's files are not in /etc yet
for f in passwd group; do
  [ -f "$DIR/etc/$f" ] || cp "$DIR/usr/share/base-passwd/$f.master" "$DIR/etc/$f" 2>/dev/null \
    || echo "root:x:0:0:root:/root:/bin/sh" > "$DIR/etc/$f"
done
grep -q '^video:' "$DIR/etc/group" || echo 'video:x:44:' >> "$DIR/etc/group"
grep -q '^gpio:' "$DIR/etc/group" || echo 'gpio:x:993:' >> "$DIR/etc/group"  # as on Pi OS
[ -f "$DIR/etc/shadow" ] || : > "$DIR/etc/shadow"
[ -f "$DIR/etc/gshadow" ] || : > "$DIR/etc/gshadow"
step "arm64 root unpacked in $DIR"

bash scripts/install.sh --root "$DIR" --no-pip >"$DIR/install.log"
grep -q '^facegate:' "$DIR/etc/passwd" && [ -f "$DIR/etc/systemd/system/facegate-appliance.service" ]
step "install.sh laid out users, code and units in the arm64 root"

mkdir -p "$DIR/wheelhouse" "$DIR/fixtures"
cp "$W"/*.whl "$DIR/wheelhouse/"
cp -r "$FIXTURES/people/barack_obama" "$DIR/fixtures/"
grep -v '^lgpio' "$DIR/opt/facegate/requirements.txt" > "$DIR/req.txt"
echo "lgpio==0.2.2.0" >> "$DIR/req.txt"
emu=(chroot "$DIR" /usr/bin/qemu-aarch64-static -cpu cortex-a72)
# the root's own pip (a venv's ensurepip would exec another aarch64 binary, which qemu-user
# without binfmt cannot)
"${emu[@]}" /usr/bin/python3.11 -m pip install --quiet --no-index --find-links /wheelhouse \
  --break-system-packages --no-warn-script-location --prefix /opt/x -r /req.txt
"${emu[@]}" /usr/bin/python3.11 -m pip install --quiet --no-index --find-links /wheelhouse \
  --break-system-packages --no-warn-script-location --prefix /opt/x --no-deps \
  -r /opt/facegate/requirements-nodeps.txt
step "requirements installed in the arm64 root from the wheelhouse"

# no binfmt_misc: every aarch64 binary (even /bin/sh) must be started through qemu explicitly
run() {
  env PYTHONPATH=/opt/facegate:/opt/x/local/lib/python3.11/dist-packages \
    FACEGATE_DATA_DIR=/var/lib/facegate HOME=/tmp \
    chroot "$DIR" /usr/bin/qemu-aarch64-static -cpu cortex-a72 /usr/bin/python3.11 -m appliance "$@"
}
t0=$(date +%s)
run enroll --name Barack_Obama /fixtures/barack_obama/obama.jpg /fixtures/barack_obama/obama2.jpg
step "enroll under Cortex-A72 emulation: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
out=$(run identify --json /fixtures/barack_obama/obama3.jpg)
step "identify under Cortex-A72 emulation: $(( $(date +%s) - t0 )) s"
echo "$out" | "$PY" -c '
import json, sys
faces = json.load(sys.stdin)["faces"]
assert any(f["person_name"] == "Barack_Obama" for f in faces), faces
print("identify on the emulated Pi 4:", [(f["person_name"], f["decision"]) for f in faces])'
step "test-pi passed"

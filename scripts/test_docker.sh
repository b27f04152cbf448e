#!/usr/bin/env bash
# make test-docker: build the image for real and check, in running containers, that `identify`
# names a fixture photo and that the API answers /api/v1/health.
#
# These machines have no Docker engine and no registry (../shared/DOCKER-NOTES.md): as root this
# starts a private dockerd (vfs, no bridge), makes a Debian bookworm base with mmdebstrap and a
# wheelhouse on the host, and removes the daemon's data afterwards. With DOCKER_HOST set (or a
# running engine and BASE=python:3.11-slim-bookworm) it uses that engine and base instead.
#   BASE=...        base image (default: a local mmdebstrap bookworm, built and cached)
#   CACHE=DIR       where the base tarball and the wheelhouse are cached (/var/cache/facegate-docker)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
FIXTURES=${FACEGATE_FIXTURES:-$REPO/../shared/fixtures}
FIXTURES=$(cd "$FIXTURES" && pwd)
CACHE=${CACHE:-/var/cache/facegate-docker}
PY=${PY:-$REPO/.venv/bin/python}
TAG=facegate:test
start=$(date +%s)
step() { printf '[%4ss] %s\n' "$(( $(date +%s) - start ))" "$*"; }

D=""
cleanup() {
  set +e
  if [ -n "${DOCKER_HOST:-}" ]; then
    docker rm -f facegate-test-api >/dev/null 2>&1
    docker rmi -f "$TAG" >/dev/null 2>&1
  fi
  if [ -n "$D" ] && [ -f "$D/pid" ]; then
    kill "$(cat "$D/pid")" 2>/dev/null
    for _ in $(seq 50); do [ -e "$D/pid" ] || break; sleep 0.2; done
    # dockerd leaves its network namespace mounted under the exec root
    awk -v d="$D/" 'index($2, d) == 1 { print $2 }' /proc/mounts | xargs -r -n1 umount -l
    rm -rf "$D"
  fi
}
trap cleanup EXIT

if [ -z "${DOCKER_HOST:-}" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "test-docker: needs root to start a private dockerd" >&2; exit 1; }
  command -v dockerd >/dev/null || apt-get install -y -qq --no-install-recommends docker.io
  D=$(mktemp -d /tmp/facegate-docker.XXXXXX)
  dockerd --storage-driver=vfs --data-root="$D/root" --exec-root="$D/exec" --pidfile="$D/pid" \
    -H "unix://$D/sock" --iptables=false --bridge=none >"$D/dockerd.log" 2>&1 &
  export DOCKER_HOST="unix://$D/sock"
  for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null || { cat "$D/dockerd.log"; exit 1; }
  step "private dockerd up ($D)"
fi

mkdir -p "$CACHE"
if [ -z "${BASE:-}" ]; then
  BASE=local/bookworm-python:3.11
  if [ ! -s "$CACHE/base.tar" ]; then
    command -v mmdebstrap >/dev/null || apt-get install -y -qq --no-install-recommends mmdebstrap
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$CACHE/base.partial.tar" && mv "$CACHE/base.partial.tar" "$CACHE/base.tar"
    step "base made with mmdebstrap"
  fi
  docker import "$CACHE/base.tar" "$BASE" >/dev/null
  step "base imported"
fi

# the wheelhouse: pip in a build container does not reach the index here
if [ ! -f "$CACHE/wheels/.complete" ] || [ requirements.txt -nt "$CACHE/wheels/.complete" ]; then
  "$PY" -m pip wheel --quiet -w "$CACHE/wheels" -r requirements.txt
  "$PY" -m pip download --quiet --no-deps -d "$CACHE/wheels" -r requirements-nodeps.txt
  touch "$CACHE/wheels/.complete"
  step "wheelhouse ready"
fi
rm -rf wheelhouse && mkdir wheelhouse && cp -l "$CACHE"/wheels/*.whl wheelhouse/ 2>/dev/null \
  || cp "$CACHE"/wheels/*.whl wheelhouse/
docker build --quiet --build-arg BASE="$BASE" -t "$TAG" . >/dev/null
rm -rf wheelhouse
step "image built: $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"

user=$(docker run --rm --network none "$TAG" id -un)
[ "$user" = facegate ] || { echo "FAIL: the image runs as $user, not facegate" >&2; exit 1; }

people=/fixtures/people/barack_obama
out=$(docker run --rm --network none -v "$FIXTURES:/fixtures:ro" "$TAG" sh -c "
  python -m appliance enroll --name 'Barack Obama' $people/obama.jpg $people/obama2.jpg >/dev/null &&
  python -m appliance identify --json $people/obama3.jpg")
echo "$out" | python3 -c '
import json, sys
faces = json.load(sys.stdin)["faces"]
assert any(f["person_name"] == "Barack Obama" for f in faces), faces
print("identify in the container:", [(f["person_name"], f["decision"]) for f in faces])'
step "identify names the fixture photo"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
docker run -d --name facegate-test-api --network host -e FACEGATE_API_PORT="$port" "$TAG" \
  python -m admin_api >/dev/null
for _ in $(seq 150); do
  if health=$(python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$port/api/v1/health', timeout=2).read().decode())" 2>/dev/null); then
    break
  fi
  sleep 0.2
done
[ -n "${health:-}" ] || { docker logs facegate-test-api; echo "FAIL: no /health" >&2; exit 1; }
echo "API /api/v1/health in the container: $health"
step "test-docker passed"

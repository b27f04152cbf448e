# Facegate in a container: the door kiosk, the admin API, the console and sync from one image.
#   docker build -t facegate .                         # the official python:3.11 slim image
#   docker buildx build --platform linux/arm64 -t facegate:arm64 .   # for a Raspberry Pi 4/5
# No compiler: dlib comes from the prebuilt dlib-bin wheels (x86_64 and aarch64), OpenCV headless.
# Offline (a door with no internet, or this project's tests): put wheels in ./wheelhouse/
# (`pip wheel -w wheelhouse -r requirements.txt`) and only they are used.
# Few steps on purpose: with the vfs storage driver every step copies the whole file system.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/opt/facegate \
    VIRTUAL_ENV=/opt/facegate/.venv \
    PATH=/opt/facegate/.venv/bin:$PATH \
    FACEGATE_DATA_DIR=/data

# the code (see .dockerignore) and, when present, the wheelhouse
COPY . /opt/facegate/
RUN set -eu; \
    cd /opt/facegate; \
    python3 -m venv "$VIRTUAL_ENV"; \
    opts="--no-cache-dir --disable-pip-version-check"; \
    if ls wheelhouse/*.whl >/dev/null 2>&1; then opts="$opts --no-index --find-links wheelhouse"; fi; \
    pip install $opts -r requirements.txt; \
    pip install $opts --no-deps -r requirements-nodeps.txt; \
    rm -rf wheelhouse; \
    useradd --system --user-group --home-dir /data --shell /usr/sbin/nologin facegate; \
    install -d -m 0700 -o facegate -g facegate /data; \
    chmod -R go-w /opt/facegate

USER facegate
# the admin API (8080) and the console (8501) bind to 127.0.0.1: compose uses the host's network
CMD ["python", "-m", "appliance", "run"]

# Facegate in a container: the door kiosk, the admin API, the console and sync from one image.
#   docker build -t facegate .                         # the official python:3.11 slim image
#   docker buildx build --platform linux/arm64 -t facegate:arm64 .   # for a Raspberry Pi 4/5
# No compiler: dlib comes from the prebuilt dlib-bin wheels (x86_64 and aarch64), OpenCV headless.
# Offline (a door with no internet, or this project's tests): put wheels in ./wheelhouse/
# (`pip wheel -w wheelhouse -r requirements.txt`) and they are used instead of the index.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/facegate/.venv \
    PATH=/opt/facegate/.venv/bin:$PATH \
    FACEGATE_DATA_DIR=/data

# requirements*.txt always match, so the optional wheelhouse may be absent from the context
COPY requirements.txt requirements-nodeps.txt wheelhous[e] /tmp/build/
RUN set -eu; \
    python3 -m venv "$VIRTUAL_ENV"; \
    opts="--no-cache-dir --disable-pip-version-check"; \
    if ls /tmp/build/*.whl >/dev/null 2>&1; then opts="$opts --no-index --find-links /tmp/build"; fi; \
    pip install $opts -r /tmp/build/requirements.txt; \
    pip install $opts --no-deps -r /tmp/build/requirements-nodeps.txt; \
    rm -rf /tmp/build; \
    useradd --system --user-group --home-dir /data --shell /usr/sbin/nologin facegate; \
    install -d -m 0700 -o facegate -g facegate /data

WORKDIR /opt/facegate
COPY appliance ./appliance
COPY hardware ./hardware
COPY admin_api ./admin_api
COPY admin_ui ./admin_ui
COPY sync ./sync
COPY .streamlit ./.streamlit

USER facegate
VOLUME /data
# the admin API (8080) and the console (8501) bind to 127.0.0.1: compose uses the host's network
CMD ["python", "-m", "appliance", "run"]

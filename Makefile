# Facegate: `make run` starts the kiosk, `make test` runs the whole suite.
# Both create .venv when missing and install only what changed since the last install.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: run demo test api ui sync notify bench bench-pi lint system-deps test-system-deps clean test-docker test-pi

$(PY):
	./scripts/system_deps.sh run
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.deps: $(PY) requirements.txt requirements-nodeps.txt
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

$(VENV)/.dev-deps: $(VENV)/.deps requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.deps
	$(PY) -m appliance run $(ARGS)

# enrol the fixture people, make an admin token, start API + kiosk (fixture clip) + console
demo: $(VENV)/.deps
	$(PY) scripts/demo.py $(ARGS)

api: $(VENV)/.deps
	$(PY) -m admin_api $(ARGS)

ui: $(VENV)/.deps
	$(PY) -m admin_ui $(ARGS)

sync: $(VENV)/.deps
	$(PY) -m sync $(ARGS)

notify: $(VENV)/.deps
	$(PY) -m notify $(ARGS)

test: $(VENV)/.dev-deps
	./scripts/system_deps.sh test
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.dev-deps
	$(PY) scripts/bench_pipeline.py --processes
	$(PY) scripts/bench_match.py
	$(PY) scripts/bench_liveness.py
	$(PY) scripts/bench_api.py
	$(PY) scripts/bench_sync.py
	$(PY) scripts/bench_erasure.py
	$(PY) scripts/bench_notify.py
	$(PY) scripts/bench_duplicates.py

# builds the image with a private dockerd and checks identify + /health in containers (root)
test-docker: $(VENV)/.deps
	./scripts/test_docker.sh

# the Raspberry Pi path: aarch64 wheels, an arm64 root under qemu-user (Cortex-A72) (root)
test-pi: $(VENV)/.deps
	./scripts/test_pi.sh

# the kiosk under Raspberry-Pi-class CPU quotas (cgroup v1: needs root; about 15 minutes)
bench-pi: $(VENV)/.dev-deps
	$(PY) scripts/bench_pi_budget.py --rerun kiosk-motion@100,kiosk-motion@45,kiosk-motion@25,kiosk-motion@15,reference@25

lint: $(VENV)/.dev-deps
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache

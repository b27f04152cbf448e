# Facegate: `make run` starts the kiosk, `make test` runs the whole suite.
# Both create .venv when missing and install only what changed since the last install.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=

.PHONY: run test api ui sync bench bench-pi lint system-deps test-system-deps clean

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

api: $(VENV)/.deps
	$(PY) -m admin_api $(ARGS)

ui: $(VENV)/.deps
	$(PY) -m admin_ui $(ARGS)

sync: $(VENV)/.deps
	$(PY) -m sync $(ARGS)

test: $(VENV)/.dev-deps
	./scripts/system_deps.sh test
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.dev-deps
	$(PY) scripts/bench_pipeline.py --processes
	$(PY) scripts/bench_match.py
	$(PY) scripts/bench_liveness.py
	$(PY) scripts/bench_api.py
	$(PY) scripts/bench_sync.py

# the kiosk under Raspberry-Pi-class CPU quotas (cgroup v1: needs root; about 15 minutes)
bench-pi: $(VENV)/.dev-deps
	$(PY) scripts/bench_pi_budget.py --rerun kiosk-motion@100,kiosk-motion@45,kiosk-motion@25,kiosk-motion@15,reference@25

lint: $(VENV)/.dev-deps
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache

# Herald: `make run` starts the whole stack, `make test` runs the suite. Both set themselves up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CLIENTS := var/clients/.installed

.PHONY: setup run test test-all soak lint format clients clean bench screenshots

setup: $(INSTALLED)

$(INSTALLED): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Herald needs Python 3.11 ($(PYTHON)) on PATH."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $@

# The official OneSignal clients used by the compatibility tests. 2.2.1 and 5.18.0 share the
# package name `onesignal`, so each lives in its own directory and runs in a subprocess.
clients: $(CLIENTS)

$(CLIENTS): $(INSTALLED)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target var/clients/os221 \
		"onesignal-python-api==2.2.1" "python-dateutil==2.9.0.post0" "six==1.17.0"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target var/clients/os518 \
		"onesignal-python-api==5.18.0" "python-dateutil==2.9.0.post0" "six==1.17.0"
	@touch $@

run: setup
	@bin/run

test: setup clients
	@bin/ensure-services
	@bin/ensure-test-tools
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup clients
	@bin/ensure-services
	@bin/ensure-test-tools
	$(PY) -m pytest $(PYTEST_ARGS)

# The long reliability runs (tests/reliability, marked slow): 200,000-recipient fan-outs with kill -9
# of workers, the beat and PostgreSQL, Redis lost or down for 60 s, the full gateway fault matrix.
# Each run's figures are appended to var/reliability/soak.jsonl (RELIABILITY.md quotes them).
soak: setup
	@bin/ensure-services
	@mkdir -p var/reliability
	HERALD_RELIABILITY_LOG=$(CURDIR)/var/reliability/soak.jsonl $(PY) -m pytest -m slow -s tests/reliability $(PYTEST_ARGS)

# Every benchmark at a size that takes about 10 minutes in all on 2 cores (python -m bench <name>
# --players 1000000 for the full size; results and commands in BENCHMARKS.md). The fan-out runs
# twice: against nginx, which is not the bottleneck, and against the simulators, where
# django-push-notifications can send all three platforms for its ratio. Each creates and drops its
# own herald_bench_<pid> database and uses Redis dbs 8 and 9.
bench: setup
	@bin/ensure-services
	@bin/ensure-test-tools
	$(PY) -m bench fanout --players 20000 --mix android,ios,web
	$(PY) -m bench fanout --players 20000 --mix android,ios,web --sink simulator
	$(PY) -m bench ingest --players 100000 --duration 10
	$(PY) -m bench create --players 200000 --requests 100
	$(PY) -m bench audience --players 200000
	$(PY) -m bench bulk --players 100000
	$(PY) -m bench scaling --players 10000 --workers 1,2,4 --latency-ms 0,20

# The dashboard screenshots linked from the README (docs/screenshots/), taken by the browser test.
screenshots: setup clients
	@bin/ensure-services
	@bin/ensure-test-tools
	HERALD_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest tests/e2e/test_dashboard_browser.py $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

format: setup
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var

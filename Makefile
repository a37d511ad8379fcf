# The two commands: `make dev` runs the whole system locally, `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast check venv benchmarks clean azurite localstack localstack-test screenshots

dev: $(STAMP)
	$(BIN)/jobs-orchestration dev

# One pytest worker per core (pytest-xdist), a test file to a worker: most tests wait on PostgreSQL, moto or
# a process they started, so two workers keep both cores busy. Each worker has its own database and moto.
test: $(STAMP) azurite
	scripts/ensure-postgres.sh
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

# The unit lane: every test that needs no PostgreSQL, moto, Azurite or node (conftest.py marks the rest
# `integration` from the fixtures they use).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration" $(PYTEST_ARGS)

# What CI checks besides the tests: lint and format (ruff), types (mypy on the package), the layering
# (import-linter's contracts in pyproject.toml), the definitions as `dg` loads them, and the lock files.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/dg check defs
	$(BIN)/python deploy/lock_requirements.py --check

venv: $(STAMP)

# The README's screenshots from the real system in headless Chromium: Debian's package (installed here
# if missing; root or sudo), driven by Playwright's Python client. Playwright never downloads a browser.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
screenshots: $(STAMP)
	test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }
	$(BIN)/python -c 'import playwright' 2>/dev/null || \
		$(BIN)/python -m pip install --quiet --constraint deploy/requirements.lock -e '.[screenshots]'
	$(BIN)/python scripts/screenshots.py $(SCREENSHOTS_ARGS)

# Azurite (Azure Storage's emulator, from npm) for the Azure Blob snapshot store's tests.
AZURITE := .tools/node_modules/.bin/azurite-blob
azurite: $(AZURITE)

$(AZURITE):
	npm install --prefix .tools --no-audit --no-fund azurite@3

# LocalStack (SQS, SNS and S3 as a plain process, no Docker) for the benchmarks, in a virtual environment
# of its own: its pins conflict with the project's. 4.9.2 is the newest release that runs on Python 3.11;
# the other pins keep its runtime importable (cbor2 6 and pyOpenSSL 24.3 removed what it uses).
LOCALSTACK_PYTHON ?= $(PYTHON)
LOCALSTACK_VENV := .tools/localstack-venv
LOCALSTACK_STAMP := $(LOCALSTACK_VENV)/.installed
localstack: $(LOCALSTACK_STAMP)

$(LOCALSTACK_STAMP):
	test -x $(LOCALSTACK_VENV)/bin/python || $(LOCALSTACK_PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet 'localstack-core[runtime]==4.9.2' 'cbor2<5.7' \
		'pyopenssl<24.3' 'cryptography<44' 'service_identity<24.3'
	touch $(LOCALSTACK_STAMP)

# The one test that needs LocalStack (left out of `make test`): it starts, provisions and stops.
localstack-test: $(STAMP) localstack
	$(BIN)/python -m pytest -m localstack jobs_orchestration_tests/devstack/test_localstack.py $(PYTEST_ARGS)

# The runtime dependencies are installed at the versions the image ships (deploy/requirements.lock), the
# test tools at the versions CI runs (requirements-test.lock); deploy/lock_requirements.py writes both.
$(STAMP): pyproject.toml deploy/requirements.lock requirements-test.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint deploy/requirements.lock \
		--constraint requirements-test.lock -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .local .dagster_home .pytest_cache .tools cdk.out

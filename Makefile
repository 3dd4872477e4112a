# The commands a newcomer needs. `make run` and `make test` work on a fresh machine with
# Python 3.11+ (and its venv module) and make; `make test` also needs PostgreSQL and Redis.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TEST_ENV := DJANGO_SETTINGS_MODULE=energycoop.settings.test

.PHONY: run test lint format bench clean

$(VENV)/.run-installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## run: the portal on http://127.0.0.1:8000 (SQLite + embedded Redis unless DATABASE_URL/REDIS_URL)
run: $(VENV)/.run-installed
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py run_portal

## test: install the test tools, check PostgreSQL and Redis answer, run the whole suite
test: $(VENV)/.dev-installed
	$(TEST_ENV) $(PY) manage.py check_services
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

## lint: the static gate (ruff, Django checks, migrations, mypy on services and selectors, the layers)
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

## bench: the performance scripts (minutes each; figures in docs/performance.md)
bench: $(VENV)/.dev-installed
	$(PY) bench/clearing.py
	$(PY) bench/settlement.py
	$(PY) bench/ledger.py
	$(PY) bench/ingest.py
	$(PY) bench/fanout.py

format: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var staticfiles .pytest_cache .mypy_cache .ruff_cache

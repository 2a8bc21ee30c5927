# Leadstream developer commands. `make help` lists them.
# Two commands do all the set-up on a fresh machine:  make demo   and   make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The first interpreter that really runs and is 3.11+ (a pyenv shim may exist
# without a working version behind it); 3.11 is what constraints.txt is tested on.
PYTHON ?= $(shell for c in python3.11 python3.12 python3.13 python3; do \
	  $$c -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { command -v $$c; break; }; \
	done)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# make stack-up BROKERS=3: a three-broker KRaft cluster on 127.0.0.1:9092,9094,9096
STACK := $(PY) -m tools stack
STACK_ENV := $(if $(BROKERS),LEADSTREAM_STACK_BROKERS=$(BROKERS))

.PHONY: help
help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Playwright drives Debian's chromium (tools/browser.py): it must never download a browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "error: no working python3.11+ found on PATH" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## create .venv and install Leadstream with its dev dependencies

.PHONY: stack-up
stack-up: $(STAMP) ## start (or reuse) Kafka + Redis on 127.0.0.1, wait until both answer (BROKERS=3: a cluster)
	$(STACK_ENV) $(STACK) up

.PHONY: stack-down
stack-down: $(STAMP) ## stop the Kafka and Redis that stack-up started (nothing else)
	$(STACK_ENV) $(STACK) down

.PHONY: stack-status
stack-status: $(STAMP) ## show whether Kafka and Redis answer, and where their logs are
	$(STACK_ENV) $(STACK) status

.PHONY: browser
browser: $(STAMP) ## install Debian's chromium where missing (the dashboard's browser tests drive it)
	$(PY) -m tools browser

.PHONY: test
test: stack-up browser lint ## set everything up, lint, and run the suite with the quick fault subset (what CI runs)
	$(PY) -m pytest -m "not faults" $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(STAMP) ## the fast tests only: no broker, no Redis
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff check + format check + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: schemas
schemas: $(STAMP) ## regenerate the JSON Schema files and the AsyncAPI document in schemas/json/
	$(PY) -m schemas.generate

.PHONY: demo
demo: stack-up ## set everything up and run the main job on the live local stack (CRM=hubspot|salesforce: and crm-sync)
	$(PY) -m tools demo $(if $(CRM),--crm $(CRM))

.PHONY: faults
faults: stack-up ## the full fault harness (kills, broker/Redis outages, rebalances, hostile input); ~20 min
	rm -f "$${FAULTS_REPORT:-.stack/faults-report.jsonl}"  # the file the harness appends to
	$(PY) -m pytest tests/faults -v $(PYTEST_ARGS) || { $(PY) -m tests.faults.report; exit 1; }
	$(PY) -m tests.faults.report

.PHONY: bench-quick
bench-quick: stack-up ## benchmark on 20k keyed + 20k unkeyed events: worker beside bare Faust agents, passthrough, pure core, latency, a burst, a 60 s soak (4 min here at 8227b15 before the soak; --help)
	$(PY) -m bench.harness --quick

.PHONY: bench
bench: stack-up ## the full benchmark (200k keyed + 100k unkeyed events, 60 s burst at 10k/s, 1M seeded leads; 32 min here at 359a536, 43 min at c0b5728 on a busier machine)
	$(PY) -m bench.harness

.PHONY: clean
clean: ## remove caches (keeps .venv and .stack)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info

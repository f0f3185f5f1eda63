# callpulse — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

export CALLPULSE_KAFKA_PORT ?= 19092
export CALLPULSE_PG_PORT ?= 15432
export CALLPULSE_TEST_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(CALLPULSE_KAFKA_PORT)
export CALLPULSE_TEST_DATABASE_URL ?= postgresql+asyncpg://callpulse:callpulse@127.0.0.1:$(CALLPULSE_PG_PORT)/callpulse_test
# `make test` also runs the end-to-end and worker tests on Kafka 4.x: a second broker, 10 ports up.
KAFKA4_VERSION := 4.4.0
CALLPULSE_KAFKA4_PORT ?= $(shell expr $(CALLPULSE_KAFKA_PORT) + 10)
CALLPULSE_KAFKA4_DIR ?= $(or $(CALLPULSE_KAFKA_DIR),$(CURDIR)/.cache/kafka)-$(KAFKA4_VERSION)
KAFKA4 := CALLPULSE_KAFKA_VERSION=$(KAFKA4_VERSION) CALLPULSE_KAFKA_PORT=$(CALLPULSE_KAFKA4_PORT) \
	CALLPULSE_KAFKA_CONTROLLER_PORT=$(shell expr $(CALLPULSE_KAFKA4_PORT) + 1) \
	CALLPULSE_KAFKA_DIR=$(CALLPULSE_KAFKA4_DIR)
KAFKA4_TESTS := tests/e2e/test_distributed.py tests/integration/aggregator/test_workers.py

.PHONY: help install lock run demo test unit lint fmt schemas infra deploy-tools up down chaos chaos-cluster bench clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

# Every Python package comes from requirements.lock (pinned, hashed; `make lock` writes it), then
# callpulse itself is installed editable without dependencies or build isolation; `pip check`
# fails when pyproject.toml asks for a package the lock does not have (run `make lock`).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install callpulse with its dev tools, all from requirements.lock

# uv resolves for every platform and Python >= 3.11 and keeps the pins already in the lock;
# `make lock LOCK_ARGS=--upgrade` moves everything to the newest allowed versions.
lock: ## Regenerate requirements.lock (every Python dependency, pinned with hashes) from pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install -q "$$(grep -o '^uv==[^ ]*' requirements.lock)"
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes --custom-compile-command 'make lock' -o requirements.lock --quiet $(LOCK_ARGS)

run: $(STAMP) ## Run callpulse embedded: one process, SQLite, in-process bus, on :8000 (PORT=8001 for another)
	$(BIN)/callpulse run --port $(PORT)

demo: $(STAMP) ## Run embedded mode with a live floor of 50 named reps, targets and alert rules; prints a wallboard link
	$(BIN)/callpulse run --port $(PORT) --demo

infra: ## Start the local Kafka and PostgreSQL (installed on first use)
	deploy/local/apt-deps.sh
	deploy/local/kafka.sh start
	deploy/local/postgres.sh start

# The checkers of tests/deploy that no Debian package has: kustomize (Go module proxy, into
# .cache/deploy-tools/bin) and the official AsyncAPI parser (npm, tests/deploy/package-lock.json).
KUSTOMIZE_VERSION := v5.5.0
KUSTOMIZE_STAMP := .cache/deploy-tools/kustomize-$(KUSTOMIZE_VERSION)
deploy-tools: $(KUSTOMIZE_STAMP) tests/deploy/node_modules/.package-lock.json ## Install kustomize and the AsyncAPI parser for tests/deploy

$(KUSTOMIZE_STAMP):
	GOBIN=$(CURDIR)/.cache/deploy-tools/bin go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	@touch $@

tests/deploy/node_modules/.package-lock.json: tests/deploy/package.json tests/deploy/package-lock.json
	npm ci --prefix tests/deploy --ignore-scripts --no-audit --no-fund --loglevel=error

test: $(STAMP) infra deploy-tools lint ## Install everything, start Kafka and PostgreSQL, run lint and every test
	$(KAFKA4) deploy/local/kafka.sh start
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	CALLPULSE_TEST_KAFKA_BOOTSTRAP=127.0.0.1:$(CALLPULSE_KAFKA4_PORT) \
		$(BIN)/pytest -q -p no:cacheprovider $(KAFKA4_TESTS)

unit: $(STAMP) ## Run only the unit tests (no Kafka or PostgreSQL needed)
	$(BIN)/pytest -q tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, ruff format --check, mypy --strict, import-linter, stale JSON Schema check, vulture
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy schemas services
	$(BIN)/lint-imports
	$(BIN)/python -m schemas.generate --check
# vulture: paths, confidence and decorators in pyproject.toml [tool.vulture], names in
# vulture_whitelist.py
	$(BIN)/vulture

fmt: $(STAMP) ## Format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

schemas: $(STAMP) ## Regenerate schemas/json from the pydantic models, and README's settings table
	$(BIN)/python -m schemas.generate
	$(BIN)/python -m services.kit.settings_doc

up: $(STAMP) infra ## Start Kafka, PostgreSQL, ingest, aggregator and api as background processes
	deploy/local/services.sh start

down: ## Stop everything `make up` started (by pid)
	-deploy/local/services.sh stop
	-deploy/local/kafka.sh stop
	-$(KAFKA4) deploy/local/kafka.sh stop
	-deploy/local/postgres.sh stop

chaos: $(STAMP) infra ## SIGKILL ingest, workers, API and broker under live traffic; exact KPIs or exit 1
	$(BIN)/python -m tests.chaos.run $(CHAOS_ARGS)

chaos-cluster: $(STAMP) infra ## make chaos on 3 brokers (replication 3, min.insync 2), each node SIGKILLed in turn
	$(BIN)/python -m tests.chaos.run --brokers 3 $(CHAOS_ARGS)

bench: $(STAMP) infra ## Run the benchmark suite; writes bench/results/
	$(BIN)/python -m bench.run

# tests/soak/run.py: its own broker (CALLPULSE_SOAK_KAFKA_PORT, default 19192, in .cache/kafka-soak),
# fresh topics per run; results in tests/soak/results/. SOAK_ARGS="--runs 15 --disable-fixes": the control.
soak: $(STAMP) ## 60 randomised two-worker fault runs (kills, recovery, scale, SIGSTOP, broker, poison); exit 1 on a lost offset or double count
	$(BIN)/python -m tests.soak.run $(SOAK_ARGS)

clean: ## Remove the venv and caches (keeps .cache/ jars and data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

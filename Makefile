# Opply ordering backend. `make run` for a first look, `make test` before every push.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: help install run migrate demo lint format test test-unit test-integration fuzz bench bench-webhooks bench-quick \
        build up down logs clean demo-local lock image-test stack-up stack-down stack-restart \
        stack-status stack-test clients-test stack-upgrade deploy-lint

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the package with its dev tools

migrate: install ## apply the database migrations (DATABASE_URL, default SQLite in instance/)
	$(BIN)/opply db upgrade

demo-local: install ## load the demo catalogue and demo users into DATABASE_URL (default SQLite)
	$(BIN)/opply demo load

run: install ## migrate, load demo data and serve on :$(PORT) (SQLite unless DATABASE_URL is set)
	$(BIN)/opply db upgrade
	$(BIN)/opply demo load
	@echo "Serving on http://127.0.0.1:$(PORT)  (API docs: http://127.0.0.1:$(PORT)/docs/)"
	@echo "Webhooks are delivered by an 'opply worker' beside it (stopped with the server)"
	$(BIN)/opply worker & worker=$$!; trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/gunicorn --config gunicorn.conf.py --bind 0.0.0.0:$(PORT) opply.entrypoints.wsgi:app

lint: install ## ruff, format check, mypy and the import-linter architecture contracts
	$(BIN)/ruff check src tests bench stack docker clients
	$(BIN)/ruff format --check src tests bench stack docker clients
	$(BIN)/mypy
	$(BIN)/mypy docker/image_test.py
	$(BIN)/lint-imports

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests bench stack docker clients
	$(BIN)/ruff format src tests bench stack docker clients

test: lint ## lint, then every test (PostgreSQL: TEST_DATABASE_URL; stack: a running stack); `make fuzz` apart
	$(BIN)/python -m pytest -m "not fuzz"

test-unit: install
	$(BIN)/python -m pytest tests/unit

test-integration: install
	$(BIN)/python -m pytest tests/integration

fuzz: install ## schemathesis against /openapi.json: >= 1,000 generated requests, found failures replayed first
	FUZZ_MIN_CASES=1000 $(BIN)/python -m pytest -m fuzz tests/fuzz -q

# --- the container stack (docker-compose.yml, configured by .env: cp example.env .env) ---------
COMPOSE ?= docker compose

build: ## build the app image (needs .env: cp example.env .env)
	$(COMPOSE) build

up: ## start PostgreSQL and the app on :8000 in the background, migrated and healthy
	$(COMPOSE) up --detach --wait
	@echo "Serving on http://127.0.0.1:$${PORT:-8000}  (API docs: /docs/, metrics: /metrics)"

down: ## stop the stack (the database volume is kept; `docker compose down -v` drops it)
	$(COMPOSE) down

logs: ## follow the app's JSON logs
	$(COMPOSE) logs --follow app

demo: ## load the demo catalogue and demo users into the compose database
	$(COMPOSE) run --rm app opply demo load

lock: install ## pin the runtime dependencies the image installs (requirements.lock)
	$(BIN)/python docker/lock_requirements.py requirements.lock

clients-test: install ## redocly lint, spec validation and three generated clients through the mobile flow, live on a throwaway PostgreSQL (needs Node 20.19+)
	$(BIN)/python clients/run.py

image-test: install ## build the Dockerfile with Podman on a debootstrap base, run it on PostgreSQL (root, 2 GB of disk)
	$(BIN)/python docker/image_test.py

bench: install ## load-test the service beside a bare handler and its pgbench ceiling (~6 min); BENCH_TARGET=stack for the stack
	$(BIN)/python bench/run.py

bench-webhooks: install ## one opply worker delivering to a local receiver: events/s and commit -> first byte (TEST_DATABASE_URL's server)
	$(BIN)/python bench/webhooks.py

bench-quick: install ## every bench scenario for a second or two: does the bench work (figures mean nothing)
	$(BIN)/python bench/run.py --quick

# --- the local stack: 2 instances behind HAProxy, PgBouncer, Redis; no Docker (stack/stack.py) ---
# stack-up and stack-restart run in the virtualenv `install` makes (gunicorn and opply are there).
# stack-down and stack-status need nothing installed, so they also work where stack-up failed
# half-way: they take the virtualenv's Python if there is one, chosen by the shell when the recipe
# runs (a make variable fixed when make read this file chose before `install` made .venv).
STACK_ANY_PYTHON = "$$(test -x $(BIN)/python && echo $(BIN)/python || echo $(PYTHON))"

stack-up: install ## HAProxy :8080 -> app :8001 and :8002 -> PgBouncer :6432 -> PostgreSQL; Redis for limits
	$(BIN)/python stack/stack.py up

stack-down: ## stop exactly what stack-up started (the PIDs in .stack/pids)
	$(STACK_ANY_PYTHON) stack/stack.py down

stack-restart: install ## restart the instances one at a time (drain, graceful stop, start, ready, re-enable)
	$(BIN)/python stack/stack.py restart

stack-status: ## what runs, and HAProxy's view of the instances
	$(STACK_ANY_PYTHON) stack/stack.py status

stack-test: install ## the black-box suite through the running stack (make stack-up first)
	STACK_REQUIRED=1 $(BIN)/python -m pytest -m stack tests/stack

stack-upgrade: install ## start the stack on FROM=<git ref>, keep customers ordering, migrate, roll onto this checkout (default FROM: deploy/upgrade-from)
	$(BIN)/python stack/upgrade.py $(FROM)

# --- the AWS deployment (deploy/aws/): linted here, deployed by hand (docs/deployment.md) --------
# cfn-lint and checkov live in a virtualenv of their own: checkov pins many libraries, and those
# pins would fight the app's.
DEPLOY_VENV ?= .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed

$(DEPLOY_STAMP): deploy/requirements.txt
	@test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --requirement deploy/requirements.txt
	@touch $(DEPLOY_STAMP)

deploy-lint: $(DEPLOY_STAMP) ## cfn-lint (0 errors, 0 warnings) and checkov (0 failed checks) on deploy/aws/
	$(DEPLOY_VENV)/bin/cfn-lint --non-zero-exit-code informational deploy/aws/*.yaml
	$(DEPLOY_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation --directory deploy/aws

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis clients/node_modules \
	       clients/generated

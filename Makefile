# Opply ordering backend. `make run` for a first look, `make test` before every push.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: help install run migrate demo lint format test test-unit test-integration fuzz bench \
        build up down logs clean

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

demo: install ## load the demo catalogue and demo users
	$(BIN)/opply demo load

run: install ## migrate, load demo data and serve on :$(PORT) (SQLite unless DATABASE_URL is set)
	$(BIN)/opply db upgrade
	$(BIN)/opply demo load
	@echo "Serving on http://127.0.0.1:$(PORT)  (API docs: http://127.0.0.1:$(PORT)/docs/)"
	$(BIN)/gunicorn --config gunicorn.conf.py --bind 0.0.0.0:$(PORT) opply.entrypoints.wsgi:app

lint: install ## ruff, format check, mypy and the import-linter architecture contracts
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

test: lint ## lint, then every test (PostgreSQL ones need TEST_DATABASE_URL)
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest tests/unit

test-integration: install
	$(BIN)/python -m pytest tests/integration

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache .hypothesis

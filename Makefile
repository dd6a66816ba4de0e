# Every target installs what it needs first: a fresh clone needs only `make demo` or
# `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test unit lint bench services-up services-down clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

## setup: Python packages, system tools (java, mvn, Postgres, bubblewrap), services, migrations
setup: $(INSTALLED)
	$(BIN)/elevate setup

## demo: a sample contest through the whole pipeline; ARGS="--candidates 500" to change it
demo: setup
	$(BIN)/elevate demo $(ARGS)

## test: lint, types, then every test on the real services
test: setup lint
	$(BIN)/pytest

## unit: the tests that need no service
unit: $(INSTALLED)
	$(BIN)/pytest tests/unit

## lint: ruff (lint and format) and mypy
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: the ingest benchmark (save endpoint vs a bare ASGI endpoint)
bench: setup
	$(BIN)/elevate bench ingest $(ARGS)

services-up: $(INSTALLED)
	$(BIN)/elevate services up

services-down: $(INSTALLED)
	$(BIN)/elevate services down

## clean: stop the local services and remove their data and the virtualenv
clean:
	-$(BIN)/elevate services down
	rm -rf .elevate $(VENV)

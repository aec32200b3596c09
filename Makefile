# The project's entry points. Everything runs as root on Debian 12 (see README).
#   make up      install what is missing, start the whole local stack (Ctrl-C stops it)
#   make test    install, build pipeline images, run the whole suite against a test stack
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help install up down test lint images clean compose-config compose-test bench-fleet

help:
	@echo "make up      start the local stack on :8000 (installs what is missing first)"
	@echo "make down    stop a running dev stack"
	@echo "make test    run the whole test suite (starts its own stack on ports +100)"
	@echo "make lint    ruff check, ruff format --check, mypy, import contracts (lint-imports)"
	@echo "make images  seed the base image, build the pipeline and api/worker images"
	@echo "make compose-config  validate compose.yml with .env.example"
	@echo "make compose-test    bring compose.yml up for real (local images) and run tasks through it"
	@echo "make bench-fleet     worker-loss recovery and 1 vs 2 worker throughput (test stack)"
	@echo "make clean   stop both stacks and delete the test stack's data (.stack-test/)"

install:
	@bash scripts/install.sh

up: install
	$(PY) -m devstack up --profile dev

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack down --profile dev; fi

images: install
	$(PY) -m devstack images

# Docker Compose v2, built from its Go module by scripts/install.sh (pin in scripts/pins.env).
COMPOSE := .bin/docker-compose

compose-config: install
	$(COMPOSE) -f compose.yml --env-file .env.example config -q
	$(COMPOSE) -f compose.yml --env-file .env.example --profile gpu --profile images config -q

# compose.yml up for real with deploy/compose.local.yml's locally built stand-ins for registry
# images, on the test stack's Docker engine; `make test` runs it with the rest of the suite.
compose-test: install
	$(PY) -m devstack images --profile test
	$(PY) -m pytest tests/integration/deploy/test_compose_up.py $(PYTEST_ARGS)

# Needs a running test stack (python -m devstack up --profile test) and root.
bench-fleet: install
	$(PY) -m bench.fleet

# Images (pipelines and the api/worker images) are built before pytest (not inside the stack fixture) so that their build output is
# visible here and the fixture's start stays short. pytest's exit 5 ("no tests ran") fails too.
test: install
	$(PY) -m devstack images --profile test
	@rc=0; $(PY) -m pytest tests $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy orchestrator hooks worker pipelines devstack tests bench
	.venv/bin/lint-imports

clean:
	-@if [ -x $(PY) ]; then $(PY) -m devstack down --profile dev; \
	  $(PY) -m devstack down --profile test; fi
	rm -rf .stack-test

# The project's entry points. Everything runs as root on Debian 12 (see README).
#   make up      install what is missing, start the whole local stack (Ctrl-C stops it)
#   make test    install, build pipeline images, run the whole suite against a test stack
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help install up down test lint images clean

help:
	@echo "make up      start the local stack on :8000 (installs what is missing first)"
	@echo "make down    stop a running dev stack"
	@echo "make test    run the whole test suite (starts its own stack on ports +100)"
	@echo "make lint    ruff + mypy"
	@echo "make images  seed the base image and build the pipeline images"
	@echo "make clean   stop both stacks and delete the test stack's data (.stack-test/)"

install:
	@bash scripts/install.sh

up: install
	$(PY) -m orchestrator.localstack up --profile dev

down:
	@if [ -x $(PY) ]; then $(PY) -m orchestrator.localstack down --profile dev; fi

images: install
	$(PY) -m orchestrator.localstack images

# Images are built before pytest (not inside the stack fixture) so that their build output is
# visible here and the fixture's start stays short. pytest's exit 5 ("no tests ran") fails too.
test: install
	$(PY) -m orchestrator.localstack images --profile test
	@rc=0; $(PY) -m pytest tests $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	exit $$rc

lint: install
	.venv/bin/ruff check .
	.venv/bin/mypy orchestrator hooks worker pipelines tests

clean:
	-@if [ -x $(PY) ]; then $(PY) -m orchestrator.localstack down --profile dev; \
	  $(PY) -m orchestrator.localstack down --profile test; fi
	rm -rf .stack-test

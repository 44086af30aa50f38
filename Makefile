# dsxir-checkpoint: every task a developer or CI runs.
# Everything is installed from a fresh clone by these targets (pinned versions,
# lock files); nothing is taken from outside the repository but the registries.
#
# One fragment per component in mk/: proto.mk (buf), python.mk (the Python
# library, store backends, service and CLI), demo.mk, go.mk, typescript.mk,
# java.mk, rust.mk, conformance.mk, dist.mk (packages, installed outside the
# repository by test-install). Each appends its targets to the lists
# below. A target with a `## text` comment is public: `make help` lists it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
BUF := tools/node_modules/.bin/buf

GENERATE_TARGETS :=
GENERATED_PATHS :=
LINT_TARGETS :=
TEST_TARGETS :=
TESTEE_TARGETS :=
include mk/proto.mk mk/python.mk mk/demo.mk mk/go.mk mk/typescript.mk mk/java.mk mk/rust.mk mk/conformance.mk mk/dist.mk

.PHONY: help generate check-generated lint test clean

help: ## this list
	@awk -F ':.*## ' '/^[a-zA-Z0-9_-]+:.*## / { printf "  make %-22s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

generate: $(GENERATE_TARGETS) ## regenerate all code from proto/

# Regenerates everything and fails when that changed the tree.
check-generated: generate ## fail when generated code or vectors are stale
	@if [ -n "$$(git status --porcelain -- $(GENERATED_PATHS))" ]; then \
	  git status --porcelain -- $(GENERATED_PATHS); \
	  echo "generated code is stale: run 'make generate' and commit"; exit 1; fi
	$(PY) tests/vectors/generate.py --check
	$(PY) tests/vectors/generate_store.py --check
	$(PY) tests/vectors/hostile/generate.py --check
	$(PY) tests/vectors/delta/generate.py --check
	@echo "generated code and vectors are up to date"

lint: $(LINT_TARGETS) ## buf lint/breaking/format, ruff and mypy

test: lint check-generated $(TEST_TARGETS) test-conformance ## lint, generated-code check and every test in every language

clean: ## remove the virtualenvs and installed tools
	rm -rf $(VENV) $(LOWEST_VENV) tools/node_modules dist

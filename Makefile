# dsxir-checkpoint: every task a developer or CI runs.
# Everything is installed from a fresh clone by these targets (pinned versions,
# lock files); nothing is taken from outside the repository but the registries.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
BUF := tools/node_modules/.bin/buf
PROTO_FILES := $(shell find proto -name '*.proto' | sort)
PY_GEN_DIR := python

# Per-language fragments (mk/*.mk) append to these lists.
GENERATE_TARGETS := generate-python
GENERATED_PATHS := python/dsxir/optimizer_session/v1
TEST_TARGETS := test-python test-protobuf-lowest
TESTEE_TARGETS :=
include $(sort $(wildcard mk/*.mk))

.PHONY: help setup tools generate generate-python check-generated lint test test-python test-conformance test-protobuf-lowest bench clean

help:
	@echo "make demo             crash-and-resume demo (the main job)"
	@echo "make test             lint, check-generated and every test in every language"
	@echo "make setup            .venv with the package installed editable"
	@echo "make generate         regenerate all code from proto/"
	@echo "make check-generated  fail when generated code is stale"
	@echo "make bench            speed and memory ratios against pickle/json"
	@echo "make bench-service    commits/s and latency of the gRPC service (file, PostgreSQL)"
	@echo "make soak             1,000 kill-9 rounds against a committing process"

$(VENV)/.installed: python/pyproject.toml python/requirements-lock.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r python/requirements-lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e 'python[dev]'
	touch $@

setup: $(VENV)/.installed

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tools: tools/node_modules/.installed

generate: $(GENERATE_TARGETS)

generate-python: setup
	rm -f $(PY_GEN_DIR)/dsxir/optimizer_session/v1/*_pb2.py $(PY_GEN_DIR)/dsxir/optimizer_session/v1/*_pb2.pyi
	$(PY) -m grpc_tools.protoc -Iproto \
	  --python_out=$(PY_GEN_DIR) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=$(PY_GEN_DIR) \
	  $(PROTO_FILES)

# Regenerates everything and fails when that changed the tree.
check-generated: generate
	@if [ -n "$$(git status --porcelain -- $(GENERATED_PATHS))" ]; then \
	  git status --porcelain -- $(GENERATED_PATHS); \
	  echo "generated code is stale: run 'make generate' and commit"; exit 1; fi
	$(PY) tests/vectors/generate.py --check
	@echo "generated code and vectors are up to date"

lint: setup tools
	$(BUF) lint
	$(BUF) breaking --against tests/schema/v1.0.binpb
	$(BUF) format --diff --exit-code
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	cd python && ../$(BIN)/mypy dsxir

test-python: setup tools
	$(BIN)/pytest -q tests/python

# The lowest protobuf runtime the generated code supports (python/pyproject.toml:
# protobuf>=7.35.1,<8); test-python runs on the highest, pinned in the lock file.
PROTOBUF_LOWEST := 7.35.1
LOWEST_VENV := .venv-protobuf-lowest

$(LOWEST_VENV)/.installed: python/pyproject.toml python/requirements-lock.txt
	$(PYTHON) -m venv $(LOWEST_VENV)
	sed 's/^protobuf==.*/protobuf==$(PROTOBUF_LOWEST)/' python/requirements-lock.txt > $(LOWEST_VENV)/requirements.txt
	$(LOWEST_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(LOWEST_VENV)/requirements.txt
	$(LOWEST_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e python
	touch $@

test-protobuf-lowest: $(LOWEST_VENV)/.installed
	$(LOWEST_VENV)/bin/python -c 'import google.protobuf as p; assert p.__version__ == "$(PROTOBUF_LOWEST)", p.__version__'
	$(LOWEST_VENV)/bin/pytest -q tests/python/test_terms.py tests/python/test_checkpoint.py \
	  tests/python/test_decode.py tests/python/test_vectors.py tests/python/test_trainset.py \
	  tests/python/test_protoc.py

# Every language's testee against the vectors and random input (tests/conformance).
test-conformance: setup $(TESTEE_TARGETS)
	$(BIN)/pytest -q tests/conformance

test: lint check-generated $(TEST_TARGETS) test-conformance

bench: setup
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) $(LOWEST_VENV) tools/node_modules

# The Python package (python/): the format library, every store backend, the
# gRPC service and the command line, with the optional C accelerator
# (python/dsxir/_accel.c, built in place by the editable install, pure-Python
# fallback when it cannot build). Dependencies are pinned by
# python/requirements-lock.txt.
#
# The tests start their own PostgreSQL 15 (initdb + pg_ctl as a non-root user,
# in a temporary folder, on a unix socket and a private loopback port) and stop
# it afterwards; SERVICE_PG_BIN tells them where the binaries are.

PY_GEN_DIR := python
SERVICE_PROTO := proto/dsxir/checkpoint_store/v1/service.proto
SERVICE_PG_BIN ?= /usr/lib/postgresql/15/bin
export SERVICE_PG_BIN
# The lowest protobuf runtime the generated code supports (python/pyproject.toml:
# protobuf>=7.35.1,<8); test-python runs on the highest, pinned in the lock file.
PROTOBUF_LOWEST := 7.35.1
LOWEST_VENV := .venv-protobuf-lowest

GENERATE_TARGETS += generate-python
GENERATED_PATHS += python/dsxir/optimizer_session/v1 python/dsxir/checkpoint_store/v1
LINT_TARGETS += lint-python
TEST_TARGETS += test-python test-pure-python test-protobuf-lowest

.PHONY: setup generate-python lint-python test-python test-pure-python test-protobuf-lowest \
  test-service postgres bench bench-service

# A changed extension source re-runs the editable install, which rebuilds it.
$(VENV)/.installed: python/pyproject.toml python/requirements-lock.txt python/setup.py python/dsxir/_accel.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r python/requirements-lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e 'python[dev]'
	touch $@

setup: $(VENV)/.installed ## .venv with the package installed editable (and its C accelerator)

generate-python: setup ## *_pb2.py/.pyi of every proto, *_pb2_grpc.py/.pyi of the service
	rm -f $(PY_GEN_DIR)/dsxir/*/v1/*_pb2.py $(PY_GEN_DIR)/dsxir/*/v1/*_pb2.pyi \
	  $(PY_GEN_DIR)/dsxir/*/v1/*_pb2_grpc.py $(PY_GEN_DIR)/dsxir/*/v1/*_pb2_grpc.pyi
	$(PY) -m grpc_tools.protoc -Iproto \
	  --python_out=$(PY_GEN_DIR) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=$(PY_GEN_DIR) \
	  $(PROTO_FILES)
	$(PY) -m grpc_tools.protoc -Iproto \
	  --grpc_python_out=$(PY_GEN_DIR) \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=$(PY_GEN_DIR) \
	  $(SERVICE_PROTO)

lint-python: setup ## ruff check, ruff format --check and mypy --strict
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	cd python && ../$(BIN)/mypy dsxir

# Debian's PostgreSQL 15 (the tests need initdb, pg_ctl and postgres).
postgres: ## install PostgreSQL 15 from Debian when pg_ctl is missing
	@if [ ! -x $(SERVICE_PG_BIN)/pg_ctl ]; then \
	  echo "installing postgresql-15 from Debian"; \
	  apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15; \
	fi
	@$(SERVICE_PG_BIN)/postgres --version

test-python: setup tools postgres ## the whole Python suite, with the C accelerator
	$(BIN)/pytest -q tests/python

test-pure-python: setup tools postgres ## the whole Python suite again without it (DSXIR_PURE_PYTHON=1)
	DSXIR_PURE_PYTHON=1 $(BIN)/pytest -q tests/python

$(LOWEST_VENV)/.installed: python/pyproject.toml python/requirements-lock.txt
	$(PYTHON) -m venv $(LOWEST_VENV)
	sed 's/^protobuf==.*/protobuf==$(PROTOBUF_LOWEST)/' python/requirements-lock.txt > $(LOWEST_VENV)/requirements.txt
	$(LOWEST_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(LOWEST_VENV)/requirements.txt
	$(LOWEST_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e python
	touch $@

test-protobuf-lowest: $(LOWEST_VENV)/.installed tools ## the format's suite (tests/python/format) on protobuf 7.35.1
	$(LOWEST_VENV)/bin/python -c 'import google.protobuf as p; assert p.__version__ == "$(PROTOBUF_LOWEST)", p.__version__'
	$(LOWEST_VENV)/bin/pytest -q tests/python/format

test-service: setup postgres ## the store and service tests alone
	$(BIN)/pytest -q tests/python/store tests/python/service

bench: setup postgres ## speed and memory ratios against pickle/json, commit cost per trial vs Optuna, decode peak memory
	$(PY) bench/bench.py
	$(PY) bench/commits.py
	$(PY) bench/decode_memory.py
	$(PY) bench/columns.py

bench-service: setup postgres ## commits/s and latency of the gRPC service, file and PostgreSQL
	$(PY) bench/service.py

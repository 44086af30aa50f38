# The gRPC CheckpointStoreService and the PostgreSQL store (docs/service.md).
#
# generate-service-python  *_pb2_grpc.py/.pyi for proto/.../service.proto (the
#                          top Makefile's generate-python writes *_pb2.py/.pyi)
# service-postgres         PostgreSQL 15 from Debian when pg_ctl is missing
# test-service             the service and PostgreSQL tests alone
# bench-service            commits/s and commit latency, file and PostgreSQL
#
# The tests start their own PostgreSQL (initdb + pg_ctl as a non-root user, in a
# temporary folder, on a unix socket and a private loopback port) and stop it
# afterwards; SERVICE_PG_BIN tells them where the binaries are.

SERVICE_PROTO := proto/dsxir/optimizer_session/v1/service.proto
SERVICE_PG_BIN ?= /usr/lib/postgresql/15/bin
export SERVICE_PG_BIN

GENERATE_TARGETS += generate-service-python
# test-python runs tests/python, which holds the service and PostgreSQL tests.
test-python: service-postgres

.PHONY: generate-service-python service-postgres test-service bench-service

generate-service-python: setup
	rm -f $(PY_GEN_DIR)/dsxir/optimizer_session/v1/*_pb2_grpc.py \
	  $(PY_GEN_DIR)/dsxir/optimizer_session/v1/*_pb2_grpc.pyi
	$(PY) -m grpc_tools.protoc -Iproto \
	  --grpc_python_out=$(PY_GEN_DIR) \
	  --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=$(PY_GEN_DIR) \
	  $(SERVICE_PROTO)

# Debian's PostgreSQL 15 (the tests need initdb, pg_ctl and postgres).
service-postgres:
	@if [ ! -x $(SERVICE_PG_BIN)/pg_ctl ]; then \
	  echo "installing postgresql-15 from Debian"; \
	  apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql-15; \
	fi
	@$(SERVICE_PG_BIN)/postgres --version

test-service: setup service-postgres
	$(BIN)/pytest -q tests/python/test_service_*.py tests/python/test_postgres_*.py

bench-service: setup service-postgres
	$(PY) -m dsxir.optimizer_session.service.bench

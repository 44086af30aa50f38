# The schema (proto/): buf from the npm package @bufbuild/buf (tools/), lint,
# format and one breaking-change baseline per proto package: the format
# (dsxir.optimizer_session.v1) and the service (dsxir.checkpoint_store.v1) are
# versioned apart, each against tests/schema/<package>-v1.0.binpb.

PROTO_PACKAGES := optimizer_session checkpoint_store
PROTO_FILES := $(shell find proto -name '*.proto' | sort)

LINT_TARGETS += lint-proto

.PHONY: tools lint-proto

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tools: tools/node_modules/.installed ## buf and protoc-gen-es from tools/package-lock.json

lint-proto: tools ## buf lint, buf format and buf breaking against each package's baseline
	$(BUF) lint
	$(BUF) format --diff --exit-code
	$(foreach package,$(PROTO_PACKAGES),$(BUF) breaking --against tests/schema/$(package)-v1.0.binpb;)

# The cross-language conformance suite (tests/conformance): every language's
# testee gets the golden vectors, the hostile corpus, every prefix and bit flip
# of every valid vector, random valid checkpoints, random trainsets and the
# differential fuzz, and must answer exactly as every other language does.
# The harness speaks to each testee's `serve` loop in the protocol of
# tests/conformance/proto/dsxir/conformance/v1/testee.proto; its Python code
# is generated into tests/conformance/gen/ (outside the installed package).

CONFORMANCE_PROTO := tests/conformance/proto/dsxir/conformance/v1/testee.proto
CONFORMANCE_GEN := tests/conformance/gen
# make fuzz: how many inputs, from which seed (make fuzz FUZZ_INPUTS=5000 FUZZ_SEED=7).
FUZZ_INPUTS ?= 1000000
FUZZ_SEED ?= 1

GENERATE_TARGETS += generate-conformance
GENERATED_PATHS += $(CONFORMANCE_GEN)

.PHONY: generate-conformance test-conformance fuzz

generate-conformance: setup ## the harness's Python code of the testee protocol (tests/conformance/gen/)
	rm -rf $(CONFORMANCE_GEN)/dsxir
	mkdir -p $(CONFORMANCE_GEN)
	$(PY) -m grpc_tools.protoc -Itests/conformance/proto \
	  --python_out=$(CONFORMANCE_GEN) \
	  --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=$(CONFORMANCE_GEN) \
	  $(CONFORMANCE_PROTO)

test-conformance: setup $(TESTEE_TARGETS) ## every language's testee against the vectors, the hostile corpus and the differential fuzz
	$(BIN)/pytest -q tests/conformance

fuzz: setup $(TESTEE_TARGETS) ## the differential fuzz, 1,000,000 inputs through every language's serve loop (FUZZ_INPUTS, FUZZ_SEED)
	$(PY) tests/conformance/fuzz.py --inputs $(FUZZ_INPUTS) --seed $(FUZZ_SEED)

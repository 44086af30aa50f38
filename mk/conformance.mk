# The cross-language conformance suite (tests/conformance): every language's
# testee gets the golden vectors, random valid checkpoints, random trainsets
# and corrupted input, and must answer as Python does.

.PHONY: test-conformance

test-conformance: setup $(TESTEE_TARGETS) ## every language's testee against the vectors and random input
	$(BIN)/pytest -q tests/conformance

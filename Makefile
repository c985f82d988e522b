# `make demo`: set up .venv (first time only) and run the demo pretraining on CPU.
# `make test`: set up .venv and run the fast test suite (`make test-all`: with the slow tier).
# `make lint`: ruff (lint + format check) and mypy on src/smile.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.smile-installed
# The torch build to install; override for another platform, e.g. TORCH_SPEC="torch torchvision".
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=
# One torch/OpenMP thread per test process: tiny tensors gain nothing from a second thread, and two
# threads spinning against another job on a small machine slow a test many times over. A test that
# needs more threads raises the count for its own duration (the `threads` fixture in tests/conftest.py).
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: setup demo test test-all test-gpu lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) train.py experiment=demo

test: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

test-all: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -m "not gpu" $(PYTEST_ARGS)

test-gpu: $(STAMP)
	$(TEST_ENV) $(PY) -m pytest -m gpu $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache .mypy_cache

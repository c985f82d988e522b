"""Shared fixtures (helpers live in smile_testing.py, importable from every test folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig
from smile_testing import TINY, compose_cfg

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# One torch/OpenMP thread per test process (subprocesses the tests start inherit the variables):
# tiny tensors gain nothing from a second thread, and two threads spinning against another job on a
# 2-core machine slow a test many times over. `make test` sets the variables before Python starts;
# set_num_threads covers a bare `pytest`. A test that needs more uses `@pytest.mark.threads(n)`.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
TEST_THREADS = 1
torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _torch_threads(request: pytest.FixtureRequest):
    """One thread for every test, or ``n`` for the duration of a test marked ``threads(n)``."""
    marker = request.node.get_closest_marker("threads")
    torch.set_num_threads(marker.args[0] if marker else TEST_THREADS)
    yield
    torch.set_num_threads(TEST_THREADS)  # also undoes a test that changed the count itself


@pytest.fixture
def tiny_cfg(tmp_path):
    """Factory: a tiny CPU pretraining config in ``tmp_path/run`` plus extra overrides."""

    def make(*extra: str, out: str | Path | None = None) -> DictConfig:
        return compose_cfg([*TINY, *extra], out or tmp_path / "run")

    return make

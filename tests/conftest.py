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


@pytest.fixture
def tiny_cfg(tmp_path):
    """Factory: a tiny CPU pretraining config in ``tmp_path/run`` plus extra overrides."""

    def make(*extra: str, out: str | Path | None = None) -> DictConfig:
        return compose_cfg([*TINY, *extra], out or tmp_path / "run")

    return make


@pytest.fixture(scope="module")
def one_thread():
    """Tiny matmuls run several times faster on one thread than on two busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Carry the global RNG states in checkpoints so a resumed run draws the same random numbers."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def _numpy_state() -> dict[str, Any]:
    """numpy's MT19937 state as tensors and numbers, so ``torch.load(weights_only=True)`` reads it."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["gauss"]))


class RNGStateCheckpoint(L.Callback):
    """Saves python / numpy / torch (CPU and CUDA) RNG states; restores them on resume.

    Lightning restores weights, optimizer, scheduler and loop counters but not RNG streams, so
    drop-path or dropout draws after a resume would differ from an uninterrupted run.
    """

    key = "rng_states"

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[self.key] = {
            "python": random.getstate(),
            "numpy": _numpy_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        states: dict[str, Any] | None = checkpoint.get(self.key)
        if not states:
            return
        random.setstate(states["python"])
        _set_numpy_state(states["numpy"])
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

"""Clips-per-second meter shown in the progress bar and logged."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class ClipsPerSecond(L.Callback):
    """Logs ``train/clips_per_sec`` (per device) as an exponential moving average of step times.

    It measures wall time between consecutive batch ends, so data loading counts: this is the
    throughput a user gets, not the model's alone (``smile-bench`` measures that).
    """

    def __init__(self, smoothing: float = 0.9) -> None:
        self.smoothing = smoothing
        self._last: float | None = None
        self._rate: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            rate = batch["video"].shape[0] / (now - self._last)
            self._rate = rate if self._rate is None else self.smoothing * self._rate + (1 - self.smoothing) * rate
            pl_module.log("train/clips_per_sec", self._rate, prog_bar=True, batch_size=1)
        self._last = now

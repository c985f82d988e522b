"""A rich progress bar that reads the logged metrics every N batches instead of every batch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ProgressBar(RichProgressBar):
    """``RichProgressBar`` whose metric column refreshes every ``metrics_every_n_steps`` batches.

    Lightning's bar fetches ``trainer.progress_bar_metrics`` after every batch, which turns every
    logged device tensor into a Python number: one host-device sync per step on a GPU, stalling the
    queue of kernels. The bar itself still advances every ``refresh_rate`` batches; only the
    numbers next to it wait for the next multiple of ``metrics_every_n_steps`` (and the epoch end).

    Args:
        refresh_rate: Batches between redraws of the bar (as ``RichProgressBar``).
        metrics_every_n_steps: Batches between metric reads; 1 = Lightning's behaviour.
        **kwargs: Passed to ``RichProgressBar`` (``leave``, ``theme``, ...).
    """

    def __init__(self, refresh_rate: int = 1, metrics_every_n_steps: int = 50, **kwargs: Any) -> None:
        if metrics_every_n_steps < 1:
            raise ValueError(f"metrics_every_n_steps must be >= 1, got {metrics_every_n_steps}")
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self.metrics_every_n_steps = metrics_every_n_steps
        self._hold_metrics = False
        self.metric_reads = 0  # how often the logged metrics were read (tests count them)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._hold_metrics = (batch_idx + 1) % self.metrics_every_n_steps != 0
        try:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        finally:
            self._hold_metrics = False

    def _update_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._hold_metrics:
            return
        self.metric_reads += 1
        super()._update_metrics(trainer, pl_module)

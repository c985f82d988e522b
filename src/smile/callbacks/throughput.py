"""Clips-per-second meter, logged and shown in the progress bar without a per-step host sync."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class ClipsPerSecond(L.Callback):
    """Logs ``train/clips_per_sec`` (per device): clips of a window of steps over its wall time.

    It measures wall time between batch ends, so data loading counts: this is the throughput a
    user gets, not the model's alone (``smile-bench`` measures that). The rate is logged once per
    window (``every_n_steps``, default the trainer's ``log_every_n_steps``), not every step: a
    Python float logged on a GPU becomes a blocking host-to-device copy. Averaged over a window,
    the rate is also right when the host runs ahead of an asynchronous device. An epoch (or a run
    ended by ``max_steps``) shorter than the window logs its rate once at its end, so short runs
    and small datasets still report one.

    Args:
        every_n_steps: Window length in training batches; None = ``trainer.log_every_n_steps``.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._start: float | None = None
        self._clips = 0
        self._batches = 0
        self._logged_this_epoch = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._clips, self._batches = time.perf_counter(), 0, 0
        self._logged_this_epoch = False

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._clips += int(batch["video"].shape[0])
        self._batches += 1
        every = self.every_n_steps or max(1, int(trainer.log_every_n_steps))  # type: ignore[attr-defined]
        now = time.perf_counter()
        if self._batches >= every:
            self._log_window(pl_module, now)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._logged_this_epoch and self._batches:
            self._log_window(pl_module, time.perf_counter())  # the epoch was shorter than one window

    def _log_window(self, pl_module: L.LightningModule, now: float) -> None:
        """Log the clips/s of the batches since the window started, and start a new window."""
        if self._start is None or now <= self._start:
            return
        pl_module.log("train/clips_per_sec", self._clips / (now - self._start), prog_bar=True, batch_size=1)
        self._start, self._clips, self._batches = now, 0, 0
        self._logged_this_epoch = True

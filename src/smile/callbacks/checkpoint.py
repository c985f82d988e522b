"""Checkpointing that leaves the final state in ``last.ckpt`` and never saves inside a NaN streak."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint

from smile.callbacks.checkpoint_io import remove_stale_temp_files

log = logging.getLogger(__name__)


class PeriodicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that refreshes ``last.ckpt`` at the end and skips saves during a NaN streak.

    * Lightning's own class writes ``last.ckpt`` at the end only if it never wrote one, so a run
      whose length is not a multiple of ``every_n_train_steps`` would resume from an older step.
    * While the module's non-finite guard (``pl_module.nonfinite``) has a streak open, no file is
      written (periodic, last or end of training): a checkpoint written then would hold the weights
      that produced the NaNs, and be the one a re-run resumes from. :attr:`good_checkpoint` is the
      newest file written (or resumed from) with no streak open, which the guard's error names.
    * Files are written by ``AtomicCheckpointIO`` (``trainer.plugins``); partial files left by a
      writer that was killed mid-save are removed when a run starts.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.good_checkpoint: tuple[str, int] | None = None  # (path, global step)

    @property
    def good_checkpoint_text(self) -> str:
        """``<path> (step N)`` of :attr:`good_checkpoint`, or "" before the first save: for messages."""
        return f"{self.good_checkpoint[0]} (step {self.good_checkpoint[1]})" if self.good_checkpoint else ""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and stage == "fit" and self.dirpath and _is_local_file_protocol(self.dirpath):
            remove_stale_temp_files(self.dirpath)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        if trainer.ckpt_path and self.good_checkpoint is None:  # checked before the resume (smile.train)
            self.good_checkpoint = (str(trainer.ckpt_path), trainer.global_step)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = self._every_n_train_steps
        due = self._train_time_interval is not None or (every >= 1 and trainer.global_step % every == 0)
        if due and self._last_global_step_saved != trainer.global_step and self._streak_open(trainer, pl_module):
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._streak_open(trainer, pl_module, warn=False):  # saves here only follow a save this step
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._streak_open(trainer, pl_module, warn=False):
            super().on_validation_end(trainer, pl_module)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        guard = getattr(pl_module, "nonfinite", None)
        if guard is None or guard.in_row == 0:  # no sync here: the run is failing
            super().on_exception(trainer, pl_module, exception)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._streak_open(trainer, pl_module):
            return
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        if self.good_checkpoint is None or self.good_checkpoint[1] != trainer.global_step:
            self.good_checkpoint = (filepath, trainer.global_step)  # the step file before last.ckpt

    def _streak_open(self, trainer: L.Trainer, pl_module: L.LightningModule, warn: bool = True) -> bool:
        """Whether the module's newest steps were non-finite, agreed over ranks; warns when it blocks a save.

        The guard reads its device-side counters here (one sync, only when a save is due).
        """
        guard = getattr(pl_module, "nonfinite", None)
        if guard is None:
            return False
        is_open = trainer.strategy.reduce_boolean_decision(guard.streak_open(self.good_checkpoint_text), all=False)
        if is_open and warn:
            log.warning(
                "step %d: no checkpoint written, %d non-finite step(s) in a row; the newest good one stays %s",
                trainer.global_step,
                guard.in_row,
                self.good_checkpoint_text or "none",
            )
        return bool(is_open)

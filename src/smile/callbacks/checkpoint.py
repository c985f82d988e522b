"""Checkpointing that always leaves the final state in ``last.ckpt``."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class PeriodicCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that also refreshes ``last.ckpt`` when training ends.

    Lightning's own class writes ``last.ckpt`` at the end only if it never wrote one, so a run
    whose length is not a multiple of ``every_n_train_steps`` would resume from an older step.
    Files are written by Lightning's atomic save (a temporary file moved into place), so a
    ``kill -9`` never leaves a truncated checkpoint behind.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)

"""Pieces every LightningModule of the project shares: schedule length, the non-finite loss
guard and the broken-video counter."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


def schedule_length(trainer: L.Trainer, total_steps: int, schedule_epochs: float | None) -> tuple[int, float]:
    """(steps the cosine spans, optimizer steps per epoch).

    The cosine spans the run (``total_steps``) unless ``schedule_epochs`` sizes it like the
    reference's ``--epochs`` for a run that stops earlier.
    """
    batches = trainer.num_training_batches
    per_epoch = batches / trainer.accumulate_grad_batches if math.isfinite(batches) else float(total_steps)
    per_epoch = max(per_epoch, 1.0)
    return (int(round(schedule_epochs * per_epoch)) if schedule_epochs else total_steps), per_epoch


def log_skipped_videos(module: L.LightningModule, batch: dict[str, Any]) -> None:
    """Running count of broken videos the datasets passed over (``data/skipped_videos``, per device).

    Kept as a tensor on the device: no host sync in the step.
    """
    if "skipped" not in batch:
        return
    total = getattr(module, "_skipped_videos", None)
    total = batch["skipped"].sum() if total is None else total + batch["skipped"].sum()
    module._skipped_videos = total
    module.log("data/skipped_videos", total.float(), batch_size=1)


class NonFiniteLossError(RuntimeError):
    """Raised when too many consecutive steps produced a NaN/Inf loss."""


class NonFiniteGuard:
    """Skips NaN/Inf losses and fails after ``max_in_row`` consecutive ones.

    Used by every LightningModule of the project: a skipped step returns None from
    ``training_step`` (no backward, no update), and the message names the step and the last
    good checkpoint.

    Args:
        max_in_row: Consecutive non-finite losses that raise :class:`NonFiniteLossError`.
    """

    def __init__(self, max_in_row: int) -> None:
        self.max_in_row = max_in_row
        self.in_row = 0
        self.total = 0

    def check(self, loss: torch.Tensor, step: int, last_checkpoint: str = "") -> bool:
        """True if ``loss`` is finite (resets the streak); False to skip the step.

        Raises:
            NonFiniteLossError: on the ``max_in_row``-th non-finite loss in a row.
        """
        if torch.isfinite(loss).item():
            self.in_row = 0
            return True
        self.in_row += 1
        self.total += 1
        log.warning("non-finite loss at step %d: skipped (%d in a row)", step, self.in_row)
        if self.in_row >= self.max_in_row:
            raise NonFiniteLossError(
                f"{self.in_row} consecutive non-finite losses, the last at step {step}. "
                f"Last good checkpoint: {last_checkpoint or 'none written yet'}. "
                "Lower model.optimizer.lr, raise the warmup, or check the data."
            )
        return False

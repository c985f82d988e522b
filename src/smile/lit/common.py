"""Pieces every LightningModule of the project shares: the non-finite loss guard and the
broken-video counter (the optimisation path is :mod:`smile.lit.optim`)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


def log_skipped_videos(module: L.LightningModule, batch: dict[str, Any]) -> None:
    """Running counts of distinct unreadable files (``data/skipped_videos``) and of clips padded by
    repeating frames of a too-short video (``data/padded_clips``), per device.

    Kept as tensors on the device: no host sync in the step.
    """
    if "skipped" not in batch:
        return
    total = getattr(module, "_skipped_videos", None)
    total = batch["skipped"].sum() if total is None else total + batch["skipped"].sum()
    module._skipped_videos = total
    module.log("data/skipped_videos", total.float(), batch_size=1)
    if "padded" in batch:  # clips whose video was shorter than the sampling span (frames repeated)
        padded = batch["padded"].sum() + getattr(module, "_padded_clips", 0)
        module._padded_clips = padded
        module.log("data/padded_clips", padded.float(), batch_size=1)


class NonFiniteLossError(RuntimeError):
    """Raised when too many consecutive steps produced a NaN/Inf loss."""


class NonFiniteGuard:
    """Skips NaN/Inf losses and fails after ``max_in_row`` consecutive ones.

    Used by every LightningModule of the project, in one of two modes:

    * **Host mode** (the default; any optimizer): :meth:`check` reads the loss on the host every
      step (``.item()``, a host-device sync on GPU); a skipped step logs its NaN loss, then returns
      None from ``training_step`` (no backward, no update) and the error comes on the
      ``max_in_row``-th non-finite loss in a row, with the step and the newest checkpoint from
      before the streak in the message.
    * **Device mode** (:meth:`attach` to an optimizer whose ``step`` honours ``found_inf``: fused
      Adam/AdamW, as ``configure_optimizers`` builds on CUDA): no host sync in the step.
      ``training_step`` always returns the loss (backward runs, gradients may be NaN);
      :meth:`observe` records whether it is finite as a device tensor and :meth:`before_step`
      (from ``on_before_optimizer_step``) hands the flag to the optimizer as ``found_inf``,
      max-reduced over ranks, so the fused kernel leaves weights and optimizer state (moments
      and step count) untouched on every rank, exactly as GradScaler skips a step. The streak and
      total are device tensors read on the host every ``check_every`` optimizer steps and at
      the end of training (:meth:`poll`), which raises the same :class:`NonFiniteLossError`
      once a streak reached ``max_in_row``: detection lags by up to ``check_every`` steps (every
      one of them skipped by the optimizer, the weights stay those of the last finite step).
      Differences from host mode: counts are per optimizer step (with gradient accumulation, one
      non-finite micro-batch skips the whole step, its NaN gradients having reached the
      accumulated ones); the loss and batch of a skipped step are still seen by callbacks; LR
      schedulers and ``global_step`` advance in both modes; a classifier's EMA still takes its
      update towards the unchanged weights. A due checkpoint also reads the counters first
      (:meth:`streak_open`), so no file is written inside a streak in either mode.

    Args:
        max_in_row: Consecutive non-finite losses that raise :class:`NonFiniteLossError`.
        check_every: Device mode: optimizer steps between host reads of the counters.
    """

    def __init__(self, max_in_row: int, check_every: int = 50) -> None:
        if check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every}")
        self.max_in_row = max_in_row
        self.check_every = check_every
        self.in_row = 0  # host mirrors (device mode: as of the last poll)
        self.total = 0
        self._optimizer: torch.optim.Optimizer | None = None  # device mode when set
        self._pending: torch.Tensor | None = None  # bool: a non-finite loss since the last optimizer step
        self._counts: torch.Tensor | None = None  # int64 [3]: streak, total, step the streak hit max_in_row (-1)
        self._steps = 0  # optimizer steps seen in device mode

    # -- host mode --------------------------------------------------------------------------------
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
            raise self._error(self.in_row, step, last_checkpoint)
        return False

    def _error(self, in_row: int, step: int, last_checkpoint: str) -> NonFiniteLossError:
        return NonFiniteLossError(
            f"{in_row} consecutive non-finite losses, the last at step {step}. "
            f"Newest checkpoint from before the streak: {last_checkpoint or 'none written yet'}. "
            "Lower model.optimizer.lr, raise the warmup, or check the data; re-running the command "
            "resumes from that checkpoint."
        )

    def streak_open(self, last_checkpoint: str = "") -> bool:
        """Whether the newest step(s) were non-finite, so a checkpoint now would hold their weights.

        Device mode reads the counters on the host first (:meth:`poll`, one sync): call it when a
        save is due, not every step.

        Raises:
            NonFiniteLossError: device mode, if a streak reached ``max_in_row``.
        """
        if self.device_mode:
            self.poll(last_checkpoint)
        return self.in_row > 0

    # -- device mode ------------------------------------------------------------------------------
    @staticmethod
    def skips_on_device(optimizer: Any) -> bool:
        """Whether ``optimizer.step`` skips itself on ``found_inf`` (fused Adam/AdamW/SGD/Adagrad).

        That is torch's contract with GradScaler (``_step_supports_amp_scaling``): the step reads
        the ``found_inf`` attribute and, when it is 1, updates neither weights nor state.
        """
        raw = getattr(optimizer, "optimizer", optimizer)  # unwrap a LightningOptimizer
        return bool(getattr(raw, "_step_supports_amp_scaling", False))

    @property
    def device_mode(self) -> bool:
        return self._optimizer is not None

    def attach(self, optimizer: Any) -> bool:
        """Device mode for ``optimizer`` if it skips steps on the device (else host mode); returns the mode."""
        self.detach()
        if self.skips_on_device(optimizer):
            self._optimizer = getattr(optimizer, "optimizer", optimizer)
            self._steps = 0
        return self.device_mode

    def detach(self) -> None:
        """Back to host mode; the optimizer no longer carries a ``found_inf``."""
        if self._optimizer is not None and hasattr(self._optimizer, "found_inf"):
            del self._optimizer.found_inf
        self._optimizer, self._pending = None, None

    def observe(self, loss: torch.Tensor) -> None:
        """Device mode: note whether ``loss`` (of this optimizer step's micro-batches) is finite, on the device."""
        bad = ~torch.isfinite(loss.detach()).all()
        self._pending = bad if self._pending is None else self._pending | bad
        if self._counts is None:
            self._counts = torch.tensor([0, 0, -1], dtype=torch.int64, device=loss.device)

    def nonfinite_total(self) -> torch.Tensor | float:
        """Skipped steps so far, for logging: a device tensor in device mode (no sync), else a float."""
        if self.device_mode and self._counts is not None:
            return self._counts[1].float()
        return float(self.total)

    def before_step(self, step: int, last_checkpoint: str = "") -> None:
        """Device mode, right before ``optimizer.step``: set ``found_inf``, count, and poll every ``check_every``."""
        if self._optimizer is None:
            return
        if self._pending is None:  # no loss observed for this step: nothing to skip
            if hasattr(self._optimizer, "found_inf"):
                del self._optimizer.found_inf
            return
        flag = self._pending.float()  # 0-dim, 1.0 = skip: the fused kernels test found_inf == 1
        self._pending = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            if torch.distributed.get_world_size() > 1:  # gradients are shared: every rank skips together
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        # refreshed every step: read by this step only (torch's fused optimizers read a dynamic `found_inf`)
        self._optimizer.found_inf = flag  # type: ignore[attr-defined]
        bad = flag.to(torch.int64)
        assert self._counts is not None  # set by the observe() that set _pending
        streak, total, tripped = self._counts.unbind()
        streak = (streak + 1) * bad
        tripped = torch.where((tripped < 0) & (streak >= self.max_in_row), step, tripped)
        self._counts = torch.stack([streak, total + bad, tripped])
        self._steps += 1
        if self._steps % self.check_every == 0:
            self.poll(last_checkpoint)

    def poll(self, last_checkpoint: str = "") -> None:
        """Device mode: read the counters on the host (a sync), warn about new skips, raise on a full streak.

        Raises:
            NonFiniteLossError: if a streak reached ``max_in_row`` since the run began.
        """
        if self._counts is None:
            return
        streak, total, tripped = self._counts.tolist()
        if total > self.total:
            log.warning(
                "%d non-finite losses skipped since the last check (%d in all, %d in a row now)",
                total - self.total,
                total,
                streak,
            )
        self.in_row, self.total = streak, total
        if tripped >= 0:
            raise self._error(self.max_in_row, tripped, last_checkpoint)


class NonFiniteHooks:
    """Lightning hooks that drive a module's ``self.nonfinite`` (:class:`NonFiniteGuard`).

    Mixed into both LightningModules (listed before ``L.LightningModule``): attach the guard to a
    single fused optimizer at train start (device mode), hand it ``found_inf`` before every
    optimizer step, log the running count of skipped steps after every step (after the count,
    so the row of a skipped step shows it), and read the device-side streak once more when
    training ends. Messages name the newest checkpoint written before the streak, which the
    checkpoint callback tracks (it writes nothing while a streak is open).
    """

    nonfinite: NonFiniteGuard
    trainer: Any  # provided by L.LightningModule
    global_step: int  # provided by L.LightningModule
    log: Any  # provided by L.LightningModule

    def _last_checkpoint(self) -> str:
        """The newest checkpoint written with no streak open (``PeriodicCheckpoint.good_checkpoint``), for messages."""
        trainer = getattr(self, "_trainer", None)
        callback = trainer.checkpoint_callback if trainer is not None else None
        return str(getattr(callback, "good_checkpoint_text", ""))

    def guarded_loss(self, loss: torch.Tensor) -> torch.Tensor | None:
        """The step's loss for backward, or None: Lightning then skips backward and the optimizer step.

        With a fused optimizer (device mode) a non-finite step is skipped on the device with no host
        sync, so the loss always goes on; otherwise the host checks it here.
        """
        if self.nonfinite.device_mode:
            self.nonfinite.observe(loss)
            return loss
        return loss if self.nonfinite.check(loss, self.global_step, self._last_checkpoint()) else None

    def _attach_nonfinite(self) -> None:
        optimizers = self.trainer.optimizers
        if len(optimizers) == 1:  # device mode of the guard with a fused optimizer
            self.nonfinite.attach(optimizers[0])

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        self.nonfinite.before_step(self.global_step, self._last_checkpoint())

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Log ``train/nonfinite_steps`` after the step's count is in: skipped steps included, no sync."""
        self.log("train/nonfinite_steps", self.nonfinite.nonfinite_total(), batch_size=1)

    def on_train_end(self) -> None:
        try:
            self.nonfinite.poll(self._last_checkpoint())
        finally:
            self.nonfinite.detach()

"""Input-wait meter: the share of step time the device spends waiting for a batch (issue 15, item 5).

Logged once per logging window as ``data/input_wait_fraction``, with the input pipeline's clips/s
(``data/input_clips_per_sec``) next to the step's (``data/step_clips_per_sec``). After the first
window one INFO line says whether the device waits on data and, if so, which knobs to turn.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


class InputWait(L.Callback):
    """Logs ``data/input_wait_fraction`` = wait / (wait + step) per logging window.

    Timing, host side, two clock reads per step: ``on_train_batch_start`` runs once the batch has
    been fetched from the DataLoader and moved to the device, ``on_train_batch_end`` once the step
    (forward, backward, optimizer) has been issued. The **wait** of a step is the time from the
    previous step's end to its start (fetching the batch, including the host-to-device copy Lightning
    does before the hook); the **step** is the time from its start to its end. There is no per-step
    device sync: on CUDA the step's kernels may still be queued when the hook runs, so the window's
    last step calls ``torch.cuda.synchronize()`` once before its clock read; the window's total
    (wait + step) is then exact, and the split is the host's view. With pinned memory (the configs'
    ``data.pin_memory: true``) the copy does not block the host, so a host running ahead of the GPU
    blocks inside the step and a busy GPU counts as step time, not as waiting for data.

    Not counted: the first batch of every epoch (its wait is the workers' start-up), and a step after
    which a checkpoint was saved (the save would count as waiting). The time spent in validation is
    left out too: the next wait starts when validation ends.

    Rates, per device: ``data/step_clips_per_sec`` = clips / step time, what the device does when fed;
    ``data/input_clips_per_sec`` = what the input pipeline delivers: clips / wait time with
    ``num_workers=0`` (loading then runs between steps, in this process), clips / (wait + step) with
    workers (they load while the step runs; this is their rate when the device waits, a lower bound
    otherwise). Both are capped at ``max_clips_per_sec`` (a wait of zero would be infinite).

    Args:
        threshold: Wait fraction above which the INFO line says the device waits on data.
        every_n_steps: Window length in optimizer steps; None = ``trainer.log_every_n_steps``.
        max_clips_per_sec: Cap on the logged rates.
        clock: Seconds as a float (``time.perf_counter``; tests pass a fake).
    """

    def __init__(
        self,
        threshold: float = 0.1,
        every_n_steps: int | None = None,
        max_clips_per_sec: float = 1e5,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1 or None, got {every_n_steps}")
        if max_clips_per_sec <= 0:
            raise ValueError(f"max_clips_per_sec must be > 0, got {max_clips_per_sec}")
        self.threshold = threshold
        self.every_n_steps = every_n_steps
        self.max_clips_per_sec = max_clips_per_sec
        self.clock = clock
        self.reported = False  # the INFO line after the first window
        self.last: dict[str, float] = {}  # the last window's values
        self._last_end: float | None = None  # None: the next batch's wait is unknown, it is not counted
        self._start: float | None = None
        self._pending_wait = 0.0
        self._reset_window()
        self._closed_at_step = -1

    def _reset_window(self) -> None:
        self._wait, self._step, self._clips, self._batches = 0.0, 0.0, 0, 0
        self._first_step: int | None = None

    # ---- timing -------------------------------------------------------------------------------

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_end = None  # the first batch's wait includes starting the workers

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        now = self.clock()
        if self._last_end is None:
            self._start = None
        else:
            self._start, self._pending_wait = now, max(0.0, now - self._last_end)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        every = self.every_n_steps or max(1, int(trainer.log_every_n_steps))  # type: ignore[attr-defined]
        step = int(trainer.global_step)
        counted = self._start is not None
        closing = step % every == 0 and step != self._closed_at_step and (self._batches > 0 or counted)
        if closing and pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)  # once per window: the queued work ends inside the window
        end = self.clock()
        if self._start is not None:
            self._wait += self._pending_wait
            self._step += max(0.0, end - self._start)
            self._clips += _clips(batch)
            self._batches += 1
            if self._first_step is None:
                self._first_step = step
        self._last_end, self._start = end, None
        if closing:
            self._closed_at_step = step
            self._close_window(trainer, pl_module, step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._last_end is not None:
            self._last_end = self.clock()  # validation is not waiting for training data

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self._last_end = None  # a save between two steps would count as waiting: skip the next batch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._batches and not self.reported:  # the run is shorter than a window: report what there is
            self._close_window(trainer, pl_module, int(trainer.global_step))

    # ---- reporting ----------------------------------------------------------------------------

    def _close_window(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> None:
        if not self._batches:
            return
        wait, busy, clips = self._wait, self._step, self._clips
        total = wait + busy
        fraction = wait / total if total > 0 else 0.0
        cap = self.max_clips_per_sec
        workers = _num_workers(trainer)
        loading = wait if workers == 0 else total  # with workers, loading overlaps the step
        values = {
            "data/input_wait_fraction": fraction,
            "data/input_clips_per_sec": min(cap, clips / loading) if loading > 0 else cap,
            "data/step_clips_per_sec": min(cap, clips / busy) if busy > 0 else cap,
        }
        for name, value in values.items():
            pl_module.log(name, value, batch_size=1)
        self.last = values
        first = self._first_step if self._first_step is not None else step
        self._reset_window()
        if not self.reported:
            self.reported = True
            if getattr(trainer, "is_global_zero", True):
                log.info(self.message(values, workers, _repeats(trainer), first, step))

    def message(self, values: dict[str, float], workers: int | None, repeats: int | None, first: int, last: int) -> str:
        """The INFO line after the first window: does the device wait on data, and what to change."""
        fraction = values["data/input_wait_fraction"]
        fed, step = values["data/input_clips_per_sec"], values["data/step_clips_per_sec"]
        where = f"steps {first}-{last}" if first != last else f"step {last}"
        if fraction <= self.threshold:
            return (
                f"input pipeline keeps up: {fraction:.0%} of step time waiting for data over {where} "
                f"(threshold {self.threshold:.0%}; input >= {fed:.1f} clips/s, step {step:.1f} clips/s per device)"
            )
        knobs = [f"raise data.num_workers (now {workers if workers is not None else '?'}"]
        if workers and fed > 0 and step > fed:
            knobs[0] += f"; about {math.ceil(workers * step / fed)} would match the step"
        knobs[0] += ")"
        if repeats is not None:
            knobs.append(f"data.train_dataset.repeats (now {repeats}; each decoded window gives that many clips)")
        knobs.append('transcode the videos (smile-data transcode; README "Feeding the GPU")')
        return (
            f"the device waits on data: {fraction:.0%} of step time waiting for a batch over {where} "
            f"(threshold {self.threshold:.0%}; input {fed:.1f} clips/s, step {step:.1f} clips/s per device). "
            f"To feed it: {', '.join(knobs[:-1])}, or {knobs[-1]}."
        )


def _clips(batch: Any) -> int:
    video = batch["video"] if isinstance(batch, dict) else None
    return int(video.shape[0]) if video is not None else 0


def _num_workers(trainer: L.Trainer) -> int | None:
    """``data.num_workers``: the datamodule's, else the train DataLoader's."""
    dm = getattr(trainer, "datamodule", None)
    workers = getattr(dm, "num_workers", None)
    if workers is None:
        workers = getattr(getattr(trainer, "train_dataloader", None), "num_workers", None)
    return int(workers) if workers is not None else None


def _repeats(trainer: L.Trainer) -> int | None:
    """``data.train_dataset.repeats`` when the training dataset has it (under a subset wrapper too)."""
    dataset = getattr(getattr(trainer, "datamodule", None), "train_dataset", None)
    while dataset is not None and not hasattr(dataset, "repeats"):
        dataset = getattr(dataset, "dataset", None)
    repeats = getattr(dataset, "repeats", None)
    return int(repeats) if repeats is not None else None

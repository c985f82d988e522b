"""Media callback: every N steps, pictures of what the student saw and predicted.

When to draw and where the files go; the drawing itself is :mod:`smile.callbacks.render`.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch import nn

from smile.callbacks.loggers import log_animations, log_images
from smile.callbacks.render import frame_strip, render_panels, side_by_side, write_animation, write_png
from smile.models import MaskedAutoencoder
from smile.video import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)


class MediaLogger(L.Callback):
    """Frame strips and animations of the first clips of a training batch, every ``every_n_steps``.

    For each of the first ``num_clips`` clips of the current batch: the input clip (before the
    synthetic objects, when the run pastes objects), the clip with objects, the masked clip
    (masked cubes black; first mask view) and the prediction: reconstructed pixels for pixel
    targets, or a PCA colouring of the predicted features next to the teacher's for feature
    targets. Written as ``<output_dir>/media/step{N:07d}_clip{b}.png`` (rows = panels, columns =
    frames) and ``..._clip{b}.gif|mp4`` (panels side by side), and sent to the loggers that take
    media (W&B images + videos, TensorBoard images). CSV runs get the files only.

    The forward runs under ``no_grad`` in eval mode with the RNG state saved and restored; every
    module's train/eval flag is put back, so a run with this callback trains exactly as one
    without. Pretraining modules only (``net`` + ``target``); other modules are left alone. Rank 0
    draws its own clips under DDP; under FSDP (sharded weights) the callback is off: use ``smile-vis``.

    Args:
        every_n_steps: Optimizer steps between pictures; 0 disables the callback.
        num_clips: Clips of the batch to draw (at most the batch size).
        output_dir: Run directory (``media/`` is created in it); None = the trainer's root dir.
        animation: ``gif``, ``mp4`` or ``none``.
        fps: Frames per second of the animation.
    """

    def __init__(
        self,
        every_n_steps: int = 200,
        num_clips: int = 2,
        output_dir: str | None = None,
        animation: str = "gif",
        fps: float = 4.0,
    ) -> None:
        if animation not in ("gif", "mp4", "none"):
            raise ValueError(f"animation must be gif, mp4 or none, got {animation!r}")
        self.every_n_steps = int(every_n_steps)
        self.num_clips = int(num_clips)
        self.output_dir = output_dir
        self.animation = animation
        self.fps = float(fps)
        self._last_step = -1
        self._warned = False

    @property
    def enabled(self) -> bool:
        """False when ``every_n_steps`` or ``num_clips`` is 0."""
        return self.every_n_steps > 0 and self.num_clips > 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Ask the data module to keep the first clips from before the objects (a free view)."""
        dm = getattr(trainer, "datamodule", None)
        if self.enabled and dm is not None and hasattr(dm, "keep_original"):
            dm.keep_original = max(dm.keep_original, self.num_clips)

    def media_dir(self, trainer: L.Trainer) -> Path:
        """``<output_dir>/media`` (the trainer's root dir when no output dir was given)."""
        return Path(self.output_dir or trainer.default_root_dir) / "media"

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if not self.enabled or step == 0 or step % self.every_n_steps or step == self._last_step:
            return
        if not (isinstance(batch, dict) and "mask" in batch and hasattr(pl_module, "target")):
            return
        self._last_step = step  # gradient accumulation: several batches end on the same step
        if isinstance(trainer.strategy, FSDPStrategy):  # sharded weights: a lone forward cannot run
            if not self._warned:
                log.warning("media callback: off under FSDP; run smile-vis on a checkpoint instead")
                self._warned = True
            return
        if trainer.is_global_zero:  # DDP: rank 0 holds the full model; the others wait at the next all-reduce
            self.write(trainer, self.render(trainer, pl_module, batch), step)

    def render(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: dict[str, Any]) -> dict[str, Any]:
        """``{panel name: uint8 [k, 3, T, H, W]}`` for the first ``k`` clips, training state untouched."""
        k = min(self.num_clips, batch["video"].shape[0])
        dm = getattr(trainer, "datamodule", None)
        mean, std = getattr(dm, "mean", IMAGENET_MEAN), getattr(dm, "std", IMAGENET_STD)
        original = batch.get("video_original")
        modes = {m: m.training for m in pl_module.modules()}
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad(), self._precision(trainer):
                pl_module.eval()
                return render_panels(
                    cast(MaskedAutoencoder, pl_module.net),  # checked in on_train_batch_end: a pretraining module
                    cast(nn.Module, pl_module.target),
                    batch["video"][:k],
                    batch["mask"][:k, 0],
                    mean,
                    std,
                    original=original[:k] if original is not None and len(original) >= k else None,
                )
        finally:
            for module, mode in modes.items():
                module.training = mode

    @staticmethod
    def _precision(trainer: L.Trainer) -> Any:
        plugin = getattr(trainer, "precision_plugin", None)
        return plugin.forward_context() if plugin is not None else nullcontext()

    def write(self, trainer: L.Trainer, panels: dict[str, torch.Tensor], step: int) -> list[Path]:
        """PNG strips (+ animations) on disk, then to the loggers that take media; returns the files."""
        out, files, strips, animations = self.media_dir(trainer), [], {}, {}
        for b in range(next(iter(panels.values())).shape[0]):
            clip = [p[b] for p in panels.values()]  # [3, T, H, W] each
            strips[f"media/clip{b}"] = frame_strip(clip, labels=list(panels))  # [P*H, T*W + label, 3]
            files.append(write_png(out / f"step{step:07d}_clip{b}.png", strips[f"media/clip{b}"]))
            if self.animation != "none":
                path = write_animation(out / f"step{step:07d}_clip{b}.{self.animation}", side_by_side(clip), self.fps)
                animations[f"media/clip{b}_video"] = path
                files.append(path)
        try:
            log_images(trainer.loggers, strips, step)
            log_animations(trainer.loggers, animations, step, self.fps)
        except Exception as err:  # noqa: BLE001 - a logger hiccup must not end a training run
            log.warning("media logging failed at step %d: %s (the files are in %s)", step, err, out)
        log.debug("media for step %d: %s (panels: %s)", step, out, ", ".join(panels))
        return files

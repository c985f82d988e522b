"""LightningModule for masked video pretraining (VideoMAE pixel targets, SMILE feature targets)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from smile.lit.common import NonFiniteGuard, NonFiniteHooks, log_skipped_videos, schedule_length
from smile.lit.optim import (
    param_groups,
    resolve_warmup_steps,
    scale_lr,
    schedule_index,
    warmup_cosine_lambda,
)
from smile.masking import gather_tokens

log = logging.getLogger(__name__)


class PretrainLitModule(NonFiniteHooks, L.LightningModule):
    """Masked-autoencoder pretraining step: targets once per clip, one student pass per mask view.

    Args:
        net: The masked autoencoder: ``net(video [B,3,T,H,W], mask bool [B,N]) -> [B, N_masked, C]``.
        target: Frozen target producer ``target(video) -> [B, N, C]`` (pixels or a teacher). It is
            kept in eval mode and its weights never enter checkpoints.
        optimizer: ``lr`` (per 256 (clip, mask) pairs), ``min_lr`` (same unit), ``weight_decay``,
            ``betas``, ``eps``, ``fused`` (None = fused on CUDA).
        scheduler: ``warmup_epochs``, ``warmup_steps`` (>= 0 overrides epochs), ``schedule_epochs``
            (None = the trainer's length; the reference sized its cosine by a longer run).
        max_nonfinite_steps: Stop after this many consecutive NaN/Inf losses (each one is skipped).
        nonfinite_check_every: With a fused optimizer (CUDA) non-finite steps are skipped on the
            device with no host sync, and the streak is read on the host every this many steps
            (see :class:`~smile.lit.common.NonFiniteGuard`).
    """

    def __init__(
        self,
        net: nn.Module,
        target: nn.Module,
        optimizer: dict[str, Any],
        scheduler: dict[str, Any],
        max_nonfinite_steps: int = 10,
        nonfinite_check_every: int = 50,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "target"])
        self.net = net
        self.target = target.requires_grad_(False).eval()
        self.opt_cfg = dict(optimizer)
        self.sched_cfg = dict(scheduler)
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps, nonfinite_check_every)

    # -- frozen target: never trained, never checkpointed -------------------------------------
    def train(self, mode: bool = True) -> PretrainLitModule:
        super().train(mode)
        self.target.eval()
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        sd = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        return type(sd)((k, v) for k, v in sd.items() if not k.startswith(prefix + "target."))

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, **kwargs: Any):
        own = {k: v for k, v in self.target.state_dict(prefix="target.").items()}
        return super().load_state_dict({**own, **state_dict}, strict=strict, **kwargs)

    # -- step -----------------------------------------------------------------------------------
    def compute_loss(self, video: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """MSE over all mask views; targets are computed once per clip and shared by the views.

        Args:
            video: Normalised clips ``[B, 3, T, H, W]``.
            mask: ``[B, V, N]`` bool, True = masked, the same count in every row.
        """
        with torch.no_grad():
            targets = self.target(video)  # [B, N, C]
        preds, golds = [], []
        for v in range(mask.shape[1]):
            preds.append(self.net(video, mask[:, v]))  # [B, N_masked, C]
            golds.append(gather_tokens(targets, mask[:, v]))  # [B, N_masked, C]
        return F.mse_loss(torch.cat(preds).float(), torch.cat(golds).float())

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        mask = batch["mask"]
        loss = self.compute_loss(batch["video"], mask)
        if self.nonfinite.device_mode:  # fused optimizer: a non-finite step is skipped on the device
            self.nonfinite.observe(loss)
        elif not self._loss_is_finite(loss):
            return None  # Lightning skips backward and the optimizer step
        bsz = mask.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bsz, sync_dist=True)  # the global batch's loss
        self.log("train/masked_tokens", mask[:, 0].sum(-1)[0].float(), batch_size=bsz)
        self.log("train/nonfinite_steps", self.nonfinite.nonfinite_total(), batch_size=bsz)
        log_skipped_videos(self, batch)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(batch["video"], batch["mask"])
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=batch["mask"].shape[0])
        return loss

    def _loss_is_finite(self, loss: torch.Tensor) -> bool:
        return self.nonfinite.check(loss, self.global_step, self._last_checkpoint())

    # -- non-finite guard: device mode with a fused optimizer -----------------------------------
    def on_train_start(self) -> None:
        self._attach_nonfinite()

    # -- optimisation ---------------------------------------------------------------------------
    def _schedule_factor(self, lr: float, min_lr: float, global_batch: int) -> Callable[[int], float]:
        """Per-step lr factor: warmup + cosine, optionally with the reference's sawtooth indexing."""
        cfg = self.sched_cfg
        mode = cfg.get("mode", "clean")
        views = self.trainer.datamodule.num_mask_views
        total = int(self.trainer.estimated_stepping_batches)
        sched_total, per_epoch = schedule_length(self.trainer, total, cfg.get("schedule_epochs"))
        if mode == "reference_sawtooth":  # the schedule counts epochs of N = steps / views steps
            per_epoch, sched_total = per_epoch / views, int(round(sched_total / views))
        warmup = resolve_warmup_steps(cfg.get("warmup_epochs", 0), cfg.get("warmup_steps", -1), per_epoch)
        steps_per_epoch = int(round(per_epoch * (views if mode == "reference_sawtooth" else 1)))
        log.info(
            "global batch %d -> lr %.3g, min_lr %.3g; %d warmup / %d schedule steps (%s)",
            global_batch,
            lr,
            min_lr,
            warmup,
            sched_total,
            mode,
        )
        if warmup >= sched_total:
            log.warning("warmup (%d steps) spans the whole schedule (%d steps): lr never peaks", warmup, sched_total)

        def index(step: int) -> int:
            return schedule_index(step, steps_per_epoch, mode, views)

        return warmup_cosine_lambda(sched_total, warmup, min_lr / lr if lr > 0 else 0.0, index)

    def global_batch(self) -> int:
        """(clip, mask) pairs per optimizer step over all devices, the unit of the lr rule."""
        dm = self.trainer.datamodule
        per_device = dm.batch_size * dm.num_mask_views
        return per_device * self.trainer.world_size * self.trainer.accumulate_grad_batches

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.opt_cfg
        gb = self.global_batch()
        lr = scale_lr(cfg["lr"], gb)
        min_lr = scale_lr(cfg.get("min_lr", 0.0), gb)
        fused = cfg.get("fused")
        fused = torch.cuda.is_available() and self.device.type == "cuda" if fused is None else fused
        opt = torch.optim.AdamW(
            param_groups(self.net, cfg.get("weight_decay", 0.05)),
            lr=lr,
            betas=tuple(cfg.get("betas", (0.9, 0.95))),
            eps=cfg.get("eps", 1e-8),
            fused=fused or None,
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self._schedule_factor(lr, min_lr, gb))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

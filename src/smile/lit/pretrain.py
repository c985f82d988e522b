"""LightningModule for masked video pretraining (VideoMAE pixel targets, SMILE feature targets)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from smile.lit.common import NonFiniteGuard, NonFiniteHooks, log_skipped_videos
from smile.lit.optim import OptimizationMixin, OptimizerFactory, WarmupCosine, param_groups
from smile.masking import gather_tokens
from smile.models import MaskedAutoencoder

log = logging.getLogger(__name__)


class PretrainLitModule(OptimizationMixin, NonFiniteHooks, L.LightningModule):
    """Masked-autoencoder pretraining step: targets once per clip, one student pass per mask view.

    Args:
        net: The student: ``net(video [B,3,T,H,W], mask bool [B,N]) -> [B, N_masked, C]``.
        target: Frozen target producer ``target(video) -> [B, N, C]`` (pixels or a teacher). It is
            kept in eval mode and its weights never enter checkpoints.
        optimizer: Optimizer factory (``model.optimizer``: a partial AdamW whose ``lr`` is per 256
            (clip, mask) pairs; see :class:`~smile.lit.optim.OptimizationMixin`).
        scheduler: The per-step schedule (``model.scheduler``).
        batch_size: Clips per device per step (``data.batch_size``), for the lr rule.
        num_mask_views: Masks per clip (``data.masking.masks_per_clip``): each clip is one sample
            per mask in the lr rule, and the reference's sawtooth schedule counts them.
        max_nonfinite_steps: Stop after this many consecutive NaN/Inf losses (each one is skipped).
        nonfinite_check_every: With a fused optimizer (CUDA) non-finite steps are skipped on the
            device with no host sync, and the streak is read on the host every this many steps
            (see :class:`~smile.lit.common.NonFiniteGuard`).
    """

    def __init__(
        self,
        net: MaskedAutoencoder,
        target: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: WarmupCosine,
        batch_size: int,
        num_mask_views: int,
        max_nonfinite_steps: int = 10,
        nonfinite_check_every: int = 50,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_mask_views < 1:
            raise ValueError(f"batch_size={batch_size} and num_mask_views={num_mask_views} must be >= 1")
        self.save_hyperparameters(ignore=["net", "target", "optimizer", "scheduler"])
        self.net = net
        self.target = target.requires_grad_(False).eval()
        self.optimizer_factory = optimizer
        self.schedule = scheduler
        self.batch_size = batch_size
        self.samples_per_clip = num_mask_views
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps, nonfinite_check_every)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """AdamW groups with and without weight decay (the reference's rule); the lr is the optimizer's."""
        return param_groups(self.net, weight_decay)

    # -- frozen target: never trained, never checkpointed -------------------------------------
    def train(self, mode: bool = True) -> PretrainLitModule:
        super().train(mode)
        self.target.eval()
        return self

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]  # passes all through
        sd = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        return type(sd)((k, v) for k, v in sd.items() if not k.startswith(prefix + "target."))

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        own = {k: v for k, v in self.target.state_dict(prefix="target.").items()}
        return super().load_state_dict({**own, **state_dict}, strict=strict, assign=assign)

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
        bsz = mask.shape[0]  # logged before the guard: a skipped step's row shows its NaN loss
        self.log("train/loss", loss, prog_bar=True, batch_size=bsz, sync_dist=True)  # the global batch's loss
        self.log("train/masked_tokens", mask[:, 0].sum(-1)[0].float(), batch_size=bsz)
        log_skipped_videos(self, batch)  # train/nonfinite_steps: NonFiniteHooks.on_train_batch_end
        if self.nonfinite.device_mode:  # fused optimizer: a non-finite step is skipped on the device
            self.nonfinite.observe(loss)
        elif not self._loss_is_finite(loss):
            return None  # Lightning skips backward and the optimizer step
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

"""Gradient norm before clipping, logged only on the steps the loggers write."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy


class GradNorm(L.Callback):
    """Logs ``train/grad_norm``: the total L2 norm of all gradients before the optimizer step.

    Computed in ``on_before_optimizer_step`` (after AMP unscaling, before gradient clipping) and
    only on the steps where Lightning writes logs (``trainer.log_every_n_steps``), so the other
    steps pay nothing. The value stays a device tensor: no host sync is added (the logger reads
    it when it writes anyway). Under FSDP each rank holds a shard of the gradients: the squared
    norms are summed over ranks.

    Args:
        norm_type: The p of the p-norm (2 = Euclidean).
    """

    def __init__(self, norm_type: float = 2.0) -> None:
        self.norm_type = float(norm_type)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not trainer._logger_connector.should_update_logs:  # as LearningRateMonitor decides
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        norm = torch.nn.utils.get_total_norm(grads, self.norm_type, foreach=True)  # [] on the device
        if isinstance(trainer.strategy, FSDPStrategy):
            norm = trainer.strategy.reduce(norm.pow(self.norm_type), reduce_op="sum").pow(1.0 / self.norm_type)
        pl_module.log("train/grad_norm", norm, on_step=True, on_epoch=False, batch_size=1)

"""An exponential moving average of a classifier's weights, as the reference's ``--model_ema``.

Lightning's ``WeightAveraging`` callback swaps the averaged weights in for validation and
checkpoints; the finetuning recipe instead evaluates the EMA *next to* the live weights
(``val_ema/*`` beside ``val/*``) and keeps both in a checkpoint, so this is a small callback of
ours around timm's ``ModelEmaV3`` (the reference's ``ModelEma``).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch.nn.functional as F
from timm.utils import ModelEmaV3
from torch import nn
from torchmetrics import MetricCollection

from smile.metrics import accuracy_metrics

log = logging.getLogger(__name__)

EMA_KEY = "ema_state_dict"  # where checkpoints keep the averaged weights (read by smile-convert --ema)


class EMAWeights(L.Callback):
    """Average ``pl_module.net`` after every optimizer step; validate and checkpoint the average.

    The update happens in ``on_train_batch_end`` once per optimizer step (not on accumulation-only
    batches, not on a step the non-finite guard skipped on the host); Lightning runs checkpoint
    callbacks last, so a step checkpoint holds the EMA of the weights it holds.

    Args:
        decay: EMA decay per optimizer step (the reference: 0.9999).
        use_warmup: timm's decay warmup (``1 - (1 + step / 10) ** -0.75``), off in the reference.
        update_after_step: Steps before the EMA starts following the weights.
    """

    def __init__(self, decay: float, use_warmup: bool = False, update_after_step: int = 0) -> None:
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"callbacks.ema.decay={decay} must be in [0, 1]")
        self.decay, self.use_warmup = decay, use_warmup
        self.update_after_step = update_after_step
        self.ema: ModelEmaV3 | None = None
        self.metrics: MetricCollection | None = None  # val_ema/acc1, acc5: made for the module's classes
        self._last_step = -1
        self._reset_pending = False

    @property
    def module(self) -> nn.Module:
        """The averaged net."""
        return self._ema().module

    def _ema(self) -> ModelEmaV3:
        if self.ema is None:
            raise RuntimeError("the EMA is created when fitting starts (setup)")
        return self.ema

    def _metrics(self) -> MetricCollection:
        if self.metrics is None:
            raise RuntimeError("the EMA's metrics are created when fitting starts (setup)")
        return self.metrics

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.ema is None:  # before a checkpoint is restored into it
            self.ema = ModelEmaV3(pl_module.net, decay=self.decay, use_warmup=self.use_warmup)
            self.ema.module.requires_grad_(False)
            num_classes: int = pl_module.num_classes  # type: ignore[assignment]  # a ClassifierLitModule
            self.metrics = accuracy_metrics(num_classes)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.module.to(pl_module.device)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._reset_pending:
            self._ema().set(pl_module.net)
            self._reset_pending = False
        self._last_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        stepped, self._last_step = trainer.global_step != self._last_step, trainer.global_step
        skipped = not isinstance(outputs, dict) or outputs.get("loss") is None  # host-mode non-finite skip
        if not stepped or skipped:  # accumulation-only batch, or no update this step
            return
        warm = self.use_warmup or self.update_after_step
        self._ema().update(pl_module.net, step=trainer.global_step if warm else None)

    # -- validation of the average next to the live weights ---------------------------------------
    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, *_: Any
    ) -> None:
        if self.ema is None or trainer.sanity_checking:
            return
        self.module.to(pl_module.device)
        metrics = self._metrics().to(pl_module.device)
        label = batch["label"]
        logits = self.module(batch["video"]).float()  # [B, K]
        metrics.update(logits, label)
        bsz = label.shape[0]
        pl_module.log("val_ema/loss", F.cross_entropy(logits, label), sync_dist=True, batch_size=bsz)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ema is None or trainer.sanity_checking:
            return
        metrics = self._metrics()
        for name, value in metrics.compute().items():
            pl_module.log(f"val_ema/{name}", value)
        metrics.reset()

    # -- checkpoints -------------------------------------------------------------------------------
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.ema is not None:
            checkpoint[EMA_KEY] = self.module.state_dict()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.ema is None:
            self.setup(trainer, pl_module, "fit")
        if EMA_KEY in checkpoint:
            self.module.load_state_dict(checkpoint[EMA_KEY])
        else:
            log.warning("checkpoint has no %s: the EMA restarts from the loaded weights", EMA_KEY)
            self._reset_pending = True

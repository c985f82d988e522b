"""LightningModule for supervised finetuning and linear probing of a video classifier (SPEC §7.1).

The recipe follows the reference's ``run_class_finetuning.py``: AdamW over layer-wise lr-decay
groups, lr scaled by the global batch / 256, per-step warmup + cosine (:mod:`smile.lit.optim`),
soft-target cross-entropy on Mixup/CutMix batches (mixed on the device by the data module,
:class:`~smile.data.mixup.ClipMixup`), label-smoothing cross-entropy otherwise, single-clip
validation and multi-view testing (softmax averaged over the views of a video,
:class:`~smile.metrics.MultiViewTest`). An EMA of the weights is the ``callbacks.ema`` callback
(:class:`~smile.callbacks.ema.EMAWeights`). Gradient clipping is the trainer's job
(``trainer.gradient_clip_val``; the reference's default is None).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn
from torchmetrics import MetricCollection

from smile.lit.common import NonFiniteGuard, NonFiniteHooks, log_skipped_videos
from smile.lit.optim import OptimizationMixin, OptimizerFactory, WarmupCosine, layer_decay_groups
from smile.metrics import MultiViewTest, accuracy_metrics, view_average_probs

log = logging.getLogger(__name__)

HEAD_MODULES = ("fc_norm", "fc_dropout", "head")  # what a linear probe trains (VideoViT names)


class ClassifierLitModule(OptimizationMixin, NonFiniteHooks, L.LightningModule):
    """Finetuning / linear probing of a clip classifier.

    Args:
        net: The classifier (a ``VideoViT`` with ``global_pool="mean"``): ``net(video) -> logits``.
        num_classes: Number of classes.
        optimizer: Optimizer factory (``model.optimizer``: a partial AdamW whose ``lr`` is per 256
            clips; see :class:`~smile.lit.optim.OptimizationMixin`).
        scheduler: The per-step schedule (``model.scheduler``).
        batch_size: Clips per device per step (``data.batch_size``), for the lr rule.
        num_sample: Repeated augmentation: samples per clip in a step (``num_sample`` of the
            training dataset; the lr rule counts them, the reference's scripts use 1).
        layer_decay: Layer-wise lr decay (1.0 = off; ignored for a linear probe).
        label_smoothing: Smoothing of the hard-label loss (batches without soft targets).
        freeze_encoder: Linear probe: only ``fc_norm`` and ``head`` train; the encoder has no
            gradients and stays in eval mode (no drop path) through ``.train()``.
        max_nonfinite_steps: Stop after this many consecutive NaN/Inf losses (each one is skipped).
        nonfinite_check_every: With a fused optimizer (CUDA) non-finite steps are skipped on the
            device with no host sync, and the streak is read on the host every this many steps
            (see :class:`~smile.lit.common.NonFiniteGuard`).
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: OptimizerFactory,
        scheduler: WarmupCosine,
        batch_size: int,
        num_sample: int = 1,
        layer_decay: float = 0.75,
        label_smoothing: float = 0.1,
        freeze_encoder: bool = False,
        max_nonfinite_steps: int = 10,
        nonfinite_check_every: int = 50,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.num_classes = num_classes
        self.optimizer_factory, self.schedule = optimizer, scheduler
        self.batch_size, self.samples_per_clip = batch_size, num_sample
        self.layer_decay = layer_decay
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self._freeze_encoder()
        self.hard_criterion = (
            LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss()
        )
        self.soft_criterion = SoftTargetCrossEntropy()
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps, nonfinite_check_every)
        self.val_metrics = accuracy_metrics(num_classes)
        self.test_eval = MultiViewTest(num_classes)
        self._keep_encoder_eval()

    def _freeze_encoder(self) -> None:
        missing = [n for n in ("fc_norm", "head") if not hasattr(self.net, n)]
        if missing:
            raise ValueError(f"freeze_encoder needs a net with fc_norm and head; missing {missing}")
        self.net.requires_grad_(False)
        for name in HEAD_MODULES:
            if hasattr(self.net, name):
                getattr(self.net, name).requires_grad_(True)

    # -- modes ----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> ClassifierLitModule:
        """Like ``nn.Module.train``, but a frozen encoder (linear probe) always stays in eval mode."""
        super().train(mode)
        self._keep_encoder_eval()
        return self

    def _keep_encoder_eval(self) -> None:
        """Linear probe: the encoder in eval mode, the head modules in the module's mode.

        Lightning 2.x never calls ``.train()`` itself (it keeps the modes a module has at
        ``fit`` and restores them after validation), so this also runs at construction and at
        ``on_train_start``.
        """
        if not self.freeze_encoder:
            return
        self.net.eval()
        for name in HEAD_MODULES:
            if hasattr(self.net, name):
                getattr(self.net, name).train(self.training)

    def on_train_start(self) -> None:
        self._keep_encoder_eval()
        self._attach_nonfinite()

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        label = batch["label"]
        logits = self.net(batch["video"]).float()  # [B, K]
        soft = "soft_target" in batch  # Mixup/CutMix happened in the data module
        loss = self.soft_criterion(logits, batch["soft_target"]) if soft else self.hard_criterion(logits, label)
        bsz = label.shape[0]  # logged before the guard: a skipped step's row shows its NaN loss
        self.log("train/loss", loss, prog_bar=True, batch_size=bsz)
        if not soft:
            self.log("train/acc", (logits.argmax(-1) == label).float().mean(), batch_size=bsz)
        if (batch_idx + 1) % max(1, self.trainer.log_every_n_steps) == 0:  # a float is a GPU sync: log steps only
            self.log("train/lr", self.peak_group_lr(), batch_size=bsz)
        log_skipped_videos(self, batch)  # train/nonfinite_steps: NonFiniteHooks.on_train_batch_end
        return self.guarded_loss(loss)  # None: a non-finite step, skipped

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Layer-decay groups of the trainable parameters, each with ``lr * lr_scale``."""
        layer_decay = 1.0 if self.freeze_encoder else float(self.layer_decay)
        num_layers = len(getattr(self.net, "blocks", ()))
        groups = layer_decay_groups(self.net, weight_decay, layer_decay, num_layers)
        for group in groups:
            group["lr"] = lr * group["lr_scale"]
        return groups

    # -- validation: one centre clip per video ---------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        label = batch["label"]
        logits = self.net(batch["video"]).float()  # [B, K]
        self.val_metrics.update(logits, label)
        bsz = label.shape[0]
        self.log("val/loss", F.cross_entropy(logits, label), prog_bar=True, sync_dist=True, batch_size=bsz)
        self._log_metrics("val", self.val_metrics, bsz)

    def _log_metrics(self, prefix: str, metrics: MetricCollection, bsz: int) -> None:
        for name, metric in metrics.items():
            self.log(f"{prefix}/{name}", metric, prog_bar=name == "acc1", batch_size=bsz)

    # -- multi-view test ------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self.test_eval.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Average the softmax over the views of each video (``video [B, V, 3, T, H, W]``), then score it.

        All views of a video are in the same batch, so the average is exact on every rank.
        """
        ids = batch["video_id"] if "video_id" in batch else batch["index"]
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        self.test_eval.update(view_average_probs(self.net, batch["video"]), batch["label"], ids)

    def on_test_epoch_end(self) -> None:
        for name, value in self.test_eval.compute().items():
            self.log(f"test/{name}", value)

    @property
    def test_predictions(self) -> list[dict[str, Any]]:
        """Per-video rows of the last test (this rank's shard under DDP)."""
        return self.test_eval.rows

    @test_predictions.setter
    def test_predictions(self, rows: list[dict[str, Any]]) -> None:
        self.test_eval.rows = rows

    @property
    def test_confusion(self) -> torch.Tensor | None:
        """``[K, K]`` confusion counts of the last test, rows = true class."""
        return self.test_eval.confusion

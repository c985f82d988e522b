"""LightningModule for supervised finetuning and linear probing of a video classifier (SPEC §7.1).

The recipe follows the reference's ``run_class_finetuning.py``: AdamW over layer-wise lr-decay
groups, lr scaled by the global batch / 256, per-step warmup + cosine, Mixup/CutMix with label
smoothing folded into soft targets (``SoftTargetCrossEntropy``), an optional EMA of the weights,
single-clip validation and multi-view testing (softmax averaged over the views of a video).
Gradient clipping is the trainer's job (``trainer.gradient_clip_val``; the reference's default is
None, and DeepSpeed ignored it anyway).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.core.optimizer import LightningOptimizer
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.utils import ModelEmaV3
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from smile.lit.common import NonFiniteGuard, NonFiniteHooks, log_skipped_videos, schedule_length
from smile.lit.optim import (
    apply_lr_scale,
    layer_decay_groups,
    resolve_warmup_steps,
    scale_lr,
    warmup_cosine_lambda,
)

log = logging.getLogger(__name__)

HEAD_MODULES = ("fc_norm", "fc_dropout", "head")  # what a linear probe trains (VideoViT names)
DEFAULT_OPTIMIZER: dict[str, Any] = {
    "lr": 1e-3,  # per 256 clips
    "min_lr": 1e-6,  # per 256 clips
    "weight_decay": 0.05,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "layer_decay": 0.75,
    "fused": None,  # None = fused AdamW on CUDA
}
DEFAULT_SCHEDULER: dict[str, Any] = {"warmup_epochs": 5, "warmup_steps": -1, "schedule_epochs": None}
DEFAULT_MIXUP: dict[str, Any] = {
    "mixup_alpha": 0.8,
    "cutmix_alpha": 1.0,
    "cutmix_minmax": None,
    "prob": 1.0,
    "switch_prob": 0.5,
    "mode": "batch",
}
EMA_KEY = "ema_state_dict"


def build_mixup(cfg: dict[str, Any] | None, num_classes: int, label_smoothing: float) -> Mixup | None:
    """timm ``Mixup`` from a config, or None when absent or when every alpha is off (as the reference).

    ``label_smoothing`` is the default for ``cfg["label_smoothing"]``.
    """
    if cfg is None:
        return None
    cfg = {**DEFAULT_MIXUP, "label_smoothing": label_smoothing, **cfg}
    if cfg["mixup_alpha"] <= 0 and cfg["cutmix_alpha"] <= 0 and cfg["cutmix_minmax"] is None:
        return None
    return Mixup(num_classes=num_classes, **cfg)


def mix_video(mixup: Mixup, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply timm Mixup/CutMix to clips ``[B, 3, T, H, W]``; returns (mixed clips, soft targets ``[B, K]``).

    timm sizes the box from the last two dims (H, W) but cuts ``x[:, :, y0:y1, x0:x1]``, i.e.
    dims 2 and 3, which for a 5-D clip are (T, H). Viewing the clip as ``[B, 3*T, H, W]`` makes
    the cut the spatial box it was sized for, the same in every frame and channel. Mixes in place.
    """
    flat = video.reshape(video.shape[0], -1, *video.shape[-2:])  # [B, 3*T, H, W], a view
    flat, target = mixup(flat, label)
    return flat.view(video.shape), target


def accuracy_metrics(num_classes: int, average: str = "micro") -> MetricCollection:
    """Top-1 and top-5 accuracy (top-k capped at ``num_classes``).

    ``compute_groups=False``: torchmetrics would otherwise merge acc1 and acc5 into one state when
    the first batch gives them equal counts, and then report acc1's value as acc5.
    """
    return MetricCollection(
        {f"acc{k}": MulticlassAccuracy(num_classes, top_k=min(k, num_classes), average=average) for k in (1, 5)},
        compute_groups=False,
    )


class ClassifierLitModule(NonFiniteHooks, L.LightningModule):
    """Finetuning / linear probing of a clip classifier.

    Args:
        net: The classifier (a ``VideoViT`` from ``create_encoder``): ``net(video) -> logits``.
        num_classes: Number of classes.
        optimizer: ``lr`` and ``min_lr`` (per 256 clips), ``weight_decay``, ``betas``, ``eps``,
            ``layer_decay`` (1.0 = off), ``fused`` (None = fused AdamW on CUDA). Missing keys take
            the reference defaults (:data:`DEFAULT_OPTIMIZER`).
        scheduler: ``warmup_epochs``, ``warmup_steps`` (>= 0 overrides epochs), ``schedule_epochs``
            (None = the trainer's length).
        mixup: timm ``Mixup`` arguments (:data:`DEFAULT_MIXUP` fills the gaps; ``label_smoothing``
            defaults to the argument below); None = no Mixup/CutMix. Needs even batches: an odd
            batch is trained without mixing (with one warning).
        label_smoothing: Smoothing of the hard-label loss (and of mixup's soft targets).
        ema: ``ModelEmaV3`` arguments (e.g. ``{"decay": 0.9999}``); None = no EMA. The EMA starts
            from ``net`` as given here, is updated after every optimizer step, evaluated next to
            the live weights (``val_ema/*``) and stored in checkpoints under ``ema_state_dict``.
        freeze_encoder: Linear probe: only ``fc_norm`` and ``head`` train; the encoder has no
            gradients and stays in eval mode (no drop path) through ``.train()``.
        max_nonfinite_steps: Stop after this many consecutive NaN/Inf losses (each one is skipped).
        nonfinite_check_every: With a fused optimizer (CUDA) non-finite steps are skipped on the
            device with no host sync, and the streak is read on the host every this many steps
            (see :class:`~smile.lit.common.NonFiniteGuard`; the EMA then still takes its update
            on a skipped step, towards the unchanged weights).
    """

    def __init__(
        self,
        net: nn.Module,
        num_classes: int,
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        mixup: dict[str, Any] | None = None,
        label_smoothing: float = 0.1,
        ema: dict[str, Any] | None = None,
        freeze_encoder: bool = False,
        max_nonfinite_steps: int = 10,
        nonfinite_check_every: int = 50,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.save_hyperparameters(ignore=["net"])
        self.net = net
        self.num_classes = num_classes
        self.opt_cfg = {**DEFAULT_OPTIMIZER, **(optimizer or {})}
        self.sched_cfg = {**DEFAULT_SCHEDULER, **(scheduler or {})}
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self._freeze_encoder()
        self.mixup = build_mixup(mixup, num_classes, label_smoothing)
        self.label_smoothing = label_smoothing
        self.train_criterion = self._train_criterion()
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps, nonfinite_check_every)
        self._warned_odd_batch = False
        self.val_metrics = accuracy_metrics(num_classes)
        self.val_ema_metrics = accuracy_metrics(num_classes)
        self.test_metrics = accuracy_metrics(num_classes)
        self.test_class_mean = accuracy_metrics(num_classes, average="macro")
        self.test_confmat = MulticlassConfusionMatrix(num_classes)
        self.test_predictions: list[dict[str, Any]] = []
        self.test_confusion: torch.Tensor | None = None
        # Kept out of the module tree (a list hides it from nn.Module): it must not reach the
        # optimizer, DDP's gradient bookkeeping or the ``net.*`` state dict that exports read.
        self._ema_holder: list[ModelEmaV3] = [self._build_ema(ema)] if ema is not None else []
        self._ema_steps = bool(ema) and bool(ema.get("use_warmup") or ema.get("update_after_step"))
        self._ema_reset_pending = False
        self._skipped_step = False
        self._keep_encoder_eval()

    # -- construction helpers -------------------------------------------------------------------
    def _train_criterion(self) -> nn.Module:
        """The reference's choice: soft-target CE with mixup, else label-smoothing CE, else CE."""
        if self.mixup is not None:
            return SoftTargetCrossEntropy()
        if self.label_smoothing > 0:
            return LabelSmoothingCrossEntropy(smoothing=self.label_smoothing)
        return nn.CrossEntropyLoss()

    def _build_ema(self, cfg: dict[str, Any]) -> ModelEmaV3:
        ema = ModelEmaV3(self.net, **cfg)
        ema.module.requires_grad_(False)
        return ema

    def _freeze_encoder(self) -> None:
        missing = [n for n in ("fc_norm", "head") if not hasattr(self.net, n)]
        if missing:
            raise ValueError(f"freeze_encoder needs a net with fc_norm and head; missing {missing}")
        self.net.requires_grad_(False)
        for name in HEAD_MODULES:
            if hasattr(self.net, name):
                getattr(self.net, name).requires_grad_(True)

    @property
    def ema(self) -> ModelEmaV3 | None:
        """The timm EMA wrapper (``.module`` is the averaged net), or None."""
        return self._ema_holder[0] if self._ema_holder else None

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

    # -- training -------------------------------------------------------------------------------
    def _mix(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup/CutMix with soft targets; an odd batch gets smoothed one-hot targets instead."""
        if video.shape[0] % 2 == 0:
            return mix_video(self.mixup, video, label)
        if not self._warned_odd_batch:
            warnings.warn(
                f"odd batch of {video.shape[0]} clips: Mixup/CutMix needs even batches and is skipped "
                "for such batches (use drop_last and an even batch size)",
                stacklevel=2,
            )
            self._warned_odd_batch = True
        return video, mixup_target(label, self.num_classes, 1.0, self.mixup.label_smoothing)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        video, label = batch["video"], batch["label"]
        target = None
        if self.mixup is not None:
            video, target = self._mix(video, label)
        logits = self.net(video).float()  # [B, K]
        loss = self.train_criterion(logits, label if target is None else target)
        if self.nonfinite.device_mode:  # fused optimizer: a non-finite step is skipped on the device
            self.nonfinite.observe(loss)
        else:
            self._skipped_step = not self.nonfinite.check(loss, self.global_step, self._last_checkpoint())
            if self._skipped_step:
                return None  # Lightning skips backward and the optimizer step
        bsz = label.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bsz)
        if target is None:
            self.log("train/acc", (logits.argmax(-1) == label).float().mean(), batch_size=bsz)
        if (batch_idx + 1) % max(1, self.trainer.log_every_n_steps) == 0:  # a float is a GPU sync: log steps only
            self.log("train/lr", self._peak_group_lr(), batch_size=bsz)
        self.log("train/nonfinite_steps", self.nonfinite.nonfinite_total(), batch_size=bsz)
        log_skipped_videos(self, batch)
        return loss

    def _peak_group_lr(self) -> float:
        """Current lr of the group with the largest scale (the head's: the schedule itself)."""
        groups = self.trainer.optimizers[0].param_groups
        return max(groups, key=lambda g: g.get("lr_scale", 1.0))["lr"]

    def optimizer_step(
        self,
        epoch: int,
        batch_idx: int,
        optimizer: torch.optim.Optimizer | LightningOptimizer,
        optimizer_closure: Callable[[], Any] | None = None,
    ) -> None:
        """Step, then update the EMA: once per optimizer step, never on accumulation-only batches.

        Updating here rather than in ``on_train_batch_end`` puts the update before any callback's
        ``on_train_batch_end``, so step-based checkpoints hold the EMA of the weights they hold.
        """
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.ema is not None and not self._skipped_step:
            self.ema.update(self.net, step=self.global_step if self._ema_steps else None)

    # -- validation -----------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(self.net, batch, "val", self.val_metrics)
        if self.ema is not None:
            self._evaluate(self.ema.module, batch, "val_ema", self.val_ema_metrics)

    def _evaluate(self, net: nn.Module, batch: dict[str, Any], prefix: str, metrics: MetricCollection) -> None:
        """Plain CE and top-1 / top-5 of one clip per video, logged per epoch, synced across ranks."""
        label = batch["label"]
        logits = net(batch["video"]).float()  # [B, K]
        loss = F.cross_entropy(logits, label)
        metrics.update(logits, label)
        bsz = label.shape[0]
        self.log(f"{prefix}/loss", loss, prog_bar=prefix == "val", sync_dist=True, batch_size=bsz)
        for name, metric in metrics.items():
            self.log(f"{prefix}/{name}", metric, prog_bar=name == "acc1", batch_size=bsz)

    def on_validation_start(self) -> None:
        self._ema_to_device()

    # -- multi-view test ------------------------------------------------------------------------
    def on_test_epoch_start(self) -> None:
        self.test_predictions = []
        self.test_confusion = None

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        """Average the softmax over the views of each video, then score it.

        ``batch["video"]`` is ``[B, V, 3, T, H, W]`` (or ``[B, 3, T, H, W]`` for one view); all
        views of a video are in the same batch, so the average is exact on every rank. Per-video
        predictions go to :attr:`test_predictions`; under DDP each rank holds its own shard (with
        the sampler's padding duplicates), which the eval entry point merges by ``video_id``.
        """
        label = batch["label"]
        probs = self.view_average_probs(batch["video"])  # [B, K]
        self.test_metrics.update(probs, label)
        self.test_class_mean.update(probs, label)
        self.test_confmat.update(probs.argmax(-1), label)
        self._store_predictions(batch, probs)

    def view_average_probs(self, video: torch.Tensor) -> torch.Tensor:
        """Mean over views of the per-view softmax: ``[B, V, 3, T, H, W] -> [B, K]``."""
        if video.ndim == 5:
            video = video.unsqueeze(1)  # [B, 1, 3, T, H, W]
        b, v = video.shape[:2]
        logits = self.net(video.flatten(0, 1)).float()  # [B*V, K]
        return logits.softmax(-1).view(b, v, -1).mean(1)  # [B, K]

    def _store_predictions(self, batch: dict[str, Any], probs: torch.Tensor) -> None:
        label = batch["label"].tolist()
        ids = batch.get("video_id", batch.get("index"))
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids) if ids is not None else [None] * len(label)
        top_p, top_i = probs.topk(min(5, self.num_classes), dim=-1)  # [B, k]
        for i, vid in enumerate(ids):
            self.test_predictions.append(
                {
                    "video_id": vid,
                    "label": label[i],
                    "pred": top_i[i, 0].item(),
                    "top5": top_i[i].tolist(),
                    "top5_prob": top_p[i].tolist(),
                }
            )

    def on_test_epoch_end(self) -> None:
        for name, value in self.test_metrics.compute().items():
            self.log(f"test/{name}", value)
        for name, value in self.test_class_mean.compute().items():
            self.log(f"test/{name}_class_mean", value)
        self.test_confusion = self.test_confmat.compute().cpu()  # [K, K], rows = true class
        for metric in (self.test_metrics, self.test_class_mean, self.test_confmat):
            metric.reset()

    # -- EMA in checkpoints and on the right device ---------------------------------------------
    def _ema_to_device(self) -> None:
        if self.ema is not None:
            self.ema.module.to(self.device)

    def on_fit_start(self) -> None:
        self._ema_to_device()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.ema is not None:
            checkpoint[EMA_KEY] = self.ema.module.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.ema is None:
            return
        if EMA_KEY in checkpoint:
            self.ema.module.load_state_dict(checkpoint[EMA_KEY])
        else:
            log.warning("checkpoint has no %s: the EMA restarts from the loaded weights", EMA_KEY)
            self._ema_reset_pending = True

    def on_train_start(self) -> None:
        self._keep_encoder_eval()
        self._attach_nonfinite()
        if self.ema is not None and self._ema_reset_pending:
            self.ema.set(self.net)
            self._ema_reset_pending = False

    # -- optimisation ---------------------------------------------------------------------------
    def global_batch(self) -> int:
        """Clips per optimizer step over all devices, the unit of the lr rule.

        ``datamodule.batch_size x world_size x accumulate_grad_batches``, times the datamodule's
        ``num_sample`` when it has one (repeated augmentation puts ``B * num_sample`` clips in a
        step). The reference's rule leaves ``num_sample`` out (both its scripts set it to 1).
        """
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "batch_size"):
            raise ValueError("ClassifierLitModule needs a datamodule with `batch_size` to scale the lr")
        per_device = dm.batch_size * int(getattr(dm, "num_sample", 1) or 1)
        return per_device * self.trainer.world_size * self.trainer.accumulate_grad_batches

    def _param_groups(self, lr: float) -> list[dict]:
        """Layer-decay groups of the trainable parameters, each with ``lr * lr_scale``."""
        cfg = self.opt_cfg
        layer_decay = 1.0 if self.freeze_encoder else float(cfg["layer_decay"])
        num_layers = len(getattr(self.net, "blocks", ()))
        groups = layer_decay_groups(self.net, cfg["weight_decay"], layer_decay, num_layers)
        if not groups:
            raise ValueError("ClassifierLitModule: the net has no trainable parameters")
        return apply_lr_scale(groups, lr)

    def _schedule_factor(self, lr: float, min_lr: float) -> Any:
        cfg = self.sched_cfg
        total = int(self.trainer.estimated_stepping_batches)
        sched_total, per_epoch = schedule_length(self.trainer, total, cfg.get("schedule_epochs"))
        warmup = resolve_warmup_steps(cfg.get("warmup_epochs", 0), cfg.get("warmup_steps", -1), per_epoch)
        if warmup >= sched_total:
            log.warning("warmup (%d steps) spans the whole schedule (%d steps): lr never peaks", warmup, sched_total)
        log.info("lr %.3g, min_lr %.3g; %d warmup / %d schedule steps", lr, min_lr, warmup, sched_total)
        return warmup_cosine_lambda(sched_total, warmup, min_lr / lr if lr > 0 else 0.0)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.opt_cfg
        gb = self.global_batch()
        lr, min_lr = scale_lr(cfg["lr"], gb), scale_lr(cfg.get("min_lr", 0.0), gb)
        log.info("global batch %d -> lr %.3g (layer decay %s)", gb, lr, cfg["layer_decay"])
        fused = cfg.get("fused")
        fused = torch.cuda.is_available() and self.device.type == "cuda" if fused is None else fused
        opt = torch.optim.AdamW(
            self._param_groups(lr),
            lr=lr,
            betas=tuple(cfg["betas"]),
            eps=cfg["eps"],
            fused=fused or None,
        )
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self._schedule_factor(lr, min_lr))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

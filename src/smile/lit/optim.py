"""The one optimisation path of every LightningModule: parameter groups, the lr rule, the schedule.

:class:`OptimizationMixin` is ``configure_optimizers`` for both LightningModules: an optimizer
factory (Hydra's ``_partial_: true`` AdamW, ``model.optimizer``) called on the module's parameter
groups with the lr scaled by the global batch / 256, and a :class:`WarmupCosine` schedule
(``model.scheduler``) applied per optimizer step.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import nn

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]

NO_DECAY_NAMES = frozenset({"pos_embed", "cls_token", "mask_token"})


def no_weight_decay(name: str, param: torch.Tensor, skip_names: Iterable[str] = NO_DECAY_NAMES) -> bool:
    """The reference's rule: no decay for 1-D params, biases, and position / cls / mask tokens."""
    return param.ndim <= 1 or name.endswith(".bias") or name.split(".")[-1] in set(skip_names)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups, with and without weight decay; frozen parameters are left out."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if no_weight_decay(name, param) else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def scale_lr(base_lr: float, global_batch: int, reference_batch: int = 256) -> float:
    """Linear scaling rule of VideoMAE/SMILE: ``lr = base_lr * global_batch / 256``.

    ``global_batch`` counts (clip, mask) pairs per optimizer step over all devices, as the
    reference does: per-device clips x mask views x world size x gradient accumulation.
    """
    if global_batch < 1:
        raise ValueError(f"global batch must be >= 1, got {global_batch}")
    return base_lr * global_batch / reference_batch


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, base: float, final: float) -> float:
    """The reference's per-step schedule value at ``step``.

    Linear warmup from 0 (``linspace(0, base, warmup_steps)``, so the first step has lr 0), then
    a half cosine from ``base`` to ``final`` over the remaining steps. Steps past the end keep
    ``final`` (the reference would raise an IndexError there).
    """
    if step < warmup_steps:
        return base * step / max(warmup_steps - 1, 1)
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min((step - warmup_steps) / decay_steps, 1.0)
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * progress))


def warmup_cosine_lambda(
    total_steps: int, warmup_steps: int, min_lr_ratio: float, index: Callable[[int], int] | None = None
) -> Callable[[int], float]:
    """A ``LambdaLR`` factor: the schedule relative to the base lr of each parameter group.

    Using a factor keeps per-group scales (layer decay) applied to both the peak and min lr,
    as the reference does. ``index`` maps the optimizer step to a schedule position
    (see :func:`schedule_index`); identity by default.
    """
    index = index or (lambda step: step)
    return lambda step: warmup_cosine(index(step), total_steps, warmup_steps, 1.0, min_lr_ratio)


def resolve_warmup_steps(warmup_epochs: float, warmup_steps: int, steps_per_epoch: float) -> int:
    """``warmup_steps`` when >= 0 (it wins, as in the reference), else epochs x steps per epoch."""
    if warmup_steps is not None and warmup_steps >= 0:
        return int(warmup_steps)
    return int(round(warmup_epochs * steps_per_epoch))


SCHEDULE_MODES = ("clean", "reference_sawtooth")
ScheduleMode = Literal["clean", "reference_sawtooth"]


def schedule_index(step: int, steps_per_epoch: int, mode: str, masks_per_clip: int = 1) -> int:
    """Position in the per-step schedule that optimizer step ``step`` reads.

    ``clean``: the step itself. ``reference_sawtooth`` reproduces SPEC §6.1 / §10.4: with multiple
    sampling the reference halves the loader batch, so an epoch has ``masks_per_clip`` times more
    steps than the schedule assumes, yet it indexes the schedule with ``epoch * N + step`` where
    ``N = steps_per_epoch / masks_per_clip``: consecutive epochs overlap and the lr jumps back at
    every epoch boundary.
    """
    if mode == "clean":
        return step
    if mode != "reference_sawtooth":
        raise ValueError(f"model.scheduler.mode={mode!r} is unknown; use one of {SCHEDULE_MODES}")
    epoch, within = divmod(step, max(steps_per_epoch, 1))
    return epoch * max(steps_per_epoch // max(masks_per_clip, 1), 1) + within


# -- layer-wise lr decay (finetuning, SPEC §7.1) -------------------------------------------------
EMBED_NAMES = frozenset({"pos_embed", "cls_token", "mask_token"})


def layer_id(name: str, num_layers: int) -> int:
    """Depth of parameter ``name`` for layer-wise lr decay (the reference's ``get_num_layer_for_vit``).

    Args:
        name: Parameter name relative to the ViT (``"blocks.3.attn.qkv.weight"``).
        num_layers: Number of transformer blocks ``L``.

    Returns:
        0 for the patch embedding and the position / cls / mask tokens, ``i + 1`` for
        ``blocks.i.*`` and ``L + 1`` for everything else (``fc_norm``, ``head``).
    """
    parts = name.split(".")
    if name in EMBED_NAMES or parts[0] == "patch_embed":
        return 0
    if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1]) + 1
    return num_layers + 1


def layer_decay_groups(
    model: nn.Module,
    weight_decay: float,
    layer_decay: float,
    num_layers: int,
    skip_names: Iterable[str] = NO_DECAY_NAMES,
) -> list[dict]:
    """AdamW groups keyed by (layer, decay / no decay), each with its ``lr_scale``.

    ``lr_scale = layer_decay ** (num_layers + 1 - layer_id)``: 1 for the head, ``layer_decay``
    for the last block, ..., ``layer_decay ** (L + 1)`` for the patch embedding. The no-decay set
    is :func:`no_weight_decay` (1-D params, ``.bias``, ``skip_names``); frozen parameters are left
    out. Groups come in order of first appearance and carry a ``name`` like ``"layer_3_decay"``.

    The groups hold no ``lr``: give them one with :func:`apply_lr_scale`.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    skip = frozenset(skip_names)
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        layer = layer_id(name, num_layers)
        no_decay = no_weight_decay(name, param, skip)
        key = f"layer_{layer}_{'no_decay' if no_decay else 'decay'}"
        if key not in groups:
            groups[key] = {
                "name": key,
                "params": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr_scale": layer_decay ** (num_layers + 1 - layer),
            }
        groups[key]["params"].append(param)
    return list(groups.values())


def apply_lr_scale(groups: list[dict], base_lr: float) -> list[dict]:
    """Set each group's ``lr`` to ``base_lr * lr_scale`` (scale 1 where a group has none).

    Call this before building the optimizer: a ``LambdaLR`` factor (such as
    :func:`warmup_cosine_lambda`) multiplies each group's *initial* lr, so scaled initial lrs make
    both the peak and the floor of every group follow its scale, as the reference's
    ``lr = schedule[step] * lr_scale`` does. Returns the same list, modified in place.
    """
    for group in groups:
        group["lr"] = base_lr * group.get("lr_scale", 1.0)
    return groups


# -- the schedule and configure_optimizers, shared by both LightningModules ------------------------
def schedule_length(trainer: Any, total_steps: int, schedule_epochs: float | None) -> tuple[int, float]:
    """(steps the cosine spans, optimizer steps per epoch).

    The cosine spans the run (``total_steps``) unless ``schedule_epochs`` sizes it like the
    reference's ``--epochs`` for a run that stops earlier.
    """
    batches = trainer.num_training_batches
    per_epoch = batches / trainer.accumulate_grad_batches if math.isfinite(batches) else float(total_steps)
    per_epoch = max(per_epoch, 1.0)
    return (int(round(schedule_epochs * per_epoch)) if schedule_epochs else total_steps), per_epoch


@dataclass(frozen=True)
class WarmupCosine:
    """Per-optimizer-step lr schedule: linear warmup from 0, then a half cosine down to ``min_lr``.

    Built by Hydra from ``model.scheduler``; a mistyped key there fails at construction.

    Args:
        min_lr: Final lr per 256 samples (scaled by the global batch like the peak lr).
        warmup_epochs: Warmup length in epochs (used when ``warmup_steps < 0``).
        warmup_steps: Warmup length in optimizer steps; ``>= 0`` overrides ``warmup_epochs``.
        schedule_epochs: Epochs the cosine spans; None = the trainer's run (the reference sized it
            by its ``--epochs`` even for runs stopped earlier).
        mode: ``clean``, or ``reference_sawtooth`` (SPEC §6.1: the reference's lr indexing with
            several masks per clip, see :func:`schedule_index`).
    """

    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    warmup_steps: int = -1
    schedule_epochs: float | None = None
    mode: ScheduleMode = "clean"

    def __post_init__(self) -> None:
        if self.mode not in SCHEDULE_MODES:
            raise ValueError(f"model.scheduler.mode={self.mode!r} is unknown; use one of {SCHEDULE_MODES}")
        if self.min_lr < 0:
            raise ValueError(f"model.scheduler.min_lr={self.min_lr} must be >= 0")

    def factor(self, trainer: Any, lr: float, min_lr: float, views: int = 1) -> Callable[[int], float]:
        """The ``LambdaLR`` factor for a run of ``trainer`` whose peak / final lr are ``lr`` / ``min_lr``.

        ``views`` (samples per clip) only matters for ``reference_sawtooth``, whose schedule counts
        epochs of ``steps / views`` steps.
        """
        sawtooth = self.mode == "reference_sawtooth"
        total = int(trainer.estimated_stepping_batches)
        sched_total, per_epoch = schedule_length(trainer, total, self.schedule_epochs)
        if sawtooth:
            per_epoch, sched_total = per_epoch / views, int(round(sched_total / views))
        warmup = resolve_warmup_steps(self.warmup_epochs, self.warmup_steps, per_epoch)
        steps_per_epoch = int(round(per_epoch * (views if sawtooth else 1)))
        log.info("lr %.3g, min_lr %.3g; %d warmup / %d schedule steps (%s)", lr, min_lr, warmup, sched_total, self.mode)
        if warmup >= sched_total:
            log.warning("warmup (%d steps) spans the whole schedule (%d steps): lr never peaks", warmup, sched_total)
        index = functools.partial(schedule_index, steps_per_epoch=steps_per_epoch, mode=self.mode, masks_per_clip=views)
        return warmup_cosine_lambda(sched_total, warmup, min_lr / lr if lr > 0 else 0.0, index)


def factory_kwarg(factory: OptimizerFactory, name: str) -> Any:
    """A keyword the optimizer factory (a ``functools.partial``) was configured with; KeyError names it."""
    keywords = getattr(factory, "keywords", {})
    if name not in keywords:
        raise KeyError(f"model.optimizer.{name} is not set (the optimizer config must give it)")
    return keywords[name]


class OptimizationMixin:
    """``configure_optimizers`` of every LightningModule of the project.

    The module provides ``optimizer_factory`` (a partial optimizer with ``lr`` per 256 samples,
    ``weight_decay``, ``fused`` (None = fused on CUDA) and the optimizer's own keywords),
    ``schedule`` (:class:`WarmupCosine`), ``batch_size`` (clips per device), ``samples_per_clip``
    (mask views in pretraining, repeated-augmentation samples in finetuning) and
    :meth:`param_groups`. The lr actually used is ``lr x global batch / 256``, with the global batch
    counted in samples: ``batch_size x samples_per_clip x devices x accumulate_grad_batches``.
    """

    optimizer_factory: OptimizerFactory
    schedule: WarmupCosine
    batch_size: int
    samples_per_clip: int
    trainer: Any
    device: torch.device

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """The optimizer's parameter groups (each may carry its own ``lr``)."""
        raise NotImplementedError

    def peak_group_lr(self) -> float:
        """Current lr of the group with the largest scale (the head's under layer decay: the schedule itself)."""
        groups = self.trainer.optimizers[0].param_groups
        return max(groups, key=lambda g: g.get("lr_scale", 1.0))["lr"]

    def global_batch(self) -> int:
        """Samples per optimizer step over all devices, the unit of the lr rule."""
        per_device = self.batch_size * self.samples_per_clip
        return per_device * self.trainer.world_size * self.trainer.accumulate_grad_batches

    def configure_optimizers(self) -> OptimizerLRScheduler:
        gb = self.global_batch()
        lr = scale_lr(factory_kwarg(self.optimizer_factory, "lr"), gb)
        min_lr = scale_lr(self.schedule.min_lr, gb)
        log.info("global batch %d -> lr %.3g, min_lr %.3g", gb, lr, min_lr)
        fused = factory_kwarg(self.optimizer_factory, "fused")
        fused = torch.cuda.is_available() and self.device.type == "cuda" if fused is None else fused
        groups = self.param_groups(lr, factory_kwarg(self.optimizer_factory, "weight_decay"))
        if not groups:
            raise ValueError(f"{type(self).__name__}: no trainable parameters")
        opt = self.optimizer_factory(groups, lr=lr, fused=fused or None)
        factor = self.schedule.factor(self.trainer, lr, min_lr, self.samples_per_clip)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

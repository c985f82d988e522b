"""Optimizer parameter groups, lr scaling and per-step schedules shared by all LightningModules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

NO_DECAY_NAMES = frozenset({"pos_embed", "cls_token", "mask_token"})


def no_weight_decay(name: str, param: torch.Tensor, skip_names: Iterable[str] = NO_DECAY_NAMES) -> bool:
    """The reference's rule: no decay for 1-D params, biases, and position / cls / mask tokens."""
    return param.ndim <= 1 or name.endswith(".bias") or name.split(".")[-1] in set(skip_names)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups, with and without weight decay; frozen parameters are left out."""
    decay, no_decay = [], []
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

"""Tube and random masking, as functions and as :class:`~smile.masking.base.MaskGenerator` subclasses.

Tube masking (VideoMAE, SPEC §3.2) hides the same ``int(ratio * h * w)`` spatial positions in
every temporal slot, so a masked patch cannot be copied from a neighbouring frame. Random
masking hides ``int(ratio * N)`` tokens chosen uniformly over the whole clip; the reference
accepts ``--mask_type random`` but never implemented it, so this is VideoMAE's definition.

Both are batched (one top-k over random scores, no loop over samples) and device-agnostic.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from smile.masking.base import SECOND_VIEWS, MaskGenerator
from smile.masking.ops import (
    Device,
    masked_count,
    num_tokens,
    resolve_device,
    topk_mask,
    validate_batch_size,
    validate_grid,
)

__all__ = ["tube_mask", "random_mask", "MaskGenerator", "TubeMasking", "RandomMasking", "SECOND_VIEWS"]


def tube_mask(
    batch_size: int,
    grid: Sequence[int],
    ratio: float,
    generator: torch.Generator | None = None,
    device: Device = None,
) -> Tensor:
    """Tube masks: the same random spatial positions masked in every temporal slot.

    Args:
        batch_size: number of independent masks, >= 1.
        grid: token grid ``(t, h, w)``, e.g. ``(8, 14, 14)`` for 16x224x224 clips.
        ratio: masking ratio in (0, 1); ``n = int(ratio * h * w)`` positions per slot.
        generator: optional generator for reproducibility. Random numbers are drawn on the
            generator's device and then moved to ``device`` (a CPU generator can feed CUDA masks).
        device: device of the result; defaults to the generator's device, else CPU.

    Returns:
        Bool ``[B, t*h*w]``, True = masked, t-major; exactly ``t * n`` True per row.
    """
    batch_size = validate_batch_size(batch_size)
    t, h, w = validate_grid(grid)
    n = masked_count(ratio, h * w)
    device = resolve_device(generator, device)
    priority = torch.zeros(batch_size, h * w, device=device)  # [B, h*w], one tier
    spatial = topk_mask(priority, n, generator)  # [B, h*w]
    return spatial[:, None, :].expand(batch_size, t, h * w).reshape(batch_size, t * h * w)


def random_mask(
    batch_size: int,
    num_tokens_or_grid: int | Sequence[int],
    ratio: float,
    generator: torch.Generator | None = None,
    device: Device = None,
) -> Tensor:
    """Uniformly random masks with exactly ``int(ratio * N)`` masked tokens per sample.

    The reference parses ``--mask_type random`` but has no implementation; this follows
    VideoMAE's definition (independent of the temporal structure).

    Args:
        batch_size: number of independent masks, >= 1.
        num_tokens_or_grid: ``N`` or a ``(t, h, w)`` grid with ``N = t*h*w``.
        ratio: masking ratio in (0, 1).
        generator: optional generator; see :func:`tube_mask` for the device rule.
        device: device of the result; defaults to the generator's device, else CPU.

    Returns:
        Bool ``[B, N]``, True = masked.
    """
    batch_size = validate_batch_size(batch_size)
    total = num_tokens(num_tokens_or_grid)
    k = masked_count(ratio, total)
    device = resolve_device(generator, device)
    priority = torch.zeros(batch_size, total, device=device)  # [B, N], one tier
    return topk_mask(priority, k, generator)


class TubeMasking(MaskGenerator):
    """Tube masking (SPEC §3.2) as a :class:`MaskGenerator`; the stage-2 / VideoMAE default."""

    def sample(
        self,
        batch_size: int,
        grid: Sequence[int],
        generator: torch.Generator | None,
        device: Device,
        boxes: Tensor | None = None,
        patch_size: int = 16,
    ) -> Tensor:
        return tube_mask(batch_size, grid, self.ratio, generator, device)

    def num_masked(self, grid: Sequence[int]) -> int:
        t, h, w = validate_grid(grid)
        return t * masked_count(self.ratio, h * w)


class RandomMasking(MaskGenerator):
    """Uniformly random token masking as a :class:`MaskGenerator` (not in the reference)."""

    def sample(
        self,
        batch_size: int,
        grid: Sequence[int],
        generator: torch.Generator | None,
        device: Device,
        boxes: Tensor | None = None,
        patch_size: int = 16,
    ) -> Tensor:
        return random_mask(batch_size, grid, self.ratio, generator, device)

    def num_masked(self, grid: Sequence[int]) -> int:
        return masked_count(self.ratio, num_tokens(grid))

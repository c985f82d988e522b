"""Tube and random masking, as functions and as callable mask generators for the data module.

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

from smile.masking.ops import (
    masked_count,
    num_tokens,
    topk_mask,
    validate_batch_size,
    validate_grid,
    validate_ratio,
)

__all__ = ["tube_mask", "random_mask", "MaskGenerator", "TubeMasking", "RandomMasking", "SECOND_VIEWS"]

SECOND_VIEWS = ("independent", "batch_permute")

Device = torch.device | str | None


def _resolve_device(generator: torch.Generator | None, device: Device) -> Device:
    """Default the output device to the generator's, so a lone CUDA generator just works."""
    if device is None and generator is not None:
        return generator.device
    return device


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
    device = _resolve_device(generator, device)
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
    device = _resolve_device(generator, device)
    priority = torch.zeros(batch_size, total, device=device)  # [B, N], one tier
    return topk_mask(priority, k, generator)


class MaskGenerator:
    """Callable that builds ``V`` mask views per clip: ``(B, grid) -> bool [B, V, N]``.

    ``masks_per_clip`` views let one decoded clip serve several masked forwards (SMILE's
    "multiple sampling", SPEC §3.5). The views after the first are either fresh masks
    (``independent``) or, as in the reference, the first view's masks shuffled across the batch
    rows (``batch_permute``; a sample may get its own mask back). Every view keeps the exact
    per-sample count.

    Subclasses implement :meth:`sample` (one view) and :meth:`num_masked`. ``boxes`` (object
    trajectories ``[B, K, T, 4]``) and ``patch_size`` reach :meth:`sample`; schemes that do not
    use objects (tube, random) ignore them.

    Args:
        ratio: masking ratio in (0, 1).
        masks_per_clip: mask views per clip, >= 1.
        second_view: ``independent`` or ``batch_permute`` (views after the first).
    """

    def __init__(
        self,
        ratio: float,
        masks_per_clip: int = 1,
        second_view: str = "independent",
    ) -> None:
        self.ratio = validate_ratio(ratio)
        if isinstance(masks_per_clip, bool) or not isinstance(masks_per_clip, int) or masks_per_clip < 1:
            raise ValueError(f"masks_per_clip must be an int >= 1, got {masks_per_clip!r}")
        if second_view not in SECOND_VIEWS:
            raise ValueError(f"second_view must be one of {SECOND_VIEWS}, got {second_view!r}")
        self.masks_per_clip = masks_per_clip
        self.second_view = second_view

    def sample(
        self,
        batch_size: int,
        grid: Sequence[int],
        generator: torch.Generator | None,
        device: Device,
        boxes: Tensor | None = None,
        patch_size: int = 16,
    ) -> Tensor:
        """One view: bool ``[B, N]``; ``boxes`` (``[B, K, T, 4]`` or None) has ``B`` rows."""
        raise NotImplementedError

    def num_masked(self, grid: Sequence[int]) -> int:
        """Exact number of masked tokens per sample and view for ``grid``."""
        raise NotImplementedError

    def __call__(
        self,
        batch_size: int,
        grid: Sequence[int],
        generator: torch.Generator | None = None,
        device: Device = None,
        boxes: Tensor | None = None,
        patch_size: int = 16,
    ) -> Tensor:
        """Build masks for a batch: bool ``[B, V, t*h*w]``, True = masked.

        Args:
            batch_size: clips in the batch.
            grid: token grid ``(t, h, w)``.
            generator: optional generator (see :func:`tube_mask` for the device rule).
            device: device of the result.
            boxes: optional object boxes ``[B, K, T, 4]`` (trajectory-aware masking only).
            patch_size: spatial patch size in pixels, to map boxes to tokens.
        """
        batch_size = validate_batch_size(batch_size)
        if boxes is not None and boxes.shape[0] != batch_size:
            raise ValueError(f"boxes must have batch_size={batch_size} rows, got shape {tuple(boxes.shape)}")
        views = self.masks_per_clip
        if views == 1 or self.second_view == "independent":
            rep = None if boxes is None else boxes.repeat_interleave(views, dim=0)  # [B*V, K, T, 4]
            masks = self.sample(batch_size * views, grid, generator, device, rep, patch_size)  # [B*V, N]
            return masks.reshape(batch_size, views, -1)
        first = self.sample(batch_size, grid, generator, device, boxes, patch_size)  # [B, N]
        out = [first] + [first[self._permutation(batch_size, generator, first.device)] for _ in range(views - 1)]
        return torch.stack(out, dim=1)  # [B, V, N]

    @staticmethod
    def _permutation(n: int, generator: torch.Generator | None, device: torch.device) -> Tensor:
        """Random permutation of ``n`` rows, drawn on the generator's device, moved to ``device``."""
        if generator is None:
            return torch.randperm(n, device=device)
        return torch.randperm(n, generator=generator, device=generator.device).to(device)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ratio={self.ratio}, masks_per_clip={self.masks_per_clip}, "
            f"second_view={self.second_view!r})"
        )


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

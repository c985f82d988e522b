"""The base of every mask generator: ``V`` exact-count mask views per clip, built for a whole batch.

The data module depends on this class only (``masking(B, grid, generator=, device=, boxes=,
patch_size=) -> bool [B, V, N]`` and ``masks_per_clip``); tube, random and trajectory-aware masking
differ only in how they draw one view (:meth:`MaskGenerator.sample`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from smile.masking.ops import Device, validate_batch_size, validate_ratio

__all__ = ["SECOND_VIEWS", "MaskGenerator"]

SECOND_VIEWS = ("independent", "batch_permute")


class MaskGenerator(ABC):
    """Callable that builds ``V`` mask views per clip: ``(B, grid) -> bool [B, V, N]``.

    ``masks_per_clip`` views let one decoded clip serve several masked forwards (SMILE's
    "multiple sampling", SPEC §3.5). The views after the first are either fresh masks
    (``independent``) or, as in the reference, the first view's masks shuffled across the batch
    rows (``batch_permute``; a sample may get its own mask back). Every view keeps the exact
    per-sample count.

    Subclasses implement :meth:`sample` (one view) and :meth:`num_masked`; the data module only
    calls the generator and reads ``masks_per_clip``. ``boxes`` (object trajectories
    ``[B, K, T, 4]``) and ``patch_size`` reach :meth:`sample`; schemes that do not use objects
    (tube, random) ignore them. Every mask is bool, True = masked, tokens t-major.

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

    @abstractmethod
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

    @abstractmethod
    def num_masked(self, grid: Sequence[int]) -> int:
        """Exact number of masked tokens per sample and view for ``grid``."""

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

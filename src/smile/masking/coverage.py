"""Which tokens an object covers: boxes of a clip's frames -> bool token maps (SPEC §3.3).

The first half of trajectory-aware masking, shared with anything that needs to know where the
synthetic objects are in token space (visualisation, statistics). Pure broadcast comparisons on
the boxes' device; no loop over samples or objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from smile.masking.ops import validate_grid

__all__ = ["object_tokens", "token_labels"]


def _floor_div(x: Tensor, p: int) -> Tensor:
    """``floor(x / p)`` for int or float coordinates, as an int64 tensor."""
    if x.is_floating_point():
        return torch.floor(x / p).long()
    return torch.div(x, p, rounding_mode="floor").long()


def _ceil_div(x: Tensor, p: int) -> Tensor:
    """``ceil(x / p)`` for int or float coordinates, as an int64 tensor."""
    if x.is_floating_point():
        return torch.ceil(x / p).long()
    return -torch.div(-x, p, rounding_mode="floor").long()


def _validate_boxes(boxes: Tensor, t: int) -> int:
    """Check ``boxes`` is ``[B, K, T, 4]`` with ``T`` a multiple of ``t``; return the tubelet size."""
    if not isinstance(boxes, Tensor) or boxes.dim() != 4 or boxes.shape[-1] != 4:
        shape = tuple(boxes.shape) if isinstance(boxes, Tensor) else type(boxes).__name__
        raise ValueError(f"boxes must be a tensor [B, K, T, 4] of (x1, y1, x2, y2), got {shape}")
    frames = boxes.shape[2]
    if frames < t or frames % t:
        raise ValueError(f"boxes have T={frames} frames, not a multiple of the grid's t={t} slots")
    return frames // t


def object_tokens(boxes: Tensor, grid: Sequence[int], patch_size: int = 16, dilation: int = 1) -> Tensor:
    """Tokens covered by any object: bool ``[B, t*h*w]``, t-major.

    For object ``k`` and temporal slot ``i``, the box is the union of the ROIs of the slot's
    ``tub = T // t`` frames (frames ``i*tub .. i*tub+tub-1``). Its tokens are columns
    ``[max(floor(x1/p), 0), min(ceil(x2/p) + dilation, w))`` and rows likewise with y and ``h``.
    ``dilation=1`` is the reference's extra column/row, on the right and bottom only (SPEC §10
    item 11); ``0`` gives the plain covering cells. A box wholly outside the frame covers
    nothing (the reference would turn a negative right edge into a numpy slice from the end;
    its own sampler never produces one, since box centres stay inside the frame).

    Args:
        boxes: ``[B, K, T, 4]`` pixel ``(x1, y1, x2, y2)``, pre-rotation, unclipped; int or float.
        grid: token grid ``(t, h, w)``.
        patch_size: spatial patch size in pixels.
        dilation: extra cells added on the right and bottom, >= 0.
    """
    t, h, w = validate_grid(grid)
    tub = _validate_boxes(boxes, t)
    b, k = boxes.shape[:2]
    slots = boxes.reshape(b, k, t, tub, 4)  # [B, K, t, tub, 4]
    x1, y1 = slots[..., 0].amin(-1), slots[..., 1].amin(-1)  # [B, K, t]
    x2, y2 = slots[..., 2].amax(-1), slots[..., 3].amax(-1)  # [B, K, t]
    col = torch.arange(w, device=boxes.device)
    row = torch.arange(h, device=boxes.device)
    in_col = (col >= _floor_div(x1, patch_size)[..., None]) & (col < _ceil_div(x2, patch_size)[..., None] + dilation)
    in_row = (row >= _floor_div(y1, patch_size)[..., None]) & (row < _ceil_div(y2, patch_size)[..., None] + dilation)
    cover = in_row[..., :, None] & in_col[..., None, :]  # [B, K, t, h, w]
    return cover.any(dim=1).reshape(b, t * h * w)  # [B, N]


def token_labels(objects: Tensor, picked: Tensor, grid: Sequence[int]) -> Tensor:
    """Per-token labels: 0 background, 1 object to mask, 2 object in a picked slot (protected).

    Args:
        objects: bool ``[B, t*h*w]`` from :func:`object_tokens`.
        picked: bool ``[B, t]``, True for each sample's picked (protected) slots.
        grid: token grid ``(t, h, w)``.

    Returns:
        int64 ``[B, t*h*w]``.
    """
    t, h, w = validate_grid(grid)
    slot_picked = picked[:, :, None].expand(-1, t, h * w).reshape(picked.shape[0], t * h * w)  # [B, N]
    return objects.long() * (1 + slot_picked.long())

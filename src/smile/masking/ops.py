"""Small tensor helpers shared by every masking scheme.

All masks in the project are bool tensors with ``True = masked`` in the token order ``t*h*w``
(t-major), the order in which the patch-embedding conv output is flattened (SPEC §3.1).

Every scheme (tube, random, trajectory-aware) reduces to one primitive: pick exactly ``k`` tokens
per row by priority, breaking ties at random (:func:`topk_mask`). Exact, identical counts per
sample are what lets the encoder gather visible tokens with a plain reshape to ``[B, N_vis, D]``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "masked_count",
    "num_tokens",
    "random_scores",
    "topk_mask",
    "gather_tokens",
    "check_mask_counts",
]

Device = torch.device | str | None

# Tie-break noise lives in [0, TIE_BREAK_SCALE). Half a unit (not a full one) so that float32
# rounding of ``priority + noise`` can never reach the next integer tier.
TIE_BREAK_SCALE = 0.5


def resolve_device(generator: torch.Generator | None, device: Device) -> Device:
    """Default the output device to the generator's, so a lone CUDA generator just works."""
    if device is None and generator is not None:
        return generator.device
    return device


def validate_ratio(ratio: float) -> float:
    """Return ``ratio`` as float, or raise if it is not strictly inside (0, 1).

    0 and 1 are rejected because they leave nothing to predict or nothing to see.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ValueError(f"ratio must be a float in the open interval (0, 1), got {ratio!r}")
    if not 0.0 < float(ratio) < 1.0:
        raise ValueError(f"ratio must be in the open interval (0, 1), got {ratio!r}")
    return float(ratio)


def masked_count(ratio: float, num: int) -> int:
    """Number of masked items out of ``num``: ``int(ratio * num)``, as the reference computes it.

    The product is taken in exactly this order (``ratio * num`` with ``num`` already multiplied
    out, e.g. 196 for a 14x14 frame) so float rounding matches the reference: 0.9 * 196 -> 176,
    0.8 * 196 -> 156, 0.75 * 196 -> 147.
    """
    ratio = validate_ratio(ratio)
    return int(ratio * num)


def validate_grid(grid: Sequence[int]) -> tuple[int, int, int]:
    """Return ``grid`` as a ``(t, h, w)`` tuple of positive ints, or raise ValueError."""
    try:
        out = tuple(operator.index(g) for g in grid)
    except TypeError as err:
        raise ValueError(f"grid must be (t, h, w) positive ints, got {grid!r}") from err
    if len(out) != 3 or any(g < 1 for g in out):
        raise ValueError(f"grid must be (t, h, w) positive ints, got {grid!r}")
    t, h, w = out
    return t, h, w


def num_tokens(num_tokens_or_grid: int | Sequence[int]) -> int:
    """Token count from either an int or a ``(t, h, w)`` grid."""
    if isinstance(num_tokens_or_grid, int) and not isinstance(num_tokens_or_grid, bool):
        if num_tokens_or_grid < 1:
            raise ValueError(f"number of tokens must be >= 1, got {num_tokens_or_grid}")
        return num_tokens_or_grid
    if not isinstance(num_tokens_or_grid, Sequence):  # e.g. a bool
        raise ValueError(f"expected a token count or a (t, h, w) grid, got {num_tokens_or_grid!r}")
    t, h, w = validate_grid(num_tokens_or_grid)
    return t * h * w


def validate_batch_size(batch_size: int) -> int:
    """Return ``batch_size`` or raise if it is not an int >= 1."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    return batch_size


def random_scores(
    shape: Sequence[int],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Uniform [0, 1) float32 scores of ``shape`` on ``device``.

    A ``torch.Generator`` only draws on its own device, so with a generator the numbers are drawn
    there (e.g. a CPU generator for reproducible DataLoader workers) and then moved to ``device``.
    The result is therefore identical for a given seed whatever ``device`` is asked for.
    """
    if generator is None:
        return torch.rand(tuple(shape), device=device)
    scores = torch.rand(tuple(shape), generator=generator, device=generator.device)
    return scores if device is None else scores.to(device)


def topk_mask(priority: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """Pick exactly ``k`` tokens per row, highest priority first, random among equals.

    Integer priorities act as tiers: every token of a higher tier is chosen before any token of
    a lower tier, and within a tier the choice is uniform. This is how trajectory-aware masking
    reproduces the reference's set-based balancing in one batched call (DESIGN §4); tube and
    random masking are the single-tier case (all priorities zero).

    Ties are broken by adding uniform noise in [0, 0.5) -- not [0, 1) -- so float32 rounding can
    never push a token into the next tier. Fractional priorities are accepted but values closer
    than 0.5 are then mixed by the noise.

    Args:
        priority: ``[B, N]`` (or ``[..., N]``) priorities, integer-valued for strict tiers.
        k: tokens to select per row, ``0 <= k <= N``.
        generator: Optional generator; noise is drawn on its device, then moved to
            ``priority.device``.

    Returns:
        Bool tensor of ``priority``'s shape with exactly ``k`` True per row.
    """
    n = priority.shape[-1]
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= n:
        raise ValueError(f"k must be an int in [0, {n}], got {k!r}")
    noise = random_scores(priority.shape, generator, priority.device)  # [B, N]
    scores = priority.float() + TIE_BREAK_SCALE * noise  # [B, N]
    idx = scores.topk(k, dim=-1, sorted=False).indices  # [B, k]
    mask = torch.zeros(priority.shape, dtype=torch.bool, device=priority.device)
    return mask.scatter_(-1, idx, True)


def gather_tokens(x: Tensor, mask: Tensor) -> Tensor:
    """Select the tokens where ``mask`` is True, keeping ascending token order.

    Args:
        x: ``[B, N, ...]`` tokens.
        mask: ``[B, N]`` bool with the same count of True in every row.

    Returns:
        ``[B, n, ...]`` with ``n`` the per-row count. Pass ``~mask`` for the visible tokens.
    """
    if mask.dtype != torch.bool or mask.shape != x.shape[:2]:
        raise ValueError(f"mask must be bool of shape {tuple(x.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    counts = mask.sum(-1)  # [B]
    if x.shape[0] and bool((counts != counts[0]).any()):
        raise ValueError(f"every row needs the same number of selected tokens, got {counts.tolist()}")
    return x[mask].reshape(x.shape[0], -1, *x.shape[2:])  # [B, n, ...]


def check_mask_counts(mask: Tensor, expected_masked: int) -> None:
    """Raise ValueError unless every row of ``mask`` has exactly ``expected_masked`` True.

    Args:
        mask: bool ``[..., N]`` (e.g. ``[B, N]`` or ``[B, V, N]``); rows are along the last dim.
        expected_masked: required count per row.
    """
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    counts = mask.sum(-1).reshape(-1)  # [rows]
    bad = (counts != expected_masked).nonzero().flatten()
    if bad.numel():
        raise ValueError(
            f"mask must have exactly {expected_masked} masked tokens per row of {mask.shape[-1]}; "
            f"{bad.numel()} of {counts.numel()} rows differ, e.g. row {int(bad[0])} has {int(counts[bad[0]])}"
        )

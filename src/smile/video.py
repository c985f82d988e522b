"""Pure clip helpers every package shares: normalisation constants, (de)normalisation, patch layout.

Nothing here imports another ``smile`` module, so ``data/``, ``callbacks/``, ``teachers/`` and
``models/`` can all depend on it without depending on each other. Clips are channel-first
``[B, C, T, H, W]`` (or ``[C, T, H, W]``); tokens are t-major ``(t, h, w)``; a token's pixel cube is
flattened ``(pt ph pw c)``: pixel-major, channel last (the VideoMAE pixel-target layout, SPEC §5.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import Tensor

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "denormalize",
    "normalize",
    "patchify",
    "token_grid",
    "unpatchify",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
CLIP_MEAN: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


def _upcast(x: Tensor) -> Tensor:
    """Float32 for ints and half types; float64 stays float64 (reference checks run in double)."""
    return x if x.dtype == torch.float64 else x.float()


def _channel_view(values: Sequence[float] | Tensor, like: Tensor, channel_dim: int) -> Tensor:
    """Per-channel values in ``like``'s dtype and device, shaped to broadcast at ``channel_dim``."""
    stats = torch.as_tensor(values, dtype=like.dtype, device=like.device)
    if stats.numel() != like.shape[channel_dim]:
        raise ValueError(f"expected {like.shape[channel_dim]} per-channel values, got {stats.numel()}")
    shape = [1] * like.ndim
    shape[channel_dim] = -1
    return stats.view(shape)


def normalize(
    video: Tensor,
    mean: Sequence[float] | Tensor = IMAGENET_MEAN,
    std: Sequence[float] | Tensor = IMAGENET_STD,
    channel_dim: int = -4,
) -> Tensor:
    """uint8 (0..255) or float (0..1) clips -> float32 ``(x - mean) / std`` (float64 stays float64).

    Args:
        video: ``[..., C, T, H, W]`` (``channel_dim=-4``, the default) or frames ``[T, H, W, C]``
            (``channel_dim=-1``).
        mean: Per-channel mean in [0, 1] units.
        std: Per-channel std in [0, 1] units.
        channel_dim: Where the channels are.
    """
    scale = 255.0 if video.dtype == torch.uint8 else 1.0
    x = _upcast(video)
    m = _channel_view(mean, x, channel_dim) * scale
    s = _channel_view(std, x, channel_dim) * scale
    out = x - m if x is video else x.sub_(m)  # never writes into the caller's tensor; one float buffer
    return out.div_(s)


def denormalize(
    video: Tensor,
    mean: Sequence[float] | Tensor = IMAGENET_MEAN,
    std: Sequence[float] | Tensor = IMAGENET_STD,
    channel_dim: int = -4,
    clamp: bool = True,
) -> Tensor:
    """Normalised clips -> float32 pixel values in [0, 1] (clamped unless ``clamp=False``; float64 stays float64)."""
    x = _upcast(video)
    out = x * _channel_view(std, x, channel_dim) + _channel_view(mean, x, channel_dim)
    return out.clamp_(0.0, 1.0) if clamp else out


def token_grid(shape: Sequence[int], patch_size: int, tubelet_size: int) -> tuple[int, int, int]:
    """Token grid ``(T', H', W')`` of a clip whose last three dims are ``(T, H, W)``.

    Raises:
        ValueError: if a dim is not divisible by its token size.
    """
    t, h, w = (int(s) for s in shape[-3:])
    if t % tubelet_size or h % patch_size or w % patch_size:
        raise ValueError(
            f"clip (T, H, W) = {(t, h, w)} must be divisible by (tubelet, p, p) = "
            f"{(tubelet_size, patch_size, patch_size)}"
        )
    return t // tubelet_size, h // patch_size, w // patch_size


def patchify(video: Tensor, patch_size: int, tubelet_size: int) -> Tensor:
    """``[B, C, T, H, W]`` -> ``[B, N, tubelet*p*p*C]`` cubes, tokens t-major, values ``(pt ph pw c)``."""
    token_grid(video.shape, patch_size, tubelet_size)
    return rearrange(
        video,
        "b c (t pt) (h ph) (w pw) -> b (t h w) (pt ph pw c)",
        pt=tubelet_size,
        ph=patch_size,
        pw=patch_size,
    )


def unpatchify(cubes: Tensor, grid: Sequence[int], patch_size: int, tubelet_size: int, channels: int = 3) -> Tensor:
    """Inverse of :func:`patchify`: ``[B, N, tubelet*p*p*C]`` with ``N = T'*H'*W'`` -> ``[B, C, T, H, W]``."""
    t, h, w = grid
    return rearrange(
        cubes,
        "b (t h w) (pt ph pw c) -> b c (t pt) (h ph) (w pw)",
        t=t,
        h=h,
        w=w,
        pt=tubelet_size,
        ph=patch_size,
        pw=patch_size,
        c=channels,
    )

"""Helpers shared by the clip transforms: resizing, normalising (via :mod:`smile.video`) and shape checks.

Clips keep their dtype through resizing: PyTorch resizes uint8 ``channels_last`` tensors directly
on the CPU, so the uint8 paths never build float copies (DESIGN §4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from smile.video import IMAGENET_MEAN, IMAGENET_STD, normalize


def resize_clip(clip: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of uint8 frames ``[T, 3, h, w]`` -> ``[T, 3, *size]``, ignoring aspect ratio.

    With ``antialias=True`` this matches PIL's ``Image.resize(..., BILINEAR)`` (what the reference
    uses) to within one grey level: PIL widens the bilinear kernel when shrinking, and so does
    PyTorch's antialiased mode. Plain bilinear (``antialias=False``) samples only 2x2 pixels and
    differs from PIL by up to ~25 levels on textured downscales; both are identical when upscaling.
    On CPU the uint8 ``channels_last`` kernel runs without a float copy; elsewhere the resize runs
    in float32 and rounds back.
    """
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    if clip.device.type == "cpu":
        clip = clip.contiguous(memory_format=torch.channels_last)
        return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    out = F.interpolate(clip.float(), size=size, mode="bilinear", align_corners=False, antialias=antialias)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def normalize_clip(
    clip: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> float32 ``[3, T, H, W]``: ``(x / 255 - mean) / std``.

    The channels move first while the clip is still uint8 (one strided pass over bytes, not floats),
    then :func:`smile.video.normalize` runs on the contiguous channel-first clip.
    """
    _check_frames(clip)
    return normalize(clip.permute(3, 0, 1, 2).contiguous(), mean, std)  # [3, T, H, W]


def _resize(clip: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of the last two dims of a 4-D clip; uint8 stays uint8 (see resize_clip)."""
    if clip.dtype == torch.uint8:
        return resize_clip(clip, size, antialias)
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def _check_4d(clip: torch.Tensor, what: str) -> None:
    if clip.ndim != 4:
        raise ValueError(f"{what} expects a 4-D clip [A, B, H, W], got {tuple(clip.shape)}")


def _check_frames(frames: torch.Tensor | np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {tuple(frames.shape)}")

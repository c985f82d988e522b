"""Regression targets: raw-pixel cubes (SPEC §5.2) and the normalisation of teacher features (§5.1).

The pixel layout and the ImageNet constants live in :mod:`smile.video` (re-exported here for old imports).

Everything here runs in float32 at least, whatever the input precision: targets are
standardised with small denominators, where bf16/fp16 would lose most of the signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from smile.video import IMAGENET_MEAN, IMAGENET_STD, denormalize, patchify

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FEATURE_NORMS",
    "pixel_targets",
    "clip_channel_standardize",
    "token_layernorm",
    "normalize_features",
    "PixelTarget",
]

FEATURE_NORMS = ("clip_channel_standardize", "token_layernorm", "none")


def _upcast(x: Tensor) -> Tensor:
    """Float32 for half types and ints; float64 stays float64."""
    return x if x.dtype == torch.float64 else x.float()


def _standardize(x: Tensor, dim: int, eps: float) -> Tensor:
    """``(x - mean) / (unbiased std + eps)`` along ``dim``, as the reference does for both targets."""
    mean = x.mean(dim=dim, keepdim=True)
    std = x.var(dim=dim, unbiased=True, keepdim=True).sqrt()
    return (x - mean) / (std + eps)


def pixel_targets(
    video: Tensor,
    patch_size: int = 16,
    tubelet_size: int = 2,
    mean: Sequence[float] | Tensor = IMAGENET_MEAN,
    std: Sequence[float] | Tensor = IMAGENET_STD,
    normalize: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """VideoMAE pixel targets: one flattened (tubelet x p x p) cube of raw pixels per token.

    The clip is un-normalised first so the targets are pixel values in [0, 1], independent of
    the input normalisation. With ``normalize`` each cube is standardised per channel over its
    own ``tubelet*p*p`` pixels (unbiased std), which VideoMAE found gives better features.

    Args:
        video: ``[B, C, T, H, W]`` clip normalised with ``mean``/``std``; T, H, W divisible by
            ``tubelet_size``, ``patch_size``, ``patch_size``.
        patch_size: spatial patch side ``p``.
        tubelet_size: frames per token.
        mean: per-channel mean used to normalise ``video``.
        std: per-channel std used to normalise ``video``.
        normalize: standardise each cube per channel.
        eps: added to the std.

    Returns:
        float32 (float64 for float64 input) ``[B, N, tubelet*p*p*C]`` in :func:`smile.video.patchify`'s
        layout: tokens t-major ``(t, h, w)``, values ``(p c)``, i.e. ``pixel_idx * C + c``.
    """
    if video.ndim != 5:
        raise ValueError(f"video must be [B, C, T, H, W], got shape {tuple(video.shape)}")
    x = denormalize(video, mean, std, channel_dim=1, clamp=False)  # [B, C, T, H, W], pixel values
    cubes = patchify(x, patch_size, tubelet_size)  # [B, N, tubelet*p*p*C]
    if not normalize:
        return cubes
    cubes = cubes.unflatten(-1, (-1, video.shape[1]))  # [B, N, tubelet*p*p, C]
    return _standardize(cubes, dim=-2, eps=eps).flatten(-2)  # [B, N, tubelet*p*p*C]


def clip_channel_standardize(feats: Tensor, eps: float = 1e-6) -> Tensor:
    """Standardise each channel across the tokens of its own clip (the reference default).

    This is what the reference's ``normlize_target`` does to teacher features of shape
    ``[B, N, C]``: statistics over dim -2 (tokens), not a per-token LayerNorm (SPEC §5.1).

    Args:
        feats: ``[B, N, C]`` teacher features.
        eps: added to the unbiased std.

    Returns:
        float32 ``[B, N, C]``: ``(f - mean_N) / (std_N + eps)`` per clip and channel.
    """
    return _standardize(_upcast(feats), dim=-2, eps=eps)


def token_layernorm(feats: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-token LayerNorm over channels without affine parameters (MAE/MaskFeat-style option)."""
    return F.layer_norm(_upcast(feats), feats.shape[-1:], eps=eps)


def normalize_features(feats: Tensor, mode: str = "clip_channel_standardize", eps: float = 1e-6) -> Tensor:
    """Apply the target normalisation named by ``mode`` (config key ``target.norm``).

    Args:
        feats: ``[B, N, C]`` teacher features.
        mode: one of ``clip_channel_standardize`` (reference), ``token_layernorm``, ``none``.
        eps: numerical floor for the chosen normalisation.

    Returns:
        float32 ``[B, N, C]``.
    """
    if mode == "clip_channel_standardize":
        return clip_channel_standardize(feats, eps)
    if mode == "token_layernorm":
        return token_layernorm(feats, eps)
    if mode == "none":
        return _upcast(feats)
    raise ValueError(f"unknown feature normalisation {mode!r}; expected one of {FEATURE_NORMS}")


class PixelTarget(nn.Module):
    """Pixel-regression target as a module, interchangeable with the feature teachers.

    It holds no parameters and only non-persistent buffers, so it never enters a checkpoint
    (``state_dict()`` is empty) but still follows ``.to(device)``.

    Attributes:
        dim: target width per token, ``tubelet*p*p*3`` (1536 for 2x16x16).
    """

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        patch_size: int = 16,
        tubelet_size: int = 2,
        normalize: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean and std need the same length, got {len(mean)} and {len(std)}")
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.normalize = normalize
        self.eps = eps
        self.dim = tubelet_size * patch_size * patch_size * len(mean)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=False)

    @torch.no_grad()
    def forward(self, video: Tensor) -> Tensor:
        """``[B, 3, T, H, W]`` normalised clip -> float32 ``[B, N, dim]`` targets."""
        return pixel_targets(video, self.patch_size, self.tubelet_size, self.mean, self.std, self.normalize, self.eps)

    def extra_repr(self) -> str:
        return (
            f"patch_size={self.patch_size}, tubelet_size={self.tubelet_size}, "
            f"normalize={self.normalize}, dim={self.dim}"
        )

"""Frozen regression targets: pixel cubes and normalisation of teacher features."""

from smile.teachers.targets import (
    FEATURE_NORMS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PixelTarget,
    clip_channel_standardize,
    normalize_features,
    pixel_targets,
    token_layernorm,
)

__all__ = [
    "FEATURE_NORMS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PixelTarget",
    "clip_channel_standardize",
    "normalize_features",
    "pixel_targets",
    "token_layernorm",
]

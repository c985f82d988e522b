"""Frozen regression targets: pixel cubes, teacher features (CLIP, DINO, random) and their normalisation."""

from smile.teachers.clip import (
    CLIP_ARCHS,
    CLIP_MEAN,
    CLIP_STD,
    CLIPArch,
    CLIPTeacher,
    build_clip_visual,
    load_clip_visual_state_dict,
)
from smile.teachers.dino import DINOTeacher, load_dino_state_dict
from smile.teachers.feature import FeatureTarget, FrozenTeacher, resample_token_grid
from smile.teachers.random import RandomTeacher
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
    "CLIP_ARCHS",
    "CLIP_MEAN",
    "CLIP_STD",
    "CLIPArch",
    "CLIPTeacher",
    "DINOTeacher",
    "FEATURE_NORMS",
    "FeatureTarget",
    "FrozenTeacher",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PixelTarget",
    "RandomTeacher",
    "build_clip_visual",
    "clip_channel_standardize",
    "load_clip_visual_state_dict",
    "load_dino_state_dict",
    "normalize_features",
    "pixel_targets",
    "resample_token_grid",
    "token_layernorm",
]

"""Synthetic object motion (SMILE, SPEC §2.4): object bank, trajectories, batched overlay, backgrounds.

Pure torch/numpy and device-agnostic: no file I/O here (``smile.data.objects`` reads and packs PNGs).
"""

from smile.motion.backgrounds import BACKGROUNDS, apply_background, generator_on
from smile.motion.composite import (
    NO_OBJECT,
    MotionParams,
    SyntheticMotion,
    boxes_in_frame,
    composite,
    cpu_generator,
    placement_theta,
)
from smile.motion.sprites import ObjectBank
from smile.motion.trajectories import TrajectoryConfig, sample_trajectories

__all__ = [
    "BACKGROUNDS",
    "NO_OBJECT",
    "MotionParams",
    "ObjectBank",
    "SyntheticMotion",
    "TrajectoryConfig",
    "apply_background",
    "boxes_in_frame",
    "composite",
    "cpu_generator",
    "generator_on",
    "placement_theta",
    "sample_trajectories",
]

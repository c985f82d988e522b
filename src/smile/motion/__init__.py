"""Synthetic object motion (SMILE, SPEC §2.4): object bank, trajectories, batched overlay, backgrounds.

Pure torch/numpy and device-agnostic: no file I/O here (``smile.data.objects`` reads and packs PNGs).
Modules: ``base`` (the :class:`Motion` protocol and :class:`MotionParams`), ``sprites`` (object bank),
``trajectory_config`` / ``keyframes`` / ``trajectories`` (box and angle sampling), ``warp`` (placement
geometry), ``composite`` (batched paste + blend), ``backgrounds``, ``overlay`` (:class:`SyntheticMotion`).
"""

from smile.motion.backgrounds import BACKGROUNDS, apply_background, generator_on
from smile.motion.base import NO_OBJECT, Motion, MotionParams
from smile.motion.composite import composite
from smile.motion.overlay import SyntheticMotion, cpu_generator
from smile.motion.sprites import ObjectBank
from smile.motion.trajectories import TrajectoryConfig, sample_trajectories
from smile.motion.warp import boxes_in_frame, placement_theta

__all__ = [
    "BACKGROUNDS",
    "NO_OBJECT",
    "Motion",
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

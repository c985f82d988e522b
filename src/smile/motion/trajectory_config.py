"""The trajectory table of SMILE's synthetic motion (SPEC §2.4) and its validation.

Every value of the reference's hard-coded table is a field of :class:`TrajectoryConfig`, so a config
file can change it; validation names the offending key, because a bad value here would otherwise
surface as a numpy error deep inside the sampler.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["INTERP_MODES", "MOTION_TYPES", "TrajectoryConfig", "check_int"]

MOTION_TYPES = ("gaussian", "linear")
INTERP_MODES = ("linear", "accelerate", "decelerate")  # indices 0, 1, 2 of ``interp_probs``
_PROB_TOL = 1e-6


@dataclass(frozen=True)
class TrajectoryConfig:
    """Motion parameters; the defaults are the reference's hard-coded values (SPEC §2.4).

    Attributes:
        num_objects: objects per clip (reference ``num_rois = 2``).
        scales: box sides in px on a 224 crop before the aspect ratio (reference ``--scales``).
        ratios: aspect ratios w/h; anchors are ``scales x ratios``, ``w = s*sqrt(r)``, ``h = s/sqrt(r)``.
        scale_jitter: w and h are each multiplied by ``exp(U(-j, j))``, independently.
        key_frame_probs: P(0, 1, 2, ... interior key frames) of each random walk.
        motion_type: ``"gaussian"`` (smoothed random path, SMILE default) or ``"linear"``
            (key-frame random walk of the centre, tubelet-contrast legacy).
        loc_velocity: max centre step in px per frame (224 px), ``"linear"`` only.
        rot_velocity: max rotation step in degrees per frame.
        size_velocity: max log-size step per frame.
        gaussian_points: length of the raw gaussian path before sub-sampling to the clip's frames.
        gaussian_sigma: std of the 1-D gaussian smoothing (reflect boundary, truncate 4).
        span: ``randint(lo, hi)`` (hi exclusive) range of the gaussian path's x/y extent, px at 224.
        interp_probs: per-segment probabilities of linear / accelerate / decelerate interpolation.
        reference_size: frame side the pixel quantities above refer to.
    """

    num_objects: int = 2
    scales: tuple[float, ...] = (32, 48, 56, 64, 96, 128)
    ratios: tuple[float, ...] = (0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0)
    scale_jitter: float = 0.18
    key_frame_probs: tuple[float, ...] = (0.5, 0.3, 0.2)
    motion_type: str = "gaussian"
    loc_velocity: float = 12.0
    rot_velocity: float = 6.0
    size_velocity: float = 0.025
    gaussian_points: int = 48
    gaussian_sigma: float = 8.0
    span: tuple[int, int] = (40, 180)
    interp_probs: tuple[float, float, float] = (0.7, 0.15, 0.15)
    reference_size: int = 224

    def __post_init__(self) -> None:
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_any(cls, cfg: TrajectoryConfig | Mapping[str, Any] | None) -> TrajectoryConfig:
        """Build from a config, a mapping (dict, DictConfig) or None (defaults); unknown keys raise."""
        if cfg is None:
            return cls()
        if isinstance(cfg, cls):
            return cfg
        if not isinstance(cfg, Mapping):
            raise ValueError(f"trajectory config must be a TrajectoryConfig, a mapping or None, got {type(cfg)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in cfg if k not in known)
        if unknown:
            raise ValueError(f"unknown trajectory config key(s) {unknown}; known: {sorted(known)}")
        return cls(**{str(k): v for k, v in cfg.items()})


def _validated(cfg: TrajectoryConfig) -> dict[str, Any]:
    """Coerced field values (tuples, floats, ints); a ValueError names the offending key."""
    lo, hi = _ints("span", cfg.span, length=2)
    if not 1 <= lo < hi:
        raise ValueError(f"span must satisfy 1 <= lo < hi, got {cfg.span!r}")
    if cfg.motion_type not in MOTION_TYPES:
        raise ValueError(f"motion_type must be one of {MOTION_TYPES}, got {cfg.motion_type!r}")
    return {
        "num_objects": check_int("num_objects", cfg.num_objects, low=1),
        "scales": _floats("scales", cfg.scales),
        "ratios": _floats("ratios", cfg.ratios),
        "scale_jitter": _float("scale_jitter", cfg.scale_jitter),
        "key_frame_probs": _probs("key_frame_probs", cfg.key_frame_probs),
        "loc_velocity": _float("loc_velocity", cfg.loc_velocity),
        "rot_velocity": _float("rot_velocity", cfg.rot_velocity),
        "size_velocity": _float("size_velocity", cfg.size_velocity),
        "gaussian_points": check_int("gaussian_points", cfg.gaussian_points, low=2),
        "gaussian_sigma": _float("gaussian_sigma", cfg.gaussian_sigma, positive=True),
        "span": (lo, hi),
        "interp_probs": _probs("interp_probs", cfg.interp_probs, length=len(INTERP_MODES)),
        "reference_size": check_int("reference_size", cfg.reference_size, low=1),
    }


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an int >= ``low``, or a ValueError naming ``name`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _float(name: str, value: Any, positive: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number)) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _seq(name: str, value: Any, length: int | None) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) == 0:
        raise ValueError(f"{name} must be a non-empty sequence, got {value!r}")
    if length is not None and len(value) != length:
        raise ValueError(f"{name} must have {length} entries, got {value!r}")
    return list(value)


def _floats(name: str, value: Any, length: int | None = None) -> tuple[float, ...]:
    return tuple(_float(name, v, positive=True) for v in _seq(name, value, length))


def _ints(name: str, value: Any, length: int) -> tuple[int, ...]:
    return tuple(check_int(name, v, low=0) for v in _seq(name, value, length))


def _probs(name: str, value: Any, length: int | None = None) -> tuple[float, ...]:
    out = tuple(_float(name, v) for v in _seq(name, value, length))
    if abs(sum(out) - 1.0) > _PROB_TOL:
        raise ValueError(f"{name} must sum to 1, got {value!r} (sum {sum(out)})")
    return out

"""Random object trajectories for the synthetic-motion overlay (SPEC §2.4).

SMILE pastes ``num_objects`` objects into every clip; each one follows a smooth random path while
its box size and rotation drift. This module samples only those numbers (boxes and angles, the
"motion parameters" of DESIGN §4); the compositor warps the sprites and the trajectory-aware mask
generator reads the same boxes.

Trajectories are cheap numbers, so they are sampled on the CPU with vectorised numpy over all
``B * K`` objects at once (no Python loop over clips or objects) and returned as CPU tensors; the
caller moves them to the batch's device. Randomness comes from a numpy ``Generator`` seeded from
the given ``torch.Generator`` (or torch's global RNG), so ``torch.manual_seed`` / a seeded generator
makes the result reproducible.

Pixel quantities of the reference (box scales, gaussian path span, linear velocity) are for a
224-px crop; they are scaled by ``min(H, W) / reference_size`` for other frame sizes, so 224 px
reproduces the reference exactly and a 64-px demo gets proportionally smaller objects.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "MOTION_TYPES",
    "INTERP_MODES",
    "TrajectoryConfig",
    "sample_trajectories",
    "sample_key_frames",
    "sample_interp_modes",
    "interpolate_key_frames",
    "gaussian_smoothing_matrix",
]

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


# ----------------------------------------------------------------------------------- validation


def _validated(cfg: TrajectoryConfig) -> dict[str, Any]:
    """Coerced field values (tuples, floats, ints); a ValueError names the offending key."""
    lo, hi = _ints("span", cfg.span, length=2)
    if not 1 <= lo < hi:
        raise ValueError(f"span must satisfy 1 <= lo < hi, got {cfg.span!r}")
    if cfg.motion_type not in MOTION_TYPES:
        raise ValueError(f"motion_type must be one of {MOTION_TYPES}, got {cfg.motion_type!r}")
    return {
        "num_objects": _int("num_objects", cfg.num_objects, low=1),
        "scales": _floats("scales", cfg.scales),
        "ratios": _floats("ratios", cfg.ratios),
        "scale_jitter": _float("scale_jitter", cfg.scale_jitter),
        "key_frame_probs": _probs("key_frame_probs", cfg.key_frame_probs),
        "loc_velocity": _float("loc_velocity", cfg.loc_velocity),
        "rot_velocity": _float("rot_velocity", cfg.rot_velocity),
        "size_velocity": _float("size_velocity", cfg.size_velocity),
        "gaussian_points": _int("gaussian_points", cfg.gaussian_points, low=2),
        "gaussian_sigma": _float("gaussian_sigma", cfg.gaussian_sigma, positive=True),
        "span": (lo, hi),
        "interp_probs": _probs("interp_probs", cfg.interp_probs, length=len(INTERP_MODES)),
        "reference_size": _int("reference_size", cfg.reference_size, low=1),
    }


def _int(name: str, value: Any, low: int) -> int:
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
    return tuple(_int(name, v, low=0) for v in _seq(name, value, length))


def _probs(name: str, value: Any, length: int | None = None) -> tuple[float, ...]:
    out = tuple(_float(name, v) for v in _seq(name, value, length))
    if abs(sum(out) - 1.0) > _PROB_TOL:
        raise ValueError(f"{name} must sum to 1, got {value!r} (sum {sum(out)})")
    return out


# ----------------------------------------------------------------------------- key-frame machinery


def _categorical(rng: np.random.Generator, probs: Sequence[float], size: int | tuple[int, ...]) -> np.ndarray:
    """Indices drawn with ``probs`` (a faster ``rng.choice(len(p), size, p=p)``)."""
    cum = np.cumsum(np.asarray(probs, dtype=np.float64))
    return np.minimum(np.searchsorted(cum, rng.random(size) * cum[-1], side="right"), len(cum) - 1)


def sample_key_frames(rng: np.random.Generator, n: int, num_frames: int, probs: Sequence[float]) -> np.ndarray:
    """Sorted key frames of ``n`` random walks (the reference's ``sample_key_frames``, any T).

    ``k`` interior keys with probability ``probs[k]``; tick ``i`` is ``int(avg*i)`` plus an integer
    jitter in ``[-int(avg/3), int(avg/3))`` with ``avg = T/(k+1)``; frames 0 and T-1 are always keys.
    For T=16 this gives the reference's ticks ({6..9} for k=1; {4,5} and {9,10} for k=2).
    Instead of de-duplicating, rows keep a fixed length: unused ticks sit on frame 0 and a repeated
    key is an empty segment with a zero walk step, which is equivalent.

    Returns:
        Int ``[n, len(probs) + 1]``, sorted ascending, first 0 and last T-1.
    """
    k = _categorical(rng, probs, n)  # [n]
    avg = num_frames / (k + 1.0)  # [n]
    i = np.arange(1, len(probs), dtype=np.float64)  # [k_max]
    jitter = np.floor(avg / 3.0)[:, None]  # [n, 1]
    offset = np.floor(rng.random((n, i.size)) * 2.0 * jitter) - jitter  # uniform integer in [-j, j)
    ticks = np.clip(np.floor(avg[:, None] * i) + offset, 0, num_frames - 1)  # [n, k_max]
    ticks = np.where(i[None, :] <= k[:, None], ticks, 0.0)
    ends = np.broadcast_to(np.array([0.0, num_frames - 1.0]), (n, 2))
    return np.sort(np.concatenate([ends, ticks], axis=1), axis=1).astype(np.int64)


def sample_interp_modes(rng: np.random.Generator, keys: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """One interpolation mode (index into ``INTERP_MODES``) per segment start, shaped like ``keys``."""
    return _categorical(rng, probs, keys.shape)


def interpolate_key_frames(keys: np.ndarray, values: np.ndarray, modes: np.ndarray, num_frames: int) -> np.ndarray:
    """Fill every frame from its two surrounding key frames (``extend_key_frame_to_all``).

    The segment from key ``j`` to key ``j+1`` uses ``modes[:, j]``: linear ``w = u``, accelerate
    ``w = u**2`` (quadratic from the start value), decelerate ``w = 1 - (1 - u)**2`` (its mirror),
    with ``u = (t - a) / (b - a)`` and value ``v_a + (v_b - v_a) * w``. All channels share the mode.

    Args:
        keys: int ``[n, M]`` sorted key frames, first 0 and last ``num_frames - 1``.
        values: ``[n, M, C]`` values at the keys.
        modes: int ``[n, M]``, see ``sample_interp_modes``.
        num_frames: T.

    Returns:
        ``[n, T, C]`` float64, equal to ``values`` at the key frames.
    """
    t = np.arange(num_frames)
    seg = (keys[:, None, :] <= t[None, :, None]).sum(-1) - 1  # [n, T], last key <= t
    nxt = np.minimum(seg + 1, keys.shape[1] - 1)
    rows = np.arange(keys.shape[0])[:, None]
    a, b = keys[rows, seg], keys[rows, nxt]  # [n, T]
    u = (t - a) / np.maximum(b - a, 1)  # [n, T], 0 at keys
    mode = modes[rows, seg]
    w = np.where(mode == 1, u * u, np.where(mode == 2, u * (2.0 - u), u))
    v0, v1 = values[rows, seg], values[rows, nxt]  # [n, T, C]
    return v0 + (v1 - v0) * w[..., None]


def _walk(
    rng: np.random.Generator,
    keys: np.ndarray,
    start: np.ndarray,
    velocity: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Random walk over key frames: each key adds ``U(±velocity * Δframes)`` per channel.

    Args:
        keys: int ``[n, M]`` sorted key frames.
        start: ``[n, C]`` value at frame 0.
        velocity: ``[n, 1]`` max step per frame.
        bounds: optional ``(low, high)`` broadcastable to ``[n, C]``; the value is clipped after
            every step, as the reference does for the linear centre walk.

    Returns:
        ``[n, M, C]`` values at the keys.
    """
    gap = np.diff(keys, axis=1)[..., None]  # [n, M-1, 1], 0 for repeated keys
    steps = rng.uniform(-1.0, 1.0, (*gap.shape[:2], start.shape[1])) * (velocity[:, None] * gap)
    if bounds is None:
        return np.concatenate([start[:, None], start[:, None] + np.cumsum(steps, axis=1)], axis=1)
    out = [start]
    for j in range(steps.shape[1]):  # M-1 <= 3 steps with the reference's probs
        out.append(np.clip(out[-1] + steps[:, j], *bounds))
    return np.stack(out, axis=1)


def _keyed_walks(
    rng: np.random.Generator,
    cfg: TrajectoryConfig,
    num_frames: int,
    start: np.ndarray,
    velocity: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    log_rows: int = 0,
) -> np.ndarray:
    """Independent key frames per row, a random walk on them, then per-segment interpolation.

    All walks of a call (sizes, angles, linear centres) are stacked as rows so each numpy op runs
    once per batch. The first ``log_rows`` rows walk in log space and are exponentiated at the
    keys, i.e. sizes are multiplied by ``exp(U(±v·Δ))`` and interpolated linearly in size.

    Returns:
        ``[n, T, C]``.
    """
    keys = sample_key_frames(rng, start.shape[0], num_frames, cfg.key_frame_probs)  # [n, M]
    values = _walk(rng, keys, start, velocity, bounds)  # [n, M, C]
    values[:log_rows] = np.exp(values[:log_rows])
    return interpolate_key_frames(keys, values, sample_interp_modes(rng, keys, cfg.interp_probs), num_frames)


# ----------------------------------------------------------------------------------- gaussian path


@functools.lru_cache(maxsize=16)
def gaussian_smoothing_matrix(num_points: int, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Matrix ``M`` with ``x @ M.T`` = 1-D gaussian filter of ``x`` (scipy ``reflect`` mode).

    Same kernel as ``scipy.ndimage.gaussian_filter1d``: radius ``int(truncate*sigma + 0.5)``,
    normalised weights, the signal extended as ``d c b a | a b c d | d c b a`` (any radius).
    Precomputing it turns the smoothing of all paths into one matmul.
    """
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    idx = np.mod(np.arange(num_points)[:, None] + offsets[None, :], 2 * num_points)  # [P, 2r+1]
    idx = np.where(idx >= num_points, 2 * num_points - 1 - idx, idx)
    matrix = np.zeros((num_points, num_points))
    np.add.at(matrix, (np.repeat(np.arange(num_points), offsets.size), idx.ravel()), np.tile(kernel, num_points))
    matrix.setflags(write=False)
    return matrix


def _unit_paths(rng: np.random.Generator, n: int, cfg: TrajectoryConfig) -> np.ndarray:
    """Smoothed random paths with x and y each min-max normalised to [0, 1]: ``[n, P, 2]``.

    The reference draws the raw points in ``[1+w/2, W-1-w/2]``; the range cancels in the
    normalisation, so plain ``U(0, 1)`` is drawn.
    """
    matrix = gaussian_smoothing_matrix(cfg.gaussian_points, cfg.gaussian_sigma)
    smooth = rng.random((n, 2, cfg.gaussian_points)) @ matrix.T  # [n, 2, P]
    low = smooth.min(axis=-1, keepdims=True)
    extent = np.maximum(smooth.max(axis=-1, keepdims=True) - low, np.finfo(np.float64).tiny)
    return ((smooth - low) / extent).transpose(0, 2, 1)


def _scaled_span(cfg: TrajectoryConfig, factor: float, size_xy: np.ndarray) -> tuple[int, int]:
    """``randint`` bounds of the path extent for this frame size; keeps ``W - s >= 1``."""
    hi = max(2, min(round(cfg.span[1] * factor), int(size_xy.min())))
    lo = min(max(1, round(cfg.span[0] * factor)), hi - 1)
    return lo, hi


def _gaussian_centres(
    rng: np.random.Generator, cfg: TrajectoryConfig, n: int, num_frames: int, factor: float, size_xy: np.ndarray
) -> np.ndarray:
    """Box centres along scaled, translated gaussian paths (truncated to int): ``[n, T, 2]``."""
    unit = _unit_paths(rng, n, cfg)  # [n, P, 2]
    extent = rng.integers(*_scaled_span(cfg, factor, size_xy), size=n)  # [n], same for x and y
    shift = rng.integers(0, size_xy.astype(np.int64)[None, :] - extent[:, None])  # [n, 2], randint(0, W - s)
    path = np.clip(unit * extent[:, None, None] + shift[:, None, :], 0, size_xy - 1)
    idx = np.round(np.linspace(0, cfg.gaussian_points - 1, num_frames)).astype(np.int64)
    return np.trunc(path[:, idx])


def _motion_walks(
    rng: np.random.Generator,
    cfg: TrajectoryConfig,
    num_frames: int,
    wh0: np.ndarray,
    factor: float,
    size_xy: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Size, rotation and (``"linear"`` only) centre walks, stacked as rows of one batched walk.

    Sizes start at the sampled shape (log space), angles at 0; linear centres start with the box
    inside the frame (top-left corner uniform) and are clipped to keep it there after each step.

    Returns:
        sizes ``[n, T, 2]``, angles ``[n, T]`` and centres ``[n, T, 2]`` or None.
    """
    n = wh0.shape[0]
    start = [np.log(wh0), np.zeros((n, 2))]  # rotation uses channel 0 only
    velocity = [np.full((n, 1), cfg.size_velocity), np.full((n, 1), cfg.rot_velocity)]
    bounds = None
    if cfg.motion_type == "linear":
        low, high = wh0 / 2.0, size_xy - 1.0 - wh0 / 2.0  # [n, 2] centre limits: box within [0, W-1]
        start.append(low + rng.random(wh0.shape) * (high - low))
        velocity.append(np.full((n, 1), cfg.loc_velocity * factor))
        free = np.full((2 * n, 2), np.inf)
        bounds = (np.concatenate([-free, low]), np.concatenate([free, high]))
    walks = _keyed_walks(rng, cfg, num_frames, np.concatenate(start), np.concatenate(velocity), bounds, log_rows=n)
    return walks[:n], walks[n : 2 * n, :, 0], (walks[2 * n :] if bounds is not None else None)


# ------------------------------------------------------------------------------------- public API


def _box_shapes(rng: np.random.Generator, cfg: TrajectoryConfig, n: int, factor: float, size_xy: np.ndarray):
    """First-frame ``(w, h)`` per object from a uniform anchor, jittered and clipped: ``[n, 2]``."""
    scales = np.asarray(cfg.scales) * factor
    ratios = np.asarray(cfg.ratios)
    anchor = rng.integers(0, scales.size * ratios.size, size=n)
    s, r = scales[anchor // ratios.size], np.sqrt(ratios[anchor % ratios.size])
    wh = np.stack([s * r, s / r], axis=-1) * np.exp(rng.uniform(-cfg.scale_jitter, cfg.scale_jitter, (n, 2)))
    return np.clip(wh, 1.0, size_xy - 1.0)


def _frame_hw(frame_size: int | Sequence[int]) -> tuple[int, int]:
    size = (frame_size, frame_size) if isinstance(frame_size, (int, np.integer)) else tuple(frame_size)
    if len(size) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2 for v in size):
        raise ValueError(f"frame_size must be an int or (height, width), each >= 2, got {frame_size!r}")
    return int(size[0]), int(size[1])


def _numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A numpy generator seeded from ``generator`` (or torch's global RNG when None)."""
    device = generator.device if generator is not None else "cpu"
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=device).item()
    return np.random.default_rng(seed)


def sample_trajectories(
    batch_size: int,
    num_frames: int,
    frame_size: int | tuple[int, int],
    cfg: TrajectoryConfig | Mapping[str, Any] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Boxes and rotation angles of ``num_objects`` moving objects per clip (SPEC §2.4).

    Args:
        batch_size: number of clips, >= 1.
        num_frames: frames per clip ``T``, >= 2 (the reference hard-codes 16).
        frame_size: side of the square cropped frame, or ``(height, width)``.
        cfg: ``TrajectoryConfig``, mapping of its fields, or None for the reference defaults.
        generator: seeds the sampling (any device); None uses torch's global RNG.

    Returns:
        ``boxes`` float32 ``[B, K, T, 4]``: ``(x1, y1, x2, y2)`` in pixels of the cropped frame,
        pre-rotation, rounded to integers and NOT clipped (may leave the frame), and ``angles``
        float32 ``[B, K, T]`` in degrees, positive = clockwise (``imutils.rotate_bound``),
        truncated to integers like the reference's paste. Both on the CPU.
    """
    cfg = TrajectoryConfig.from_any(cfg)
    _int("batch_size", batch_size, low=1)
    _int("num_frames", num_frames, low=2)
    height, width = _frame_hw(frame_size)
    size_xy = np.array([width, height], dtype=np.float64)  # x before y, like the boxes
    factor = min(height, width) / cfg.reference_size
    rng = _numpy_rng(generator)
    n = batch_size * cfg.num_objects
    wh0 = _box_shapes(rng, cfg, n, factor, size_xy)  # [n, 2]
    sizes, angles, centres = _motion_walks(rng, cfg, num_frames, wh0, factor, size_xy)  # [n, T, 2], [n, T]
    if centres is None:
        centres = _gaussian_centres(rng, cfg, n, num_frames, factor, size_xy)  # [n, T, 2]
    boxes = np.round(np.concatenate([centres - sizes / 2.0, centres + sizes / 2.0], axis=-1))  # [n, T, 4]
    shape = (batch_size, cfg.num_objects, num_frames)
    return (
        torch.from_numpy(boxes.reshape(*shape, 4).astype(np.float32)),
        torch.from_numpy((np.trunc(angles) + 0.0).reshape(shape).astype(np.float32)),  # + 0.0: no -0
    )

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
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from smile.motion.keyframes import interpolate_key_frames, keyed_walks, sample_interp_modes, sample_key_frames
from smile.motion.trajectory_config import INTERP_MODES, MOTION_TYPES, TrajectoryConfig, check_int

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


# ------------------------------------------------------------------------ size / angle / centre walks


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
    walks = keyed_walks(rng, cfg, num_frames, np.concatenate(start), np.concatenate(velocity), bounds, log_rows=n)
    return walks[:n], walks[n : 2 * n, :, 0], (walks[2 * n :] if bounds is not None else None)


# ------------------------------------------------------------------------------------- public API


def _box_shapes(
    rng: np.random.Generator, cfg: TrajectoryConfig, n: int, factor: float, size_xy: np.ndarray
) -> np.ndarray:
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
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())
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
    check_int("batch_size", batch_size, low=1)
    check_int("num_frames", num_frames, low=2)
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

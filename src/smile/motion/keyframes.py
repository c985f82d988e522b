"""Key-frame random walks: how box sizes, angles and (linear motion) centres drift over a clip.

The reference walks each quantity from key frame to key frame with a bounded random step and fills
the frames in between with linear, accelerating or decelerating interpolation. Here every walk of a
batch is a row of one numpy array, so a batch costs a handful of vectorised ops (SPEC §2.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from smile.motion.trajectory_config import TrajectoryConfig

__all__ = ["interpolate_key_frames", "keyed_walks", "random_walk", "sample_interp_modes", "sample_key_frames"]


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


def random_walk(
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


def keyed_walks(
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
    values = random_walk(rng, keys, start, velocity, bounds)  # [n, M, C]
    values[:log_rows] = np.exp(values[:log_rows])
    return interpolate_key_frames(keys, values, sample_interp_modes(rng, keys, cfg.interp_probs), num_frames)

"""Which frame numbers a clip uses (temporal sampling), as pure functions of the frame count.

Kept separate from decoding so that the same numbers can be checked without videos and reused by
every dataset; randomness comes only from the ``numpy.random.Generator`` the caller passes in.
"""

from __future__ import annotations

import numpy as np


def strided_indices(start: int, clip_len: int, sampling_rate: int, num_frames_video: int) -> np.ndarray:
    """``clip_len`` frames every ``sampling_rate`` frames from ``start``, holding at the end.

    The index advances by ``sampling_rate`` only while the next index still lies inside the video;
    once a step would pass the end it stops, and that frame repeats for the rest of the clip
    (SPEC §2.2 step 3). The held frame is the last one *on the stride grid*, not necessarily the
    video's last frame: with 20 frames and stride 4 the clip is ``0, 4, 8, 12, 16, 16, ...``.

    Returns:
        int64 ``[clip_len]``, non-decreasing, all in ``[start, num_frames_video)``.
    """
    if num_frames_video < 1:
        raise ValueError(f"num_frames_video must be >= 1, got {num_frames_video}")
    if not 0 <= start < num_frames_video:
        raise ValueError(f"start={start} outside a video of {num_frames_video} frames")
    if clip_len < 1 or sampling_rate < 1:
        raise ValueError(f"clip_len and sampling_rate must be >= 1, got {clip_len}, {sampling_rate}")
    max_steps = (num_frames_video - 1 - start) // sampling_rate  # steps that stay inside the video
    steps = np.minimum(np.arange(clip_len, dtype=np.int64), max_steps)
    return start + sampling_rate * steps


def pretrain_indices(
    num_frames_video: int, clip_len: int = 16, sampling_rate: int = 4, *, rng: np.random.Generator
) -> np.ndarray:
    """Frame numbers of one pretraining clip (SPEC §2.2: one segment, no temporal jitter).

    The window spans ``clip_len * sampling_rate`` frames (64 by default). When the video holds at
    least one full window, its start is uniform over every position that fits, both ends
    included: ``start ~ U{0, ..., L - window}``. Shorter videos start at 0 and hold their last
    reachable frame (see :func:`strided_indices`). Exactly one ``rng.integers`` draw is made for
    long videos and none for short ones.

    Args:
        num_frames_video: Frames in the video (L).
        clip_len: Frames in the clip (T).
        sampling_rate: Stride between clip frames.
        rng: Source of the start position.

    Returns:
        int64 ``[clip_len]`` frame indices in ``[0, L)``.
    """
    window = clip_len * sampling_rate
    if num_frames_video - window + 1 > 0:
        start = int(rng.integers(0, num_frames_video - window, endpoint=True))
    else:
        start = 0
    return strided_indices(start, clip_len, sampling_rate, num_frames_video)

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


# --- Finetuning (SPEC §7.2) -------------------------------------------------------------------
# K400-style datasets use "dense" sampling (one window of consecutive frames), SSv2 uses TSN
# "segment" sampling (one frame per equal segment). Reference = VideoMAE's VideoClsDataset and
# SSVideoClsDataset, which SMILE reuses unchanged.

SAMPLINGS = ("dense", "segment")
DEFAULT_TEST_CLIPS = {"dense": 7, "segment": 2}  # K400: 7 x 3 views, SSv2: 2 x 3 (SPEC §7.2)


def _check_length(num_frames_video: int, clip_len: int) -> None:
    if num_frames_video < 1:
        raise ValueError(f"num_frames_video must be >= 1, got {num_frames_video}")
    if clip_len < 1:
        raise ValueError(f"clip_len must be >= 1, got {clip_len}")


def _window_indices(end: int, clip_len: int, window: int) -> np.ndarray:
    """``clip_len`` points of ``linspace(end - window, end)``, clipped to ``end - 1``, truncated.

    The linspace includes ``end`` itself, so the step is ``window / (clip_len - 1)`` (64/15 ≈ 4.27
    for 16 x 4) and the last point always lands on ``end - 1`` after clipping (reference).
    """
    start = end - window
    points = np.linspace(start, end, num=clip_len)
    return np.clip(points, start, end - 1).astype(np.int64)


def _short_dense_indices(num_frames_video: int, clip_len: int, sampling_rate: int) -> np.ndarray:
    """Reference rule for a video no longer than one window (``L <= clip_len * sampling_rate``).

    ``L // sampling_rate`` points of ``linspace(0, L)`` (endpoint included, so the spacing exceeds
    the sampling rate), padded with ``L`` up to ``clip_len``; everything is clipped to ``L - 1``
    and truncated. The pad therefore repeats the video's last frame.
    """
    length = num_frames_video
    count = length // sampling_rate  # <= clip_len because length <= clip_len * sampling_rate
    points = np.concatenate([np.linspace(0, length, num=count), np.full(clip_len - count, float(length))])
    return np.clip(points, 0, length - 1).astype(np.int64)


def dense_indices(
    num_frames_video: int, clip_len: int = 16, sampling_rate: int = 4, *, rng: np.random.Generator
) -> np.ndarray:
    """Frame numbers of one K400 finetuning clip (SPEC §7.2 "dense").

    Reference behaviour, reproduced exactly: with ``window = clip_len * sampling_rate`` (64), a
    video longer than the window draws ``end ~ U{window, ..., L - 1}`` (``np.random.randint(window,
    L)``, high end excluded), sets ``start = end - window`` and takes ``linspace(start, end,
    clip_len)`` clipped to ``end - 1`` and truncated to int: steps of ≈ 4.27 frames, not 4, and
    the last frame is ``end - 1``. A video of at most ``window`` frames is deterministic (see
    :func:`_short_dense_indices`): spread over the whole video, padded with its last frame.

    Args:
        num_frames_video: Frames in the video (L).
        clip_len: Frames in the clip (T).
        sampling_rate: Nominal stride; sets the window length ``clip_len * sampling_rate``.
        rng: Source of the window end; one ``rng.integers`` draw for long videos, none otherwise.

    Returns:
        int64 ``[clip_len]``, non-decreasing, in ``[0, L)``.
    """
    _check_length(num_frames_video, clip_len)
    window = clip_len * sampling_rate
    if num_frames_video <= window:
        return _short_dense_indices(num_frames_video, clip_len, sampling_rate)
    end = int(rng.integers(window, num_frames_video))  # high excluded, like np.random.randint
    return _window_indices(end, clip_len, window)


def _short_segment_indices(num_frames_video: int, num_segments: int) -> np.ndarray:
    """Fewer frames than segments: each frame in order, repeated to fill ``num_segments``.

    Deviation: the reference returns ``num_segments`` copies of frame 0 here (its other branch,
    sorted random frames, can never run), i.e. a static clip.
    """
    return (np.arange(num_segments, dtype=np.int64) * num_frames_video) // num_segments


def segment_test_views(num_frames_video: int, num_segments: int = 16, num_clips: int = 2) -> np.ndarray:
    """The SSv2 test views: view ``c`` takes frame ``int(tick * (s + c / num_clips))`` of segment ``s``.

    ``tick = L / num_segments``. For the reference's 2 views that is view 0 = segment starts
    ``int(tick * s)`` and view 1 = segment centres ``int(tick / 2 + tick * s)``, which is exactly what
    the reference gets by sorting the 32 starts and centres and taking the even (view 0) and odd
    (view 1) positions: within a segment the start never exceeds the centre, and a centre never
    exceeds the next start. Other ``num_clips`` spread the views evenly inside each segment (the
    reference pads its list with copies of the last index and cuts broken views there).

    Returns:
        int64 ``[num_clips, num_segments]`` in ``[0, L)``.
    """
    _check_length(num_frames_video, num_segments)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    tick = num_frames_video / float(num_segments)
    seg = np.arange(num_segments, dtype=np.float64)
    views = [tick * seg + tick * c / num_clips for c in range(num_clips)]  # c = 1 of 2: tick / 2
    return np.stack(views).astype(np.int64)  # truncation, as the reference's int()


def segment_indices(
    num_frames_video: int,
    num_segments: int = 16,
    rng: np.random.Generator | None = None,
    test: bool = False,
    num_clips: int = 2,
) -> np.ndarray:
    """Frame numbers of an SSv2 clip: TSN sampling, one frame per segment (SPEC §7.2 "segment").

    Training (reference, reproduced): ``avg = L // num_segments``; segment ``s`` takes frame
    ``s * avg + U{0, ..., avg - 1}`` (frames past ``num_segments * avg`` are never used). Videos
    with fewer frames than segments: see :func:`_short_segment_indices`.

    Test: the deterministic union of all test views, sorted (the reference's 32 segment starts and
    centres for ``num_clips=2``); :func:`segment_test_views` splits it into views.

    Args:
        num_frames_video: Frames in the video (L).
        num_segments: Segments = frames in the clip (T).
        rng: Source of the offsets (training only); one ``rng.integers`` call of size T.
        test: Return the sorted test-view union ``[num_clips * T]`` instead of a random clip.
        num_clips: Test views (only with ``test=True``).

    Returns:
        int64 ``[num_segments]`` (train) or ``[num_clips * num_segments]`` (test) in ``[0, L)``.
    """
    if test:
        return np.sort(segment_test_views(num_frames_video, num_segments, num_clips).reshape(-1))
    _check_length(num_frames_video, num_segments)
    if rng is None:
        raise ValueError("segment_indices needs an rng for training clips (or test=True)")
    avg = num_frames_video // num_segments
    if avg == 0:
        return _short_segment_indices(num_frames_video, num_segments)
    offsets = rng.integers(avg, size=num_segments)  # like np.random.randint(avg, size=T)
    return np.arange(num_segments, dtype=np.int64) * avg + offsets.astype(np.int64)


def _dense_test_views(num_frames_video: int, clip_len: int, sampling_rate: int, num_clips: int) -> np.ndarray:
    """K400 test windows, as original frame numbers ``[num_clips, clip_len]``.

    Reference: decode every ``sampling_rate``-th frame of the whole video (``0, 4, 8, ...``), pad
    that list with its last entry to ``clip_len``; with ``N`` entries, clip ``c`` is the window of
    ``clip_len`` consecutive entries from ``int(c * max((N - clip_len) / (num_clips - 1), 0))``.
    One clip (a division by zero in the reference) takes the centre window.
    """
    sub = np.arange(0, num_frames_video, sampling_rate, dtype=np.int64)
    sub = np.concatenate([sub, np.full(max(clip_len - len(sub), 0), sub[-1], dtype=np.int64)])
    spare = len(sub) - clip_len
    if num_clips == 1:
        starts = [spare // 2]
    else:
        step = max(1.0 * spare / (num_clips - 1), 0.0)
        starts = [int(c * step) for c in range(num_clips)]
    return np.stack([sub[s : s + clip_len] for s in starts])


def multiview_indices(
    num_frames_video: int,
    mode: str = "dense",
    clip_len: int = 16,
    sampling_rate: int = 4,
    num_clips: int | None = None,
) -> np.ndarray:
    """Frame numbers of every temporal test view of a video (SPEC §7.2 "test temporal").

    * ``dense`` (K400, default 7 clips): windows of ``clip_len`` frames ``sampling_rate`` apart,
      evenly spaced over the video; see :func:`_dense_test_views`.
    * ``segment`` (SSv2, default 2 clips): ``clip_len`` segments; see :func:`segment_test_views`.

    Args:
        num_frames_video: Frames in the video (L).
        mode: ``"dense"`` or ``"segment"``.
        clip_len: Frames per clip (T; the number of segments for ``segment``).
        sampling_rate: Stride of ``dense`` windows (unused by ``segment``).
        num_clips: Temporal views; None = the reference's 7 (dense) or 2 (segment).

    Returns:
        int64 ``[num_clips, clip_len]`` in ``[0, L)``.
    """
    _check_mode(mode)
    _check_length(num_frames_video, clip_len)
    num_clips = DEFAULT_TEST_CLIPS[mode] if num_clips is None else int(num_clips)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if mode == "segment":
        return segment_test_views(num_frames_video, clip_len, num_clips)
    if sampling_rate < 1:
        raise ValueError(f"sampling_rate must be >= 1, got {sampling_rate}")
    return _dense_test_views(num_frames_video, clip_len, sampling_rate, num_clips)


def centre_clip_indices(
    num_frames_video: int, mode: str = "dense", clip_len: int = 16, sampling_rate: int = 4
) -> np.ndarray:
    """The fixed clip used for validation during finetuning: the training sampler's middle draw.

    Deviation (SPEC §10.16): the reference validates on a clip drawn at random by the *training*
    sampler, so the validation accuracy is noisy from epoch to epoch and "best" checkpoints are
    partly chosen by luck. Here the random draw is replaced by the middle of its range:

    * ``dense``: ``end = window + (L - 1 - window) // 2`` (the middle of ``U{window, ..., L - 1}``),
      then the same ``linspace`` clip as :func:`dense_indices`; short videos as in training.
    * ``segment``: offset ``(avg - 1) // 2`` inside every segment of ``avg = L // T`` frames.

    Returns:
        int64 ``[clip_len]`` in ``[0, L)``.
    """
    _check_mode(mode)
    _check_length(num_frames_video, clip_len)
    if mode == "segment":
        avg = num_frames_video // clip_len
        if avg == 0:
            return _short_segment_indices(num_frames_video, clip_len)
        return np.arange(clip_len, dtype=np.int64) * avg + (avg - 1) // 2
    window = clip_len * sampling_rate
    if num_frames_video <= window:
        return _short_dense_indices(num_frames_video, clip_len, sampling_rate)
    return _window_indices(window + (num_frames_video - 1 - window) // 2, clip_len, window)


def _check_mode(mode: str) -> None:
    if mode not in SAMPLINGS:
        raise ValueError(f"sampling mode must be one of {SAMPLINGS}, got {mode!r}")


def is_padded(indices: np.ndarray) -> bool:
    """Whether a clip ``[T]`` (or any of the views ``[C, T]``) repeats a frame, i.e. was padded.

    Every sampler here takes distinct frames from a long enough video and repeats frames only to
    fill a short one, so a repeat is the sign of padding (counted as ``data/padded_clips``).
    """
    idx = np.sort(np.asarray(indices, dtype=np.int64).reshape(-1, np.shape(indices)[-1]), axis=-1)  # [C, T]
    return bool((np.diff(idx, axis=-1) == 0).any())

"""Finetuning frame sampling (SPEC §7.2): expected indices written out from the SPEC's rules."""

from __future__ import annotations

import numpy as np
import pytest

from smile.data.sampling import (
    centre_clip_indices,
    dense_indices,
    multiview_indices,
    segment_indices,
    segment_test_views,
)


class FixedEnd:
    """A stand-in generator whose ``integers`` returns a fixed value and records the call."""

    def __init__(self, value: int) -> None:
        self.value, self.calls = value, []

    def integers(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.value


def spec_dense(length: int, end: int | None, clip_len: int = 16, rate: int = 4) -> np.ndarray:
    """SPEC §7.2 written out with plain Python: linspace(start, end, T), clip to end-1, truncate."""
    window = clip_len * rate
    if end is None:  # short video: L // rate points of linspace(0, L), padded with L, clip to L - 1
        n = length // rate
        points = [length * k / (n - 1) if n > 1 else 0.0 for k in range(n)] + [float(length)] * (clip_len - n)
        return np.array([min(int(p), length - 1) for p in points])
    start = end - window
    return np.array([min(int(start + k * window / (clip_len - 1)), end - 1) for k in range(clip_len)])


# --- dense (K400 train) ---------------------------------------------------------------------


def test_dense_window_by_hand():
    rng = FixedEnd(100)
    idx = dense_indices(300, 16, 4, rng=rng)
    # start 36, step 64/15 = 4.267, the last point (100) clipped to 99
    assert idx.tolist() == [36, 40, 44, 48, 53, 57, 61, 65, 70, 74, 78, 82, 87, 91, 95, 99]
    assert rng.calls == [((64, 300), {})]  # end ~ randint(64, L): high end excluded
    assert idx.dtype == np.int64
    assert set(np.diff(idx).tolist()) <= {4, 5}


@pytest.mark.parametrize("length", [65, 100, 301, 1000])
def test_dense_matches_spec_formula_with_a_real_generator(length):
    for seed in range(20):
        end = int(np.random.default_rng(seed).integers(64, length))
        got = dense_indices(length, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(got, spec_dense(length, end))


def test_dense_window_positions_cover_exactly_the_reference_range():
    rng = np.random.default_rng(0)
    starts = {int(dense_indices(70, rng=rng)[0]) for _ in range(500)}
    assert starts == set(range(0, 6))  # end in [64, 69] -> start in [0, 5]; frame 69 never last


@pytest.mark.parametrize("length", [1, 3, 4, 20, 40, 63, 64])
def test_dense_short_videos_are_deterministic_and_padded_with_the_last_frame(length):
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    idx = dense_indices(length, rng=rng)
    assert rng.bit_generator.state == state  # no draw
    np.testing.assert_array_equal(idx, spec_dense(length, None))
    assert idx.shape == (16,) and idx.min() >= 0 and idx.max() == length - 1


def test_dense_short_video_by_hand():
    idx = dense_indices(40, rng=np.random.default_rng(0))
    # 10 points of linspace(0, 40) = 0, 4.44, ..., 40 -> clipped to 39, then 6 copies of 39
    assert idx.tolist() == [0, 4, 8, 13, 17, 22, 26, 31, 35, 39] + [39] * 6


def test_dense_other_geometry():
    idx = dense_indices(50, clip_len=8, sampling_rate=2, rng=FixedEnd(30))
    np.testing.assert_array_equal(idx, spec_dense(50, 30, 8, 2))
    assert idx[0] == 14 and idx[-1] == 29


# --- segment (SSv2) -------------------------------------------------------------------------


def test_segment_train_one_frame_per_segment():
    for seed in range(10):
        offsets = np.random.default_rng(seed).integers(6, size=16)
        idx = segment_indices(100, 16, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(idx, np.arange(16) * 6 + offsets)  # avg = 100 // 16 = 6
        assert np.all(idx // 6 == np.arange(16))  # inside its own segment
        assert idx.max() < 96  # frames past 16 * avg are never used (reference)


def test_segment_train_offsets_cover_each_segment():
    rng = np.random.default_rng(1)
    seen = np.stack([segment_indices(100, 16, rng=rng) for _ in range(300)])
    assert all(set(seen[:, s].tolist()) == set(range(6 * s, 6 * s + 6)) for s in range(16))


def test_segment_short_video_spreads_frames():
    # fewer frames than segments (deviation: the reference repeats frame 0)
    assert segment_indices(10, 16, rng=np.random.default_rng(0)).tolist() == [
        0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9,
    ]  # fmt: skip
    assert segment_indices(16, 16, rng=np.random.default_rng(0)).tolist() == list(range(16))


def test_segment_train_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        segment_indices(100)


def reference_ssv2_test(length: int, segments: int = 16) -> np.ndarray:
    """SPEC §7.2: 16 segment centres and 16 segment starts, sorted (32 indices)."""
    tick = length / float(segments)
    centres = [int(tick / 2.0 + tick * x) for x in range(segments)]
    starts = [int(tick * x) for x in range(segments)]
    return np.sort(np.array(centres + starts))


def test_segment_test_set_by_hand():
    idx = segment_indices(100, 16, test=True)  # tick 6.25
    assert idx[:8].tolist() == [0, 3, 6, 9, 12, 15, 18, 21]
    assert idx[-4:].tolist() == [87, 90, 93, 96]
    np.testing.assert_array_equal(idx, reference_ssv2_test(100))
    np.testing.assert_array_equal(idx, segment_indices(100, 16, rng=np.random.default_rng(5), test=True))


@pytest.mark.parametrize("length", list(range(1, 120)) + [173, 256, 997])
def test_ssv2_views_interleave_the_sorted_reference_set(length):
    ref = reference_ssv2_test(length)
    views = multiview_indices(length, "segment")
    assert views.shape == (2, 16) and views.dtype == np.int64
    np.testing.assert_array_equal(views[0], ref[0::2])  # even positions: segment starts
    np.testing.assert_array_equal(views[1], ref[1::2])  # odd positions: segment centres
    np.testing.assert_array_equal(segment_indices(length, test=True), ref)
    assert views.min() >= 0 and views.max() < length


def test_segment_views_other_counts():
    one = segment_test_views(100, 16, 1)
    np.testing.assert_array_equal(one[0], [int(6.25 * s) for s in range(16)])  # reference: view 0 = starts
    four = segment_test_views(100, 16, 4)
    np.testing.assert_array_equal(four[:, 0], [0, 1, 3, 4])  # int(6.25 * c / 4)
    assert np.all(np.diff(four, axis=0) >= 0)


# --- dense multi-view (K400 test) -----------------------------------------------------------


def reference_k400_test(length: int, clips: int = 7, clip_len: int = 16, rate: int = 4) -> np.ndarray:
    """SPEC §7.2: every 4th frame of the video (padded to 16), 7 evenly spaced 16-frame windows."""
    sub = list(range(0, length, rate))
    while len(sub) < clip_len:
        sub.append(sub[-1])
    step = max(1.0 * (len(sub) - clip_len) / (clips - 1), 0)
    return np.array([sub[int(c * step) : int(c * step) + clip_len] for c in range(clips)])


def test_k400_views_by_hand():
    views = multiview_indices(300, "dense")  # 75 strided frames, window starts int(c * 59 / 6)
    assert views.shape == (7, 16) and views.dtype == np.int64
    starts = [0, 9, 19, 29, 39, 49, 59]
    np.testing.assert_array_equal(views[:, 0], 4 * np.array(starts))
    np.testing.assert_array_equal(views, 4 * (np.array(starts)[:, None] + np.arange(16)))
    assert views[-1, -1] == 296  # the last strided frame


@pytest.mark.parametrize("length", [1, 5, 30, 63, 64, 65, 100, 150, 299, 300, 1001])
def test_k400_views_match_reference(length):
    views = multiview_indices(length, "dense")
    np.testing.assert_array_equal(views, reference_k400_test(length))
    assert views.min() >= 0 and views.max() < length


def test_k400_short_video_views_repeat():
    views = multiview_indices(30, "dense")  # 8 strided frames padded with 28: one window
    assert np.all(views == views[0])
    assert views[0].tolist() == [0, 4, 8, 12, 16, 20, 24, 28] + [28] * 8


def test_k400_view_count_and_geometry():
    views = multiview_indices(50, "dense", clip_len=8, sampling_rate=2, num_clips=5)
    np.testing.assert_array_equal(views, reference_k400_test(50, 5, 8, 2))
    centre = multiview_indices(300, "dense", num_clips=1)
    np.testing.assert_array_equal(centre[0], 4 * (29 + np.arange(16)))  # (75 - 16) // 2


def test_multiview_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sampling mode"):
        multiview_indices(100, "uniform")
    with pytest.raises(ValueError, match="num_clips"):
        multiview_indices(100, "dense", num_clips=0)
    with pytest.raises(ValueError, match="num_frames_video"):
        multiview_indices(0, "dense")


# --- fixed validation clip ------------------------------------------------------------------


def test_centre_clip_dense_is_the_middle_training_draw():
    idx = centre_clip_indices(300, "dense")
    end = 64 + (299 - 64) // 2  # middle of randint(64, 300)
    np.testing.assert_array_equal(idx, spec_dense(300, end))
    np.testing.assert_array_equal(idx, dense_indices(300, rng=FixedEnd(end)))
    np.testing.assert_array_equal(centre_clip_indices(70, "dense"), spec_dense(70, 66))
    np.testing.assert_array_equal(centre_clip_indices(40, "dense"), spec_dense(40, None))


def test_centre_clip_segment_is_the_middle_of_each_segment():
    assert centre_clip_indices(100, "segment").tolist() == [6 * s + 2 for s in range(16)]  # avg 6: offset 2
    assert centre_clip_indices(32, "segment").tolist() == [2 * s for s in range(16)]  # avg 2: offset 0
    np.testing.assert_array_equal(centre_clip_indices(10, "segment"), segment_indices(10, rng=np.random.default_rng(0)))


def test_centre_clip_is_fixed():
    a = centre_clip_indices(123, "dense", 8, 2)
    b = centre_clip_indices(123, "dense", 8, 2)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8,)

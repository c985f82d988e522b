"""Per-clip pipeline pieces: decoding (both backends), temporal sampling, multi-scale crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smile.data import backends
from smile.data.decoding import VideoDecodeError, VideoInfo, read_clip, read_frames, video_info
from smile.data.sampling import pretrain_indices, strided_indices
from smile.data.transforms import FIXED_OFFSETS, MultiScaleCrop, resize_clip

HAS_DECORD = backends.decord_available()
BACKENDS = ("decord", "pyav") if HAS_DECORD else ("pyav",)
needs_decord = pytest.mark.skipif(not HAS_DECORD, reason="decord not installed")

# ----------------------------------------------------------------------------------------- decoding


@needs_decord
@pytest.mark.parametrize("name", ["flat40.mp4", "flat40.avi", "h264_40.mp4"])
def test_backends_agree_on_frames_incl_repeats(video_dir, frame_index, name):
    idx = [0, 5, 39, 5, 12, 12]
    by_backend = {b: read_frames(video_dir / name, idx, backend=b) for b in BACKENDS}
    for frames in by_backend.values():
        assert frames.dtype == np.uint8 and frames.shape == (6, 48, 64, 3)
        np.testing.assert_allclose(frame_index(frames), idx, atol=0.5)
    diff = np.abs(by_backend["decord"].astype(int) - by_backend["pyav"].astype(int))
    assert diff.max() <= 2
    np.testing.assert_array_equal(by_backend["pyav"][1], by_backend["pyav"][3])  # repeated index


@needs_decord
def test_auto_uses_decord_and_falls_back_to_pyav(video_dir, frame_index, monkeypatch):
    path = video_dir / "flat40.mp4"
    expected = read_frames(path, [3, 30], backend="decord")
    np.testing.assert_array_equal(read_frames(path, [3, 30]), expected)

    class Broken:
        def __init__(self, path, size):
            raise RuntimeError("simulated decord failure")

    monkeypatch.setitem(backends.READERS, "decord", Broken)
    np.testing.assert_allclose(frame_index(read_frames(path, [3, 30])), [3, 30], atol=0.5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_video_info_and_resize(video_dir, frame_index, backend):
    info = video_info(video_dir / "flat40.mp4", backend)
    assert info == VideoInfo(num_frames=40, fps=25.0, height=48, width=64)
    assert video_info(video_dir / "short20.mp4", backend).num_frames == 20
    small = read_frames(video_dir / "flat40.mp4", [7, 8], backend, size=(24, 32))
    assert small.shape == (2, 24, 32, 3)
    np.testing.assert_allclose(frame_index(small), [7, 8], atol=0.5)


@pytest.mark.parametrize("backend", ["auto", *BACKENDS])
def test_errors_name_the_path_and_reason(video_dir, backend):
    missing = video_dir / "nope.mp4"
    with pytest.raises(VideoDecodeError, match="does not exist") as err:
        read_frames(missing, [0], backend)
    assert str(missing) in str(err.value)
    with pytest.raises(VideoDecodeError, match="empty"):
        video_info(video_dir / "empty.mp4", backend)
    with pytest.raises(VideoDecodeError) as err:
        read_frames(video_dir / "corrupt.mp4", [0], backend)
    assert str(video_dir / "corrupt.mp4") in str(err.value)
    assert isinstance(err.value, RuntimeError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_is_a_caller_error_not_a_bad_video(video_dir, backend):
    for bad in ([40], [0, -1]):
        with pytest.raises(IndexError, match="out of range"):
            read_frames(video_dir / "flat40.mp4", bad, backend)


def test_pyav_reports_truncated_streams(video_dir, monkeypatch):
    """A container that claims more frames than decode: a bad video, not an IndexError."""
    monkeypatch.setattr(backends.PyAVReader, "_count_frames", lambda self: 50)
    with pytest.raises(VideoDecodeError, match="truncated"):
        read_frames(video_dir / "flat40.mp4", [45], "pyav")


def test_read_clip_picks_indices_from_the_frame_count(video_dir, frame_index):
    seen = []

    def choose(n):
        seen.append(n)
        return [n - 1, 0]

    frames, idx = read_clip(video_dir / "short20.mp4", choose)
    assert seen == [20] and idx.tolist() == [19, 0]
    np.testing.assert_allclose(frame_index(frames), [19, 0], atol=0.5)


def test_public_names_import_from_the_front_and_the_package():
    """The backends moved to their own module; users keep importing from ``smile.data(.decoding)``."""
    import smile.data
    from smile.data import decoding

    assert decoding.VideoDecodeError is backends.VideoDecodeError is smile.data.VideoDecodeError
    assert decoding.VideoInfo is backends.VideoInfo is smile.data.VideoInfo
    assert smile.data.read_frames is read_frames and smile.data.read_clip is read_clip
    assert set(backends.READERS) == {"decord", "pyav"} and decoding.BACKENDS == ("auto", "decord", "pyav")


# ----------------------------------------------------------------------------------------- sampling


def test_pretrain_indices_long_video_matches_independent_draw():
    for seed in range(20):
        got = pretrain_indices(100, 16, 4, rng=np.random.default_rng(seed))
        start = np.random.default_rng(seed).integers(0, 100 - 64 + 1)  # exclusive high = inclusive 36
        np.testing.assert_array_equal(got, start + 4 * np.arange(16))
    assert pretrain_indices(64, 16, 4, rng=np.random.default_rng(0)).tolist() == list(range(0, 64, 4))


def test_pretrain_indices_short_video_holds_last_grid_frame():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    got = pretrain_indices(20, 16, 4, rng=rng)
    assert got.tolist() == [0, 4, 8, 12, 16] + [16] * 11  # 16 + 4 would pass frame 19
    assert rng.bit_generator.state == state  # short videos draw nothing
    assert pretrain_indices(21, 16, 4, rng=rng).tolist() == [0, 4, 8, 12, 16] + [20] * 11
    assert pretrain_indices(1, 16, 4, rng=rng).tolist() == [0] * 16
    assert strided_indices(5, 4, 3, 12).tolist() == [5, 8, 11, 11]


def test_pretrain_start_range_is_inclusive():
    rng = np.random.default_rng(1)
    starts = {int(pretrain_indices(70, 16, 4, rng=rng)[0]) for _ in range(500)}
    assert starts == set(range(7))  # 70 - 64 = 6 included


# ------------------------------------------------------------------------------------ spatial crop


def test_scale_pairs_320x240():
    pairs = MultiScaleCrop(224).scale_pairs(240, 320)  # sides 240, 210, 180, 158 (no snapping)
    assert pairs == [
        (240, 240),
        (210, 240),
        (240, 210),
        (210, 210),
        (180, 210),
        (210, 180),
        (180, 180),
        (158, 180),
        (180, 158),
        (158, 158),
    ]


@pytest.mark.parametrize(
    "short, sides",
    [
        (256, [256, 224, 192, 168]),  # 0.875 * 256 = 224 exactly
        (254, [254, 224, 190, 167]),  # int(222.25) = 222 snaps
        (226, [224, 197, 169, 149]),  # 226 is 2 px away: snaps
        (227, [227, 198, 170, 149]),  # 3 px away: does not snap
    ],
)
def test_crop_sides_snap_to_output(short, sides):
    pairs = MultiScaleCrop(224).scale_pairs(short, 400)
    assert sorted({h for _, h in pairs}, reverse=True) == sides


def test_thirteen_fixed_offsets_all_reachable():
    crop = MultiScaleCrop(224, scales=(0.5,))  # one size 120x120 -> steps (50, 30) on 320x240
    expected = {(50 * i, 30 * j) for i, j in FIXED_OFFSETS}
    assert len(expected) == 13 and crop.offsets(240, 320, 120, 120)[4] == (100, 60)  # centre
    rng = np.random.default_rng(0)
    seen = {crop.sample_crop(240, 320, rng)[:2] for _ in range(1000)}
    assert seen == expected
    five = MultiScaleCrop(224, scales=(0.5,), more_fix_crop=False)
    assert {five.sample_crop(240, 320, rng)[:2] for _ in range(300)} == {
        (0, 0),
        (200, 0),
        (0, 120),
        (200, 120),
        (100, 60),
    }


def test_default_crops_use_all_pairs_and_grid_positions():
    crop, rng = MultiScaleCrop(224), np.random.default_rng(0)
    draws = [crop.sample_crop(240, 320, rng) for _ in range(2000)]
    assert {(w, h) for *_, w, h in draws} == set(crop.scale_pairs(240, 320))
    for x, y, w, h in draws:
        assert (x, y) in crop.offsets(240, 320, w, h)
        assert x + w <= 320 and y + h <= 240


def test_crop_output_same_for_all_frames_and_matches_pil():
    image = pytest.importorskip("PIL.Image")
    frame = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8))
    frames = frame[None].repeat(4, 1, 1, 1)  # [T, H, W, 3]
    crop = MultiScaleCrop(224)
    for seed in range(5):
        out = crop(frames, np.random.default_rng(seed))
        assert out.shape == (3, 4, 224, 224) and out.dtype == torch.uint8
        assert all(torch.equal(out[:, 0], out[:, t]) for t in range(1, 4))
        x, y, w, h = crop.sample_crop(240, 320, np.random.default_rng(seed))
        pil = image.fromarray(frame[y : y + h, x : x + w].numpy()).resize((224, 224), image.BILINEAR)
        ref = torch.from_numpy(np.array(pil)).permute(2, 0, 1).int()
        assert (out[:, 0].int() - ref).abs().max() <= 1


def test_resize_float_path_and_layout_check():
    clip = torch.randint(0, 256, (2, 3, 30, 40), dtype=torch.uint8)
    a = resize_clip(clip, (20, 20))
    b = torch.nn.functional.interpolate(clip.float(), size=(20, 20), mode="bilinear", antialias=True)
    assert (a.int() - b.round().int()).abs().max() <= 1
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        MultiScaleCrop(16)(clip, np.random.default_rng(0))

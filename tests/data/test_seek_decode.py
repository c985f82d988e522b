"""PyAV keyframe seeking (issue 15 item 2): same frames as decoding from the start, fewer decoded.

The reference is the reader's own sequential path (decode from frame 0, count frames), which is
what :class:`~smile.data.backends.PyAVReader` did before it learned to seek.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from footage import footage_list  # noqa: E402
from smile_testing import BRIGHTNESS_STEP, FPS, HEIGHT, WIDTH, write_video  # noqa: E402

from smile.data import backends  # noqa: E402
from smile.data.decoding import read_frames  # noqa: E402
from smile.data.sampling import pretrain_indices  # noqa: E402


def _decode(path: Path, idx: list[int], seek: bool) -> tuple[np.ndarray, bool]:
    """Frames at ``idx`` through the seeking or the sequential path, and whether seeking held."""
    reader = backends.PyAVReader(str(path), None)
    try:
        reader._seekable = reader._seekable and seek
        return reader.get(np.asarray(idx, dtype=np.int64)), reader._seekable
    finally:
        reader.close()


def _windows(
    num_frames: int, rng: np.random.Generator, count: int, frames: int = 16, stride: int = 4
) -> list[list[int]]:
    """Training windows, plus the first/last frames and a shuffled one with repeats."""
    out = [pretrain_indices(num_frames, frames, stride, rng=rng).tolist() for _ in range(count)]
    shuffled = rng.integers(0, num_frames, 6).tolist()
    return [*out, [0], [num_frames - 1], [num_frames - 1, 0], shuffled + shuffled[:2]]


def _write_with_pts(path: Path, pts: list[int], codec: str = "libx264") -> Path:
    """Frame ``k`` flat grey ``5 k mod 256`` at presentation time ``pts[k]`` (time base 1/FPS)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.time_base = Fraction(1, FPS)
        stream.codec_context.gop_size = 8
        for k, t in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(
                np.full((HEIGHT, WIDTH, 3), BRIGHTNESS_STEP * k % 256, np.uint8), "rgb24"
            )
            frame.pts, frame.time_base = t, Fraction(1, FPS)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def footage() -> list[Path]:
    """Real H.264 clips at 320p and 256p (GOP 16), from the cached transcode."""
    paths = []
    for side in (320, 256):
        lines = footage_list(side).read_text().splitlines()
        paths += [Path(line.rsplit(" ", 1)[0]) for line in lines]
    return paths


def test_real_footage_seeking_returns_the_frames_of_a_decode_from_the_start(footage):
    rng = np.random.default_rng(0)
    for path in footage:
        n = backends.PyAVReader(str(path), None)
        num_frames = n.num_frames
        n.close()
        for idx in _windows(num_frames, rng, 3):
            seeked, held = _decode(path, idx, seek=True)
            assert held, f"{path.name}: fell back to sequential decoding"
            np.testing.assert_array_equal(seeked, _decode(path, idx, seek=False)[0], err_msg=f"{path.name} {idx}")


@pytest.mark.parametrize("name, codec", [("flat50.mp4", "mpeg4"), ("h264_50.mp4", "libx264"), ("flat50.avi", "mpeg4")])
def test_synthetic_windows_match_and_read_their_index(tmp_path, frame_index, name, codec):
    path = write_video(tmp_path / name, 50, codec=codec)  # 5 * 50 stays below 256
    rng = np.random.default_rng(1)
    for idx in _windows(50, rng, 4, frames=8, stride=2):
        seeked, held = _decode(path, idx, seek=True)
        assert held
        np.testing.assert_array_equal(seeked, _decode(path, idx, seek=False)[0])
        np.testing.assert_allclose(frame_index(seeked), idx, atol=0.5)


def test_pts_not_starting_at_zero(tmp_path, frame_index):
    path = _write_with_pts(tmp_path / "late.mp4", [100 + k for k in range(40)])
    reader = backends.PyAVReader(str(path), None)
    assert reader._stream.start_time > 0 and reader._seekable
    reader.close()
    for idx in ([0, 4, 8], [33, 37, 39], [39, 20, 20]):
        seeked, held = _decode(path, idx, seek=True)
        assert held
        np.testing.assert_array_equal(seeked, _decode(path, idx, seek=False)[0])
        np.testing.assert_allclose(frame_index(seeked), idx, atol=0.5)


def test_variable_frame_rate_falls_back_to_counting_frames(tmp_path, frame_index):
    pts = [k + 3 * (k >= 20) for k in range(40)]  # a 3-frame gap: pts no longer give frame numbers
    path = _write_with_pts(tmp_path / "vfr.mp4", pts)
    frames, held = _decode(path, [18, 22, 26], seek=True)
    assert not held
    np.testing.assert_allclose(frame_index(frames), [18, 22, 26], atol=0.5)
    np.testing.assert_allclose(frame_index(read_frames(path, [30, 39], "pyav")), [30, 39], atol=0.5)


def test_missing_rate_decodes_from_the_start(video_dir, frame_index, monkeypatch):
    monkeypatch.setattr(backends.PyAVReader, "_pts_mapping", lambda self: None)
    reader = backends.PyAVReader(str(video_dir / "flat40.mp4"), None)
    assert not reader._seekable
    np.testing.assert_allclose(frame_index(reader.get(np.array([39, 2]))), [39, 2], atol=0.5)
    reader.close()


class _Counting:
    """A container proxy that counts the frames its ``decode`` yields."""

    def __init__(self, container):
        self.container, self.decoded = container, 0

    def __getattr__(self, name):
        return getattr(self.container, name)

    def decode(self, *streams):
        for frame in self.container.decode(*streams):
            self.decoded += 1
            yield frame


def test_seeking_decodes_only_from_the_keyframe_before_the_window(tmp_path, monkeypatch):
    path = _write_with_pts(tmp_path / "gop8.mp4", list(range(120)))  # keyframe every 8 frames
    converted = []
    real = backends.PyAVReader._to_rgb
    monkeypatch.setattr(backends.PyAVReader, "_to_rgb", lambda self, f: converted.append(f.pts) or real(self, f))
    reader = backends.PyAVReader(str(path), None)
    reader._container = counting = _Counting(reader._container)
    frames = reader.get(np.array([100, 104, 104, 108]))
    reader.close()
    assert reader._seekable and counting.decoded <= 108 - 96 + 1  # from keyframe 96 to frame 108
    assert len(converted) == 3  # three distinct frames converted, the repeat reused
    np.testing.assert_array_equal(frames[1], frames[2])


def test_truncated_stream_still_reported_after_a_seek(video_dir, monkeypatch):
    monkeypatch.setattr(backends.PyAVReader, "_count_frames", lambda self: 50)
    with pytest.raises(backends.VideoDecodeError, match="truncated"):
        read_frames(video_dir / "flat40.mp4", [38, 45], "pyav")

"""Tiny real video files for the decoding and list-dataset tests.

Frame ``k`` of every clip is flat grey with value ``BRIGHTNESS_STEP * k``, so the index of a decoded
frame can be read back from its mean (codecs keep flat frames within a few levels) whatever crop
or resize was applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

BRIGHTNESS_STEP = 5
WIDTH, HEIGHT, FPS = 64, 48, 25


def write_video(path: Path, num_frames: int, codec: str = "mpeg4", width: int = WIDTH, height: int = HEIGHT) -> Path:
    """Encode ``num_frames`` flat frames (value ``BRIGHTNESS_STEP * k``) with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 2_000_000  # generous for tiny frames: keeps flat frames within ~2 levels
        for k in range(num_frames):
            rgb = np.full((height, width, 3), BRIGHTNESS_STEP * k, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def frame_index():
    """Function ``[N, ...] frames -> [N]`` float estimate of each frame's index (from its mean)."""

    def estimate(frames) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.float64)
        return frames.reshape(frames.shape[0], -1).mean(axis=1) / BRIGHTNESS_STEP

    return estimate


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with good, short, oddly named, corrupt and empty videos."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "flat40.mp4", 40)
    write_video(root / "flat40.avi", 40)
    write_video(root / "h264_40.mp4", 40, codec="libx264")
    write_video(root / "short20.mp4", 20)
    write_video(root / "clip.mp4", 40)  # listed without extension
    write_video(root / "with space.mp4", 40)
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.mp4").write_bytes(b"")
    return root

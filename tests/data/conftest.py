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

from smile_testing import BRIGHTNESS_STEP, write_video  # noqa: E402


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

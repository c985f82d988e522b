"""smile-data check-ava --frame-source video: the 15-minute cut videos are measured in 30 fps frames."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np

from smile.cli.data import main
from smile.data.ava.check import check_ava

VIDEO_FPS = 10


def write_video(path: Path, num_frames: int, codec: str = "mpeg4") -> None:
    """A 64 x 48 video of ``num_frames`` grey frames at 10 fps."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 4 * k, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_videos_long_enough_short_and_missing_are_told_apart(tmp_path, ava_synth, capsys):
    ann = shutil.copytree(ava_synth.root / "annotations", tmp_path / "annotations")
    videos = tmp_path / "videos"
    videos.mkdir()
    # the last keyframe (904) is AVA frame 120: 121 frames at 30 fps = 4.03 s are needed
    write_video(videos / "synth000000.mp4", 5 * VIDEO_FPS)  # 5 s -> 150 frames at 30 fps: enough
    write_video(videos / "synth000001.mp4", 2 * VIDEO_FPS)  # 2 s -> 60 frames: short
    # synth000002 (val) has no video
    report = check_ava(frames=videos, annotations=ann, frame_source="video", expected_frames=0, workers=1)
    assert report.folders == 3 and report.missing_folders == ["synth000002"]
    assert report.short_folders == [("synth000001", 60, 121)] and not report.ok
    assert main(["check-ava", "--frames", str(videos), "--annotations", str(ann), "--frame-source", "video"]) == 1
    out = capsys.readouterr().out
    assert "1 of 3 frame folders missing or empty" in out and "synth000001 (60 < 121)" in out
    write_video(videos / "synth000001.mp4", 5 * VIDEO_FPS)
    write_video(videos / "synth000002.webm", 5 * VIDEO_FPS, codec="libvpx-vp9")  # any extension
    assert check_ava(frames=videos, annotations=ann, frame_source="video", expected_frames=0).ok
    assert main(["check-ava", "--frames", str(videos), "--annotations", str(ann), "--frame-source", "avi"]) == 1
    assert "frame_source='avi' must be 'jpg' or 'video'" in capsys.readouterr().err

"""``smile-data transcode``: short side, no audio, short GOP, same labels, resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
from footage import tiny_clips

from smile.cli.data import main
from smile.data.datasets.list import read_video_list
from smile.data.transcode import TEMP_SUFFIX, scaled_size, transcode_list

av = pytest.importorskip("av")


def _keyframe_gaps(path: str) -> list[int]:
    """Distances between consecutive keyframes (and from the last one to the end), in packets."""
    with av.open(path) as c:
        flags = [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size > 0]
    keys = [i for i, key in enumerate(flags) if key] + [len(flags)]
    assert keys[0] == 0
    return [b - a for a, b in zip(keys, keys[1:], strict=False)]


def _run(src: Path, out: Path) -> list[str]:
    args = ["--list", str(src), "--out-dir", str(out / "videos"), "--out-list", str(out / "list.txt")]
    return ["transcode", *args, "--short-side", "96", "--gop", "8", "--workers", "1", "--no-progress"]


def test_transcode_writes_small_silent_short_gop_videos_and_a_new_list(tmp_path, capsys):
    src = tiny_clips(tmp_path / "in", frames=24)
    assert main(_run(src, tmp_path / "out")) == 0
    assert "3 done, 0 skipped, 0 failed" in capsys.readouterr().out
    old_paths, old_labels = read_video_list(src)
    paths, labels = read_video_list(tmp_path / "out" / "list.txt")
    assert labels == old_labels == [0, 1, 2]
    assert [Path(p).stem for p in paths] == [Path(p).stem for p in old_paths]
    for path in paths:
        with av.open(path) as c:
            video = c.streams.video[0]
            assert not c.streams.audio  # Big Buck Bunny had one
            assert min(video.codec_context.width, video.codec_context.height) == 96
            assert video.codec_context.name == "h264"
            assert sum(1 for _ in c.decode(video)) == 24
        assert max(_keyframe_gaps(path)) <= 8


def test_a_second_run_skips_and_a_leftover_temp_file_is_redone(tmp_path):
    src = tiny_clips(tmp_path / "in", frames=24)
    out = tmp_path / "out"
    assert main(_run(src, out)) == 0
    first = {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.mp4")}
    results = transcode_list(src, out / "videos", out / "list.txt", short_side=96, gop=8, workers=1, progress=False)
    assert [r.status for r in results] == ["skipped"] * 3
    assert {p.name: p.stat().st_mtime_ns for p in (out / "videos").glob("*.mp4")} == first

    done = out / "videos" / "bikes.mp4"
    done.unlink()  # as if the run was killed while writing it: only the temporary file is left
    leftover = done.with_name("bikes" + TEMP_SUFFIX)
    leftover.write_bytes(b"half a video")
    results = transcode_list(src, out / "videos", out / "list.txt", short_side=96, gop=8, workers=1, progress=False)
    assert [r.status for r in results] == ["done", "skipped", "skipped"]
    assert results[0].frames_in == results[0].frames_out == 24
    assert done.is_file() and not leftover.exists()


def test_a_bad_input_fails_alone_and_is_left_out_of_the_list(tmp_path, capsys):
    src = tiny_clips(tmp_path / "in", frames=24)
    (tmp_path / "in" / "broken.mp4").write_bytes(b"\x00not a video" * 20)
    src.write_text(src.read_text() + "broken.mp4 3\n")
    assert main(_run(src, tmp_path / "out")) == 1
    assert "failed: " in capsys.readouterr().err
    assert read_video_list(tmp_path / "out" / "list.txt")[1] == [0, 1, 2]
    assert not list((tmp_path / "out" / "videos").glob(f"*{TEMP_SUFFIX}"))


def test_scaled_size_keeps_the_aspect_ratio_with_even_sides():
    assert scaled_size(272, 640, 320) == (320, 752)
    assert scaled_size(720, 1280, 320) == (320, 568)
    assert scaled_size(640, 360, 256) == (456, 256)  # 455.1 -> the nearest even side

"""smile-data check: every video of a list opened and its first/last frame decoded, bad ones reported."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from smile_testing import write_video

from smile.cli.data import main
from smile.data.check import check_list, check_video, check_videos, clip_span, write_report

GOOD = {"h264.mp4": "libx264", "vp9.webm": "libvpx-vp9", "mpeg4.avi": "mpeg4"}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three good tiny videos (one per codec), a corrupt, an empty file; ``missing.mp4`` is absent."""
    root = tmp_path_factory.mktemp("check")
    for name, codec in GOOD.items():
        write_video(root / name, 12, codec=codec, width=32, height=24)
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "empty.avi").write_bytes(b"")
    return root


def write_list(path: Path, names: list[str]) -> Path:
    path.write_text("".join(f"{name} {i}\n" for i, name in enumerate(names)))
    return path


def read_rows(path: Path) -> dict[str, list[str]]:
    """``name -> [status, reason, frames, fps, size, duration_s]`` of a TSV report."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["path", "status", "reason", "frames", "fps", "size", "duration_s"]
    return {Path(row[0]).name: row[1:] for row in rows[1:]}


def read_report(path: Path) -> dict[str, tuple[str, str]]:
    return {name: (row[0], row[1]) for name, row in read_rows(path).items()}


def test_check_video_reasons(videos: Path):
    for name in GOOD:
        assert check_video(str(videos / name)).ok
    assert check_video(str(videos / "h264.mp4"), backend="pyav").ok
    assert check_video(str(videos / "missing.mp4")).reason == "file does not exist"
    assert check_video(str(videos / "empty.avi")).reason == "file is empty (0 bytes)"
    corrupt = check_video(str(videos / "corrupt.mp4"))
    assert not corrupt.ok and "failed to open" in corrupt.reason
    assert not corrupt.reason.startswith(str(videos)) and f"| {videos}" not in corrupt.reason  # prefixes stripped


def test_cli_check_finds_bad_videos(videos: Path, tmp_path: Path, capsys):
    names = ["h264.mp4", "corrupt.mp4", "vp9.webm", "empty.avi", "missing.mp4", "mpeg4.avi", "h264.mp4"]
    lst = write_list(videos / "mixed.txt", names)
    out = tmp_path / "report.tsv"
    assert main(["check", "--list", str(lst), "--workers", "2", "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "3 ok, 3 bad (50.00% bad)" in printed and "missing.mp4: file does not exist" in printed
    report = read_report(out)
    assert list(report) == list(dict.fromkeys(names))  # list order, duplicates checked once
    assert {n: s for n, (s, _) in report.items()} == {
        "h264.mp4": "ok",
        "corrupt.mp4": "bad",
        "vp9.webm": "ok",
        "empty.avi": "bad",
        "missing.mp4": "bad",
        "mpeg4.avi": "ok",
    }
    assert report["missing.mp4"][1] == "file does not exist"
    assert report["empty.avi"][1] == "file is empty (0 bytes)"
    assert "failed to open" in report["corrupt.mp4"][1] and report["h264.mp4"][1] == ""


def test_all_good_list_exits_zero(videos: Path, tmp_path: Path, capsys):
    lst = write_list(tmp_path / "good.txt", list(GOOD))
    assert main(["check", "--list", str(lst), "--root", str(videos), "--workers", "1", "--no-progress"]) == 0
    assert "3 ok, 0 bad (0.00% bad)" in capsys.readouterr().out
    report = check_list(lst, root=videos, workers=1, progress=False)
    assert [r.ok for r in report.results] == [True] * 3 and report.bad_fraction == 0.0
    tsv = write_report(report, tmp_path / "sub" / "r.tsv")
    assert [s for s, _ in read_report(tsv).values()] == ["ok"] * 3
    assert check_videos([], progress=False).results == []


def test_cli_check_missing_list(tmp_path: Path, capsys):
    assert main(["check", "--list", str(tmp_path / "nope.txt")]) == 1
    assert "nope.txt" in capsys.readouterr().err


def test_report_rows_carry_frames_fps_size_duration(videos: Path, tmp_path: Path):
    write_video(tmp_path / "long.mp4", 50, width=40, height=24)  # 50 frames at 25 fps: 2 s
    lst = write_list(tmp_path / "l.txt", [str(videos / "h264.mp4"), "long.mp4", str(videos / "empty.avi")])
    out = tmp_path / "r.tsv"
    assert main(["check", "--list", str(lst), "--workers", "1", "--no-progress", "--out", str(out)]) == 1
    rows = read_rows(out)
    assert rows["h264.mp4"] == ["ok", "", "12", "25", "32x24", "0.480"]
    assert rows["long.mp4"] == ["ok", "", "50", "25", "40x24", "2.000"]
    assert rows["empty.avi"] == ["bad", "file is empty (0 bytes)", "", "", "", ""]


def test_short_videos_are_flagged_against_the_clip_span(videos: Path, tmp_path: Path, capsys):
    assert clip_span(16, 4) == 61 and clip_span(4, 4) == 13
    write_video(tmp_path / "edge.mp4", 13, width=32, height=24)  # exactly a 4 x 4 span
    lst = write_list(tmp_path / "l.txt", [str(videos / "mpeg4.avi"), "edge.mp4"])
    out = tmp_path / "r.tsv"
    argv = ["check", "--list", str(lst), "--workers", "1", "--no-progress", "--out", str(out)]
    assert main([*argv, "--frames", "16", "--sampling-rate", "4"]) == 0  # short is a warning, not an error
    assert "0 ok, 2 short (< 61 frames), 0 bad (0.00% bad)" in capsys.readouterr().out
    rows = read_rows(out)
    assert rows["mpeg4.avi"][:3] == ["short", "12 frames < the clip span of 61: its clips repeat frames", "12"]
    assert main([*argv, "--frames", "4", "--sampling-rate", "4"]) == 0
    assert "1 ok, 1 short (< 13 frames), 0 bad" in capsys.readouterr().out
    assert [r[0] for r in read_rows(out).values()] == ["short", "ok"]
    assert main([*argv, "--experiment", "finetune_ucf101_vitb"]) == 0  # 16 x 4
    assert [r[0] for r in read_rows(out).values()] == ["short", "short"]
    assert main([*argv, "--frames", "16"]) == 1
    assert "--frames and --sampling-rate go together" in capsys.readouterr().err
    assert main([*argv, "--experiment", "nope"]) == 1
    assert "--experiment nope: no such experiment" in capsys.readouterr().err

"""smile-data check: every video of a list opened and its first/last frame decoded, bad ones reported."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from smile_testing import write_video

from smile.cli.data import main
from smile.data.check import check_list, check_video, check_videos, write_report

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


def read_report(path: Path) -> dict[str, tuple[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    assert rows[0] == ["path", "status", "reason"]
    return {Path(p).name: (status, reason) for p, status, reason in rows[1:]}


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

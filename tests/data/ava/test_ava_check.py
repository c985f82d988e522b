"""smile-data check-ava: a good synthetic AVA passes; missing folders, short folders, bad rows fail by name."""

from __future__ import annotations

import shutil

import pytest

from smile.cli.data import main
from smile.data.ava.check import FULL_WINDOW_FRAMES, check_ava


@pytest.fixture
def ava_copy(tmp_path, ava_synth):
    """A writable copy of the session's synthetic AVA."""
    return shutil.copytree(ava_synth.root, tmp_path / "ava")


def test_synthetic_ava_passes(ava_synth, capsys):
    report = check_ava(ava_synth.root, expected_frames=0)
    assert report.ok and report.problems == [] and report.warnings == []
    train, val = report.splits["train"], report.splits["val"]
    assert (train.videos, train.keyframes, train.boxes, train.excluded) == (2, 5, 20, 1)
    assert (val.videos, val.keyframes, val.boxes, val.excluded) == (1, 3, 12, 0)  # an empty val excluded file
    assert (val.proposal_keyframes, val.proposals_kept, val.keyframes_without_proposals) == (3, 12, 0)
    assert (report.classes, report.folders) == (5, 3)
    # 5-second folders hold every keyframe but not the 27,030 frames of a full window: a warning only
    assert check_ava(ava_synth.root).incomplete_folders == [(f"synth00000{i}", 150) for i in range(3)]
    assert FULL_WINDOW_FRAMES == 27030
    assert main(["check-ava", "--root", str(ava_synth.root)]) == 0
    out = capsys.readouterr().out
    assert (
        "val: 1 videos, 3 keyframes, 12 boxes, 0 excluded keyframes; proposals: 3 keyframes, 4.00 boxes >= 0.8" in out
    )
    assert "3 frame folders have fewer than 27030 frames" in out and out.rstrip().endswith("OK")
    assert main(["check-ava", "--root", str(ava_synth.root), "--expected-frames", "0", "--workers", "1"]) == 0
    assert "warnings" not in capsys.readouterr().out


def test_missing_and_short_folders(ava_copy, capsys):
    shutil.rmtree(ava_copy / "frames" / "synth000001")
    for k in range(101, 151):  # synth000002 keeps 100 frames: its keyframe 904 is frame 120
        (ava_copy / "frames" / "synth000002" / f"synth000002_{k:06d}.jpg").unlink()
    report = check_ava(ava_copy, expected_frames=0)
    assert report.missing_folders == ["synth000001"] and report.short_folders == [("synth000002", 100, 121)]
    assert report.problems == [
        f"1 of 3 frame folders missing or empty under {ava_copy / 'frames'} (first: synth000001)",
        "1 frame folders lack their last keyframe's frame (frames < needed): synth000002 (100 < 121)",
    ]
    assert (
        main(["check-ava", "--frames", str(ava_copy / "frames"), "--annotations", str(ava_copy / "annotations")]) == 1
    )
    assert capsys.readouterr().out.rstrip().endswith("FAILED")


def test_malformed_rows_and_missing_files_are_named(ava_copy, capsys):
    val_csv = ava_copy / "annotations" / "ava_val_v2.2.csv"
    lines = val_csv.read_text().splitlines()
    lines[4] = "synth000002,0902,0.1,0.2,0.3"
    val_csv.write_text("\n".join(lines) + "\n")
    (ava_copy / "annotations" / "ava_dense_proposals_val.FAIR.recall_93.9.pkl").unlink()
    report = check_ava(ava_copy, expected_frames=0)
    assert len(report.problems) == 2
    assert report.problems[0].startswith(f"{val_csv}:5: expected 7 or 8 comma-separated fields")
    assert report.problems[1].startswith("AVA proposals file") and "ava_dense_proposals_val" in report.problems[1]
    assert main(["check-ava", "--root", str(ava_copy)]) == 1
    assert f"{val_csv}:5: expected 7 or 8" in capsys.readouterr().out


def test_bad_arguments(tmp_path, capsys):
    assert not check_ava(tmp_path).ok and check_ava(tmp_path).problems[0].startswith("annotations folder")
    assert main(["check-ava", "--frames", str(tmp_path)]) == 1
    assert "needs root (--root) or both frames (--frames) and annotations" in capsys.readouterr().err

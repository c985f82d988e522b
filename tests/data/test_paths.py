"""Missing or unreadable dataset folders are named with the key that sets them (issue 13 item 6)."""

from __future__ import annotations

import os

import pytest

from smile.cli.data import main as smile_data
from smile.data.indexes import index_dataset
from smile.data.paths import check_folder, check_readable_file


def test_a_missing_folder_is_named_with_its_key_and_the_nearest_existing_parent(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=rf"^data\.source\.root: {tmp_path}/ucf/videos: no such folder \({tmp_path} exists\)$"
    ):
        check_folder(tmp_path / "ucf" / "videos", "data.source.root")


def test_a_file_is_not_a_folder_and_a_folder_is_not_a_file(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="f.txt: not a folder"):
        check_folder(tmp_path / "f.txt", "data.source.root")
    with pytest.raises(FileNotFoundError, match="missing.txt: no such file"):
        check_readable_file(tmp_path / "missing.txt", "data.train_dataset.list_file")
    assert check_folder(tmp_path, "x") == tmp_path


def test_an_unreadable_folder_or_file_is_a_permission_error_naming_it(tmp_path, monkeypatch):
    # the tests may run as root, who can read anything: the access check itself is what is tested
    (tmp_path / "f.txt").write_text("x")
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(PermissionError, match=rf"data\.source\.root: {tmp_path}: permission denied"):
        check_folder(tmp_path, "data.source.root")
    with pytest.raises(PermissionError, match=r"f\.txt: permission denied \(this user cannot read the file\)"):
        check_readable_file(tmp_path / "f.txt", "list")


def test_index_names_a_missing_root_instead_of_a_missing_annotation_file(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"^data\.source\.root \(smile-data --root\): .*/nowhere: no such folder"
    ):
        index_dataset("ucf101", tmp_path / "nowhere", None, "train", 1)
    (tmp_path / "videos").mkdir()
    with pytest.raises(FileNotFoundError, match=r"data\.source\.annotations .*/splits: no such folder"):
        index_dataset("ucf101", tmp_path / "videos", tmp_path / "splits", "train", 1)


def test_smile_data_index_reports_it_in_one_line(tmp_path, capsys):
    code = smile_data(
        ["index", "--format", "ucf101", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "l.txt")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "no such folder" in err[0] and "nowhere" in err[0]


def test_an_unreadable_video_is_reported_as_a_permission_problem(tmp_path, monkeypatch):
    from smile.data.decoding import VideoDecodeError, read_frames

    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(video) else real_access(path, mode))
    with pytest.raises(VideoDecodeError, match=r"v\.mp4: permission denied \(this user cannot read the file\)"):
        read_frames(str(video), [0])


def test_a_list_root_that_does_not_exist_is_named_before_any_video_is_tried(tmp_path):
    from smile.data.datasets.list import VideoListDataset

    listing = tmp_path / "train.txt"
    listing.write_text("a.mp4 0\nb.mp4 1\n")
    with pytest.raises(FileNotFoundError, match=r"^data\.train_dataset\.root: /nowhere/videos: no such folder"):
        VideoListDataset(listing, root="/nowhere/videos", config_key="data.train_dataset.list_file")


def test_indexing_imports_neither_torch_nor_timm():
    import subprocess
    import sys

    code = (
        "import sys; from smile.data.indexes import index_dataset, write_list; "
        "print('timm' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]  # smile-data index starts in a fraction of a second


def test_smile_data_check_names_an_unreadable_root_in_one_line(tmp_path, monkeypatch, capsys):
    listing = tmp_path / "l.txt"
    listing.write_text("a.mp4 0\n")
    (tmp_path / "videos").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p).endswith("videos") else real_access(p, m))
    code = smile_data(["check", "--list", str(listing), "--root", str(tmp_path / "videos"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "videos: permission denied" in err[0]

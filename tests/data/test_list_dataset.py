"""VideoListDataset: list formats, path rules, sampling on real files, broken-video policy."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from smile.data.datasets.list import TooManyBadVideos, VideoListDataset, read_video_list
from smile.data.sampling import pretrain_indices

SMALL = {"num_frames": 4, "sampling_rate": 4, "img_size": 32}  # window 16 of a 40-frame video


def write_list(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_reference_format_paths_and_labels(video_dir, tmp_path):
    lst = write_list(tmp_path / "train.csv", [f"{video_dir / 'flat40.mp4'} 3", "flat40.avi 5", "clip 7"])
    paths, labels = read_video_list(lst, root=video_dir)
    assert paths == [str(video_dir / n) for n in ("flat40.mp4", "flat40.avi", "clip.mp4")]
    assert labels == [3, 5, 7]
    ds = VideoListDataset(lst, root=video_dir, **SMALL)
    for i, label in enumerate(labels):
        item = ds[i]
        assert item["video"].shape == (3, 4, 32, 32) and item["video"].dtype == torch.uint8
        assert item["label"].item() == label and item["label"].dtype == torch.int64
        assert item["index"].item() == i
    assert ds.bad_videos == {}


def test_relative_paths_default_to_the_list_folder(video_dir):
    lst = write_list(video_dir / "local.txt", ["short20.mp4 1"])
    assert read_video_list(lst)[0] == [str(video_dir / "short20.mp4")]


def test_csv_with_header_allows_spaces(video_dir, tmp_path):
    lst = write_list(tmp_path / "train.csv", ["path,label", "with space.mp4,2", '"flat40.mp4",4'])
    ds = VideoListDataset(lst, root=video_dir, **SMALL)
    assert ds.paths == [str(video_dir / "with space.mp4"), str(video_dir / "flat40.mp4")]
    assert ds[0]["label"].item() == 2 and ds[0]["video"].shape == (3, 4, 32, 32)
    bad = write_list(tmp_path / "bad.csv", ["with space.mp4 2"])
    with pytest.raises(ValueError, match="path,label"):
        read_video_list(bad)


def test_missing_and_empty_lists(tmp_path):
    with pytest.raises(FileNotFoundError, match="data.train_list") as err:
        VideoListDataset(tmp_path / "nope.csv")
    assert "nope.csv" in str(err.value) and "README" in str(err.value)
    with pytest.raises(FileNotFoundError, match="data.val_list"):
        read_video_list(tmp_path / "nope.csv", config_key="data.val_list")
    for name, lines in (("empty.csv", []), ("header.csv", ["path,label"]), ("blank.csv", ["", " "])):
        with pytest.raises(ValueError, match="no videos"):
            read_video_list(write_list(tmp_path / name, lines))
    with pytest.raises(ValueError, match="not an integer"):
        read_video_list(write_list(tmp_path / "lbl.csv", ["a.mp4 x"]))


def test_frames_follow_the_sampled_indices(video_dir, tmp_path, frame_index):
    lst = write_list(tmp_path / "l.csv", ["flat40.mp4 0", "flat40.avi 1", "short20.mp4 2"])
    ds = VideoListDataset(lst, root=video_dir, seed=3, **SMALL)
    starts = set()
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i, length in enumerate((40, 40, 20)):
            expected = pretrain_indices(length, 4, 4, rng=np.random.default_rng([3, i, epoch, 0]))
            np.testing.assert_array_equal(ds.clip_indices(i, length), expected)
            video = ds[i]["video"].numpy().transpose(1, 0, 2, 3)  # [T, 3, S, S]
            np.testing.assert_allclose(frame_index(video), expected, atol=0.5)
            starts.add(int(expected[0]))
    assert len(starts) > 2  # starts vary over items and epochs
    assert torch.equal(ds[0]["video"], ds[0]["video"])  # deterministic


def test_a_broken_video_is_replaced_and_reported_in_the_item_not_logged(video_dir, tmp_path, caplog):
    lst = write_list(tmp_path / "l.csv", ["flat40.mp4 0", "corrupt.mp4 1", "flat40.avi 2"])
    ds = VideoListDataset(lst, root=video_dir, **SMALL)
    with caplog.at_level(logging.WARNING):
        first, second = ds[1], ds[1]  # the second time from the worker's cache, without decoding
    assert first["index"].item() == 2 and first["label"].item() == 2  # the next video, its label
    assert first["skipped"].item() == 1
    assert torch.equal(first["video"], second["video"])
    bad = str(video_dir / "corrupt.mp4")
    assert list(ds.bad_videos) == [bad]
    assert json.loads(first["bad_videos"]) == json.loads(second["bad_videos"]) == {bad: ds.bad_videos[bad]}
    assert ds.bad_videos[bad].startswith(bad)  # the reason names the file
    assert ds[0]["bad_videos"] == ""
    # Counting, logging and stopping belong to the main process (tests/data/test_bad_videos.py).
    assert not [r for r in caplog.records if "corrupt.mp4" in r.getMessage()]


def test_limit_is_the_larger_of_the_count_and_the_fraction(video_dir, tmp_path):
    lst = write_list(tmp_path / "l.csv", ["flat40.mp4 0"] * 50)
    assert VideoListDataset(lst, root=video_dir, **SMALL).max_bad == 5  # 1 % of 50 is 0: max_bad_videos=5
    assert VideoListDataset(lst, root=video_dir, max_bad_fraction=0.2, **SMALL).max_bad == 10
    assert VideoListDataset(lst, root=video_dir, max_bad_fraction=0.0, max_bad_videos=0, **SMALL).max_bad == 0
    with pytest.raises(ValueError, match="max_bad_videos must be an integer >= 0, got -1"):
        VideoListDataset(lst, root=video_dir, max_bad_videos=-1, **SMALL)


def test_an_item_whose_every_candidate_fails_stops_with_the_report(video_dir, tmp_path):
    broken = write_list(tmp_path / "b.csv", ["corrupt.mp4 0", "empty.mp4 1", "missing 2"])
    ds = VideoListDataset(broken, root=video_dir, max_bad_fraction=1.0, **SMALL)
    with pytest.raises(TooManyBadVideos, match="item 0 and the 2 entries after it all failed") as err:
        ds[0]
    assert "missing.mp4" in str(err.value) and "does not exist" in str(err.value)
    assert sorted(err.value.bad_videos) == sorted(
        str(video_dir / n) for n in ("corrupt.mp4", "empty.mp4", "missing.mp4")
    )


def test_set_epoch_reaches_persistent_workers(video_dir, tmp_path):
    lst = write_list(tmp_path / "l.csv", [f"flat40.mp4 {i}" for i in range(4)])
    ds = VideoListDataset(lst, root=video_dir, backend="pyav", **SMALL)
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True)
    videos = []
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        (batch,) = list(loader)
        expected = torch.stack([ds[i]["video"] for i in range(4)])  # in-process reference
        assert torch.equal(batch["video"], expected), f"epoch {epoch}"
        videos.append(batch["video"])
    assert not torch.equal(videos[0], videos[1])

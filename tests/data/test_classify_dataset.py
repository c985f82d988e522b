"""VideoClassificationDataset on real files: train / val / test items, views, one decode per video.

Frame ``k`` of the test videos is flat grey ``5 k`` (``write_video``), so the frame numbers behind
every clip are read back from its mean after undoing the normalisation. ``write_video`` holds at
most 52 distinct frames, so the clips here are 8 frames with stride 2 (window 16).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from smile_testing import BRIGHTNESS_STEP, write_video
from torch.utils.data import DataLoader

import smile.data.decoding as decoding
from smile.data.datasets.classify import VideoClassificationDataset, collate_repeated
from smile.data.sampling import centre_clip_indices, dense_indices, multiview_indices, segment_indices
from smile.video import IMAGENET_MEAN, IMAGENET_STD

SMALL = {"num_frames": 8, "sampling_rate": 2, "img_size": 32, "short_side": 32}
PLAIN = {"aa": None, "reprob": 0.0}  # geometry only, so brightness survives


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("classify")
    write_video(root / "v50.mp4", 50)
    write_video(root / "v20.mp4", 20)
    write_video(root / "tall.mp4", 30, width=48, height=64)
    (root / "corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    (root / "train.csv").write_text("v50.mp4 3\nv20.mp4 5\n")
    return root


def frame_numbers(video: torch.Tensor) -> np.ndarray:
    """Normalised ``[..., 3, T, S, S]`` -> frame number of each of the T frames, ``[..., T]``."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    grey = (video * std + mean) * 255.0  # [..., 3, T, S, S]
    return np.rint(grey.mean(dim=(-4, -2, -1)).numpy() / BRIGHTNESS_STEP).astype(np.int64)


def test_train_item_decodes_the_sampled_clip(clips):
    ds = VideoClassificationDataset(clips / "train.csv", mode="train", **SMALL, **PLAIN)
    item = ds[0]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert item["label"].dtype == torch.int64 and item["label"].item() == 3 and item["index"].item() == 0
    expected = dense_indices(50, 8, 2, rng=np.random.default_rng([0, 0, 0, 0]))
    np.testing.assert_array_equal(frame_numbers(item["video"]), expected)
    np.testing.assert_array_equal(ds.clip_indices(0, 50), expected)
    assert ds[1]["label"].item() == 5
    second = dense_indices(20, 8, 2, rng=np.random.default_rng([0, 1, 0, 0]))  # item 1, epoch 0
    np.testing.assert_array_equal(frame_numbers(ds[1]["video"]), second)
    short = VideoClassificationDataset([(clips / "v20.mp4", 0)], mode="train", num_frames=8, sampling_rate=4,
                                       img_size=32, **PLAIN)  # fmt: skip
    expected_short = [0, 5, 10, 15, 19, 19, 19, 19]  # 20 <= 32: linspace(0, 20, 5) clipped, then the last frame
    np.testing.assert_array_equal(frame_numbers(short[0]["video"]), expected_short)


def test_train_clip_changes_with_the_epoch_and_is_reproducible(clips):
    ds = VideoClassificationDataset(clips / "train.csv", mode="train", seed=1, **SMALL, **PLAIN)
    first = [frame_numbers(ds[0]["video"])[0] for _ in range(2)]
    assert first[0] == first[1]
    starts = set()
    for epoch in range(8):
        ds.set_epoch(epoch)
        starts.add(int(frame_numbers(ds[0]["video"])[0]))
    assert len(starts) > 1


def test_train_segment_item(clips):
    ds = VideoClassificationDataset(clips / "train.csv", mode="train", sampling="segment", **SMALL, **PLAIN)
    got = frame_numbers(ds[0]["video"])
    np.testing.assert_array_equal(got, segment_indices(50, 8, rng=np.random.default_rng([0, 0, 0, 0])))
    assert np.all(got // 6 == np.arange(8))  # one frame per segment of 50 // 8 = 6 frames


def test_full_train_recipe_shapes(clips):
    ds = VideoClassificationDataset(clips / "train.csv", mode="train", **SMALL)  # RandAugment + erasing
    video = ds[0]["video"]
    assert video.shape == (3, 8, 32, 32) and video.dtype == torch.float32 and torch.isfinite(video).all()


def count_opens(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Count every file open by the decoding module (all public readers go through _with_reader)."""
    opens: Counter = Counter()
    real = decoding._with_reader

    def spy(path, *args, **kwargs):
        opens[str(path)] += 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decoding, "_with_reader", spy)
    return opens


def test_repeated_augmentation_from_one_decode(clips, monkeypatch):
    opens = count_opens(monkeypatch)
    ds = VideoClassificationDataset(clips / "train.csv", mode="train", num_sample=2, **SMALL)
    item = ds[0]
    assert opens == Counter({str(clips / "v50.mp4"): 1})
    assert item["video"].shape == (2, 3, 8, 32, 32)
    assert item["label"].tolist() == [3, 3] and item["index"].tolist() == [0, 0]
    assert not torch.equal(item["video"][0], item["video"][1])  # two augmentations
    batch = collate_repeated([item, ds[1]])
    assert batch["video"].shape == (4, 3, 8, 32, 32)
    assert batch["label"].tolist() == [3, 3, 5, 5] and batch["index"].tolist() == [0, 0, 1, 1]


def test_collate_repeated_passes_single_samples_through(clips):
    ds = VideoClassificationDataset(clips / "train.csv", mode="train", **SMALL, **PLAIN)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_repeated)))
    assert batch["video"].shape == (2, 3, 8, 32, 32) and batch["label"].tolist() == [3, 5]


def test_val_item_is_the_fixed_centre_clip(clips):
    ds = VideoClassificationDataset(clips / "train.csv", mode="val", **SMALL)
    item = ds[0]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert item["video_id"] == "v50" and item["label"].item() == 3
    np.testing.assert_array_equal(frame_numbers(item["video"]), centre_clip_indices(50, "dense", 8, 2))
    ds.set_epoch(5)
    assert torch.equal(ds[0]["video"], item["video"])
    seg = VideoClassificationDataset(clips / "train.csv", mode="val", sampling="segment", **SMALL)
    np.testing.assert_array_equal(frame_numbers(seg[0]["video"]), centre_clip_indices(50, "segment", 8))


def test_test_item_holds_every_view_from_one_open(clips, monkeypatch):
    opens = count_opens(monkeypatch)
    ds = VideoClassificationDataset(clips / "train.csv", mode="test", **SMALL)
    items = [ds[0], ds[1]]
    assert opens == Counter({str(clips / "v50.mp4"): 1, str(clips / "v20.mp4"): 1})
    item = items[0]
    assert ds.num_views == 21
    assert item["video"].shape == (21, 3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert item["view_ids"].tolist() == list(range(21)) and item["view_ids"].dtype == torch.int64
    assert item["video_id"] == "v50" and item["label"].item() == 3 and item["index"].item() == 0
    views = multiview_indices(50, "dense", 8, 2, 7)  # [7, 8]
    got = frame_numbers(item["video"]).reshape(7, 3, 8)  # view = clip * 3 + crop
    np.testing.assert_array_equal(got, np.repeat(views[:, None], 3, axis=1))


def test_test_views_are_the_three_crops_of_each_clip(clips):
    ds = VideoClassificationDataset([("v50.mp4", 1)], root=clips, mode="test", test_clips=2, **SMALL)
    video = ds[0]["video"]  # [6, 3, T, 32, 32] from 48 x 64 frames resized to 32 x 42
    full = VideoClassificationDataset([("v50.mp4", 1)], root=clips, mode="test", test_clips=2,
                                      normalize_eval=False, **SMALL)[0]["video"]  # fmt: skip
    assert full.dtype == torch.uint8 and full.shape == video.shape
    frames = torch.from_numpy(decoding.read_frames(clips / "v50.mp4", multiview_indices(50, "dense", 8, 2, 2)[1]))
    resized = ds.transform.resize(frames)  # [T, 3, 32, 42]
    for crop, left in enumerate((0, 5, 10)):
        expected = resized[..., left : left + 32].permute(1, 0, 2, 3)  # [3, T, 32, 32]
        assert torch.equal(full[3 + crop], expected)


def test_segment_test_views(clips, monkeypatch):
    opens = count_opens(monkeypatch)
    ds = VideoClassificationDataset(clips / "train.csv", mode="test", sampling="segment", **SMALL)
    item = ds[0]
    assert sum(opens.values()) == 1
    assert item["video"].shape == (6, 3, 8, 32, 32) and item["view_ids"].tolist() == list(range(6))
    union = segment_indices(50, 8, test=True)  # 16 sorted starts and centres
    got = frame_numbers(item["video"]).reshape(2, 3, 8)
    np.testing.assert_array_equal(got[0], np.repeat(union[None, 0::2], 3, axis=0))
    np.testing.assert_array_equal(got[1], np.repeat(union[None, 1::2], 3, axis=0))


def test_portrait_video_crops_along_the_height(clips):
    ds = VideoClassificationDataset([(clips / "tall.mp4", 0)], mode="test", test_clips=1, **SMALL)
    assert ds.transform.cropper.offsets(42, 32) == [(0, 0), (5, 0), (10, 0)]
    assert ds[0]["video"].shape == (3, 3, 8, 32, 32)


def test_records_and_video_ids(clips):
    from smile.data.indexes import VideoRecord

    records = [VideoRecord(str(clips / "v20.mp4"), 7, "yt_abc"), ("v50.mp4", 2)]
    ds = VideoClassificationDataset(records, root=clips, mode="val", **SMALL)
    assert ds.paths == [str(clips / "v20.mp4"), str(clips / "v50.mp4")]
    assert [ds[i]["video_id"] for i in range(2)] == ["yt_abc", "v50"]
    assert [ds[i]["label"].item() for i in range(2)] == [7, 2]


def test_dataset_index_from_a_config_node(clips):
    """The dataset configs build the index with ``index_dataset`` and hand it over whole."""
    from hydra.utils import instantiate

    node = {
        "_target_": "smile.data.datasets.classify.VideoClassificationDataset",
        "records_or_list_file": {"_target_": "smile.data.indexes.index_dataset", "format": "list", "root": str(clips)},
        "mode": "val",
        **SMALL,
    }
    ds = instantiate(node)
    assert ds.paths == [str(clips / "v50.mp4"), str(clips / "v20.mp4")]  # <root>/train.csv, in list order
    assert ds.labels.tolist() == [3, 5] and ds.video_ids == ["v50", "v20"]


def test_broken_videos_follow_the_list_policy(clips, caplog):
    lst = clips / "with_bad.csv"
    lst.write_text("corrupt.mp4 1\nv50.mp4 3\n")
    ds = VideoClassificationDataset(lst, mode="test", max_bad_fraction=0.5, **SMALL)
    item = ds[0]
    assert item["index"].item() == 1 and item["video_id"] == "v50"
    assert list(ds.bad_videos) == [str(clips / "corrupt.mp4")]
    assert json.loads(item["bad_videos"]) == {str(clips / "corrupt.mp4"): ds.bad_videos[str(clips / "corrupt.mp4")]}
    assert ds.policy.max_bad == 5  # max(max_bad_videos=5, floor(0.5 x 2) = 1)
    repeated = VideoClassificationDataset(lst, mode="train", num_sample=3, max_bad_videos=0, **SMALL)[0]
    assert repeated["skipped"].tolist() == [1, 0, 0]  # one broken video passed over, counted once
    assert json.loads(repeated["bad_videos"]) == {str(clips / "corrupt.mp4"): ds.bad_videos[str(clips / "corrupt.mp4")]}


def test_argument_checks(clips):
    with pytest.raises(ValueError, match="mode"):
        VideoClassificationDataset(clips / "train.csv", mode="eval")
    with pytest.raises(ValueError, match="sampling"):
        VideoClassificationDataset(clips / "train.csv", sampling="uniform")
    with pytest.raises(FileNotFoundError, match="data.val_list"):
        VideoClassificationDataset(clips / "missing.csv", config_key="data.val_list")


def test_short_videos_give_padded_items(clips):
    """``padded`` = 1 when the video is shorter than the clip and frames repeat (8 x 4 needs 32 > 20 frames)."""
    records = [(clips / "v50.mp4", 0), (clips / "v20.mp4", 1)]
    geometry = {"num_frames": 8, "sampling_rate": 4, "img_size": 32}
    for mode in ("train", "val", "test"):
        ds = VideoClassificationDataset(records, mode=mode, test_clips=2, test_crops=1, **geometry, **PLAIN)
        assert [ds[i]["padded"].item() for i in range(2)] == [0, 1], mode
    repeated = VideoClassificationDataset(records, num_sample=2, **geometry, **PLAIN)
    assert repeated[1]["padded"].tolist() == [1, 0]  # one decoded video, counted once
    batch = collate_repeated([repeated[0], repeated[1]])
    assert batch["padded"].tolist() == [0, 0, 1, 0] and int(batch["padded"].sum()) == 1

"""The class count and names come from the data; a configured count that disagrees fails naming both."""

from __future__ import annotations

from pathlib import Path

import pytest
from smile_testing import TINY, compose_cfg, write_video

from smile.data import SyntheticVideoDataset, VideoDataModule
from smile.data.classes import resolve_num_classes
from smile.data.datasets.classify import VideoClassificationDataset
from smile.data.datasets.list import VideoListDataset
from smile.data.indexes import index_dataset

CLASSES = ["ApplyEyeMakeup", "Basketball", "Diving", "Surfing"]


def ucf_layout(root: Path, videos: bool = False) -> Path:
    """A 4-class UCF101 copy: classInd.txt, trainlist01/testlist01 (one video per class each)."""
    root.mkdir(parents=True)
    (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    (root / "trainlist01.txt").write_text("".join(f"{c}/v_{c}_g01_c01.avi {i + 1}\n" for i, c in enumerate(CLASSES)))
    (root / "testlist01.txt").write_text("".join(f"{c}/v_{c}_g02_c01.avi\n" for c in CLASSES))
    for c in CLASSES if videos else ():
        (root / c).mkdir()
        write_video(root / c / f"v_{c}_g01_c01.avi", 8, width=32, height=32)
    return root


def ucf_cfg(tmp_path: Path, num_classes: str):
    root = ucf_layout(tmp_path / "ucf")
    return compose_cfg(
        ["experiment=finetune_ucf101_vitb", *TINY, f"data.source.root={root}", f"data.num_classes={num_classes}"],
        tmp_path / "run",
    ), root


def test_configured_count_contradicting_classind_fails_naming_both(tmp_path: Path):
    cfg, root = ucf_cfg(tmp_path, "101")
    with pytest.raises(ValueError) as err:
        resolve_num_classes(cfg)
    assert str(err.value) == (
        f"data.num_classes=101 but {root / 'classInd.txt'} lists 4 classes: "
        "set data.num_classes=4 (or null to take it from the data)"
    )


def test_null_takes_count_and_names_from_the_index(tmp_path: Path):
    cfg, _ = ucf_cfg(tmp_path, "null")
    assert resolve_num_classes(cfg) == (4, CLASSES)
    cfg.data.num_classes = 4  # an agreeing count passes
    assert resolve_num_classes(cfg) == (4, CLASSES)


def test_data_module_takes_names_from_its_training_dataset(tmp_path: Path):
    root = ucf_layout(tmp_path / "ucf", videos=True)
    train = VideoClassificationDataset(index_dataset("ucf101", root), num_frames=4, sampling_rate=1, img_size=32)
    dm = VideoDataModule(train, batch_size=1, num_classes=None)
    assert (dm.num_classes, dm.class_names) == (4, CLASSES)
    with pytest.raises(ValueError, match=r"^data.num_classes=101 but .*classInd.txt lists 4 classes: set data"):
        VideoDataModule(train, batch_size=1, num_classes=101)


def test_synthetic_and_list_data(tmp_path: Path):
    dm = VideoDataModule(SyntheticVideoDataset(8, num_frames=4, img_size=16), num_classes=None)
    assert dm.num_classes == 8 and dm.class_names[:2] == ["right-slow", "right-fast"]
    write_video(tmp_path / "a.mp4", 8)
    (tmp_path / "train.txt").write_text("a.mp4 0\na.mp4 2\n")
    listed = VideoListDataset(tmp_path / "train.txt", num_frames=4, img_size=32)
    assert VideoDataModule(listed, batch_size=1).class_names == ["class_0", "class_1", "class_2"]  # max label + 1
    cls = VideoClassificationDataset(tmp_path / "train.txt", num_frames=4, img_size=32)
    assert (cls.class_names, cls.classes_file) == (["class_0", "class_1", "class_2"], str(tmp_path / "train.txt"))
    (tmp_path / "classes.txt").write_text("walk\nrun\njump\nswim\n")  # a class-name file beside the list wins
    cls = VideoClassificationDataset(tmp_path / "train.txt", num_frames=4, img_size=32)
    assert VideoDataModule(cls, batch_size=1).class_names == ["walk", "run", "jump", "swim"]


def test_synthetic_config_resolves_without_files(tmp_path: Path):
    cfg = compose_cfg(["experiment=finetune_synthetic", *TINY], tmp_path / "run")
    count, names = resolve_num_classes(cfg)
    assert count == 8 and len(names) == 8 and names[0] == "right-slow"

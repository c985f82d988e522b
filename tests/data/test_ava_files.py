"""Readers of the published AVA v2.2 files (smile.data.ava.files) on literal fixtures."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smile.data.ava import (
    clip_frame_paths,
    keyframe_index,
    read_annotations,
    read_excluded,
    read_label_map,
    read_proposals,
)

ANNOTATIONS = """\
-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,80,1
-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,9,1
-5KQ66BBWC4,0902,0.332,0.194,0.481,0.891,12,0
-5KQ66BBWC4,0903,0.332,0.194,0.481,0.891,12,0
-5KQ66BBWC4,0903,0.332,0.194,0.481,0.891,74,0
"""

LABEL_MAP_60 = """\
item {
  name: "bend/bow (at the waist)"
  id: 1
}
item {
  name: "crouch/kneel"
  id: 3
}
"""

LABEL_MAP_80 = """\
label {
  name: "bend/bow (at the waist)"
  label_id: 1
  label_type: PERSON_MOVEMENT
}
label {
  name: "crawl"
  label_id: 2
  label_type: PERSON_MOVEMENT
}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_annotations_grouped_and_multi_hot(tmp_path: Path) -> None:
    ann = read_annotations(_write(tmp_path / "ava_val_v2.2.csv", ANNOTATIONS))
    assert list(ann) == [("-5KQ66BBWC4", 902), ("-5KQ66BBWC4", 903)]
    first = ann[("-5KQ66BBWC4", 902)]
    assert first.boxes.dtype == np.float32 and first.boxes.shape == (2, 4)
    np.testing.assert_allclose(first.boxes[0], [0.077, 0.151, 0.283, 0.811], rtol=1e-6)
    assert first.labels.shape == (2, 80)
    assert np.flatnonzero(first.labels[0]).tolist() == [8, 79]  # actions 9 and 80
    assert np.flatnonzero(first.labels[1]).tolist() == [11]
    assert first.person_ids.tolist() == [1, 0]
    second = ann[("-5KQ66BBWC4", 903)]
    assert second.boxes.shape == (1, 4) and np.flatnonzero(second.labels[0]).tolist() == [11, 73]


@pytest.mark.parametrize(
    "bad",
    [
        "-5KQ66BBWC4,0902,0.077,0.151,0.283,0.811,81,1",  # action id out of range
        "-5KQ66BBWC4,0902,0.077,0.151,1.283,0.811,80,1",  # not normalised
        "-5KQ66BBWC4,09x2,0.077,0.151,0.283,0.811,80,1",  # not a number
        "-5KQ66BBWC4,0902,0.077,0.151,0.283",  # too few fields
    ],
)
def test_annotation_errors_name_file_and_line(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path / "ava_train_v2.2.csv", ANNOTATIONS + bad + "\n")
    with pytest.raises(ValueError, match=r"ava_train_v2\.2\.csv:6"):
        read_annotations(path)


def test_missing_files_are_named(tmp_path: Path) -> None:
    for reader in (read_annotations, read_label_map, read_excluded, read_proposals):
        with pytest.raises(FileNotFoundError, match="nope.x"):
            reader(tmp_path / "nope.x")


def test_label_maps(tmp_path: Path) -> None:
    assert read_label_map(_write(tmp_path / "a.pbtxt", LABEL_MAP_60)) == {
        1: "bend/bow (at the waist)",
        3: "crouch/kneel",
    }
    assert read_label_map(_write(tmp_path / "b.pbtxt", LABEL_MAP_80)) == {1: "bend/bow (at the waist)", 2: "crawl"}
    one_line = 'item { name: "stand" id: 12 }\nitem { name: "walk" id: 14 }\n'
    assert read_label_map(_write(tmp_path / "c.pbtxt", one_line)) == {12: "stand", 14: "walk"}
    with pytest.raises(ValueError, match=r"d\.pbtxt:9"):
        read_label_map(_write(tmp_path / "d.pbtxt", LABEL_MAP_60 + 'item {\n  name: "x"\n}\n'))
    with pytest.raises(ValueError, match=r"e\.pbtxt:3"):
        read_label_map(_write(tmp_path / "e.pbtxt", 'item {\n  name: "x"\n  id: 1 junk {\n}\n'))


def test_excluded(tmp_path: Path) -> None:
    path = _write(tmp_path / "ex.csv", "-5KQ66BBWC4,0902\n-5KQ66BBWC4,1798\n")
    assert read_excluded(path) == {("-5KQ66BBWC4", 902), ("-5KQ66BBWC4", 1798)}
    with pytest.raises(ValueError, match=r"ex2\.csv:2"):
        read_excluded(_write(tmp_path / "ex2.csv", "a,0902\nb\n"))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_proposals_filtered_by_score(tmp_path: Path, protocol: int) -> None:
    data = {
        "-5KQ66BBWC4,0902": np.array([[0.1, 0.1, 0.5, 0.9, 0.95], [0.2, 0.2, 0.3, 0.3, 0.4]]),
        "-5KQ66BBWC4,0903": np.zeros((0, 5)),
    }
    path = tmp_path / "props.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    props = read_proposals(path)
    assert props[("-5KQ66BBWC4", 902)].shape == (1, 5) and props[("-5KQ66BBWC4", 902)].dtype == np.float32
    assert props[("-5KQ66BBWC4", 903)].shape == (0, 5)
    assert read_proposals(path, score_threshold=0.3)[("-5KQ66BBWC4", 902)].shape == (2, 5)


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def test_hostile_pickle_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"a,0902": _Hostile(marker)}))
    with pytest.raises(ValueError, match=r"evil\.pkl.*refused pickle global (posix|nt|os)\.system"):
        read_proposals(path)
    assert not marker.exists()
    bad_shape = tmp_path / "shape.pkl"
    bad_shape.write_bytes(pickle.dumps({"v,0902": np.zeros((2, 4))}))
    with pytest.raises(ValueError, match=r"shape\.pkl.*v,0902"):
        read_proposals(bad_shape)


def test_clip_frame_paths_convention(tmp_path: Path) -> None:
    folder = tmp_path / "vid"
    folder.mkdir()
    n = 3 * 30  # seconds 900..903 (exclusive)
    for k in range(1, n + 1):
        Image.new("RGB", (2, 2)).save(folder / f"vid_{k:06d}.jpg")
    assert keyframe_index(902) == 60  # file vid_000061.jpg
    paths = clip_frame_paths(tmp_path, "vid", 902)
    assert len(paths) == 16
    assert paths[8].name == "vid_000061.jpg"  # keyframe is clip frame num_frames // 2
    assert paths[0].name == "vid_000029.jpg"  # index 60 - 32 = 28
    assert paths[-1].name == "vid_000089.jpg"  # index 60 + 28 = 88
    end = clip_frame_paths(tmp_path, "vid", 903)  # index 90 is past the last frame (89): clamped
    assert end[8].name == "vid_000090.jpg" and end[-1].name == "vid_000090.jpg" and end[0].name == "vid_000059.jpg"
    start = clip_frame_paths(tmp_path, "vid", 900)
    assert start[0].name == "vid_000001.jpg" and start[8].name == "vid_000001.jpg"
    with pytest.raises(FileNotFoundError, match="missing"):
        clip_frame_paths(tmp_path, "missing", 902)
    (folder / "vid_000061.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="vid_000061.jpg"):
        clip_frame_paths(tmp_path, "vid", 902, total=n)

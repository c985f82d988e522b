"""The synthetic AVA (smile.data.ava.synthetic) read back with the published-format readers."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from smile.data.ava import (
    clip_frame_paths,
    count_frames,
    read_annotations,
    read_excluded,
    read_label_map,
    read_proposals,
    write_synthetic_ava,
)
from smile.data.ava.synthetic import ACTION_NAMES, FLASH_ID, MOTIONS, TRAVEL, motion_offset


def test_synthetic_ava_reads_back(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    ava = write_synthetic_ava(tmp_path, num_videos=3, seconds=5, seed=1)
    assert time.perf_counter() - t0 < 3.0
    assert ava.train_videos == ("synth000000", "synth000001") and ava.val_videos == ("synth000002",)
    assert read_label_map(ava.label_map) == ACTION_NAMES
    assert read_excluded(ava.excluded_csv) == {ava.excluded}
    train, val = read_annotations(ava.train_csv), read_annotations(ava.val_csv)
    # keyframes 902, 903, 904 per video, one excluded
    assert sorted(train) == [(v, s) for v in ava.train_videos for s in (902, 903, 904) if (v, s) != ava.excluded]
    assert sorted(val) == [("synth000002", s) for s in (902, 903, 904)]
    assert ava.excluded not in train
    for kf in [*train.values(), *val.values()]:
        assert kf.boxes.shape == (4, 4) and sorted(kf.person_ids.tolist()) == [0, 1, 2, 3]
        motion = kf.labels[:, [a - 1 for a in MOTIONS.values()]]
        assert (motion.sum(1) == 1).all()  # exactly one motion action per person
        assert kf.labels[:, FLASH_ID - 1].sum() >= 1  # multi-label: someone also flashes
        assert set(np.flatnonzero(kf.labels.sum(0)) + 1) <= set(ACTION_NAMES)
    for video in (*ava.train_videos, *ava.val_videos):
        assert count_frames(ava.frames, video) == 5 * 30
        ann = train if video in ava.train_videos else val
        seconds = sorted(s for v, s in ann if v == video)
        first, last = ann[(video, seconds[0])], ann[(video, seconds[-1])]
        for p in range(4):
            a, b = first.boxes[first.person_ids == p][0], last.boxes[last.person_ids == p][0]
            action = int(np.flatnonzero(first.labels[first.person_ids == p][0][[a - 1 for a in MOTIONS.values()]])[0])
            name = list(MOTIONS)[action]
            # the sawtooth puts a person at the same place on every keyframe (up to the boundary clip) ...
            assert np.abs(a - b).max() < 2 / 48, (video, p, name)
            # ... and moves it through the keyframe: the motion of a clip centred on one
            offset = motion_offset(name, np.array([30 - 12, 30 + 12]))
            dx, dy = offset[1] - offset[0]
            expected = {"up": (0, -1), "down": (0, 1), "still": (0, 0), "sideways": (1, 0)}[name]
            assert (np.sign(dx), np.sign(dy)) == expected, (video, p, name, dx, dy)
            np.testing.assert_allclose(offset[1] - offset[0], np.array(TRAVEL[name]) * 24 / 29)  # px over 24 frames
    for split, ann in (("train", ava.train_proposals), ("val", ava.val_proposals)):
        props, gt = read_proposals(ann), train if split == "train" else val
        assert set(props) == set(gt)
        for key, dets in props.items():
            assert dets.shape == (4, 5) and (dets[:, 4] >= 0.8).all()  # the low-score false positive is gone
            assert np.abs(dets[:, :4] - gt[key].boxes).max() < 0.06
        assert all(v.shape == (5, 5) for v in read_proposals(ann, score_threshold=0.0).values())
    paths = clip_frame_paths(ava.frames, "synth000002", 902)
    assert len(paths) == 16 and paths[8].name == "synth000002_000061.jpg"
    assert Image.open(paths[8]).size == (64, 48)

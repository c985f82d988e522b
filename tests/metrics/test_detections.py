"""AVA detection rows, de-duplication, gathering and the CSV: exact values and an exact mAP round trip."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from smile.metrics.ava import evaluate_ava
from smile.metrics.detections import (
    KeyframeDetections,
    dedupe_keyframes,
    detection_rows,
    gather_detections,
    write_detections_csv,
)

LABELMAP = {1: "bend/bow", 3: "crouch", 80: "watch"}


def test_rows_box_by_box_classes_ascending():
    boxes = np.array([[0.077, 0.151, 0.283, 0.811], [0.5, 0.25, 0.75, 1.0]], dtype=np.float32)
    scores = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], dtype=np.float32)
    rows = detection_rows(["vid_a", "vid_b"], [902, 903], boxes, scores)
    assert rows == [
        ("vid_a", 902, 0.077, 0.151, 0.283, 0.811, 1, 0.1),
        ("vid_a", 902, 0.077, 0.151, 0.283, 0.811, 2, 0.2),
        ("vid_a", 902, 0.077, 0.151, 0.283, 0.811, 3, 0.3),
        ("vid_b", 903, 0.5, 0.25, 0.75, 1.0, 1, 0.4),
        ("vid_b", 903, 0.5, 0.25, 0.75, 1.0, 2, 0.5),
        ("vid_b", 903, 0.5, 0.25, 0.75, 1.0, 3, 0.6),
    ]
    assert detection_rows(["vid_a", "vid_b"], [902, 903], boxes, scores, class_ids=[3, 1], min_score=0.25) == [
        ("vid_a", 902, 0.077, 0.151, 0.283, 0.811, 3, 0.3),
        ("vid_b", 903, 0.5, 0.25, 0.75, 1.0, 1, 0.4),
        ("vid_b", 903, 0.5, 0.25, 0.75, 1.0, 3, 0.6),
    ]
    with pytest.raises(ValueError, match=r"class ids \[4\] outside the score columns 1\.\.3"):
        detection_rows(["vid_a", "vid_b"], [902, 903], boxes, scores, class_ids=[4])


def _random_detections(seed: int, keyframes: int = 6, per_frame: int = 3, classes: int = 80):
    """Boxes near a few ground-truth boxes, quantised scores (many ties), rows + ground truth."""
    rng = np.random.default_rng(seed)
    vids = np.repeat([f"v{k % 2}" for k in range(keyframes)], per_frame)
    stamps = np.repeat([902 + k // 2 for k in range(keyframes)], per_frame)
    centre = rng.uniform(0.2, 0.6, size=(keyframes * per_frame, 2))
    boxes = np.concatenate([centre, centre + rng.uniform(0.1, 0.3, size=centre.shape)], 1).astype(np.float32)
    scores = (rng.integers(0, 8, size=(len(boxes), classes)) / 8).astype(np.float32)  # ties on purpose
    gt = []
    for i in range(0, len(boxes), 2):  # every other box is a person with two actions of the label map
        jitter = boxes[i] + rng.uniform(-0.03, 0.03, 4).astype(np.float32)
        for action in rng.choice(list(LABELMAP), size=2, replace=False):
            gt.append((vids[i], int(stamps[i]), *map(float, np.round(jitter, 3)), int(action)))
    return vids, stamps, boxes, scores, gt


def test_top_per_keyframe_is_the_evaluators_cut():
    vids, stamps, boxes, scores, gt = _random_detections(0)
    every = detection_rows(vids, stamps, boxes, scores, class_ids=LABELMAP)
    for n in (1, 2, 5):
        top = detection_rows(vids, stamps, boxes, scores, class_ids=LABELMAP, max_per_keyframe=n)
        per_frame = {(v, t) for v, t in zip(vids.tolist(), stamps.tolist(), strict=True)}
        assert len(top) == n * len(per_frame)
        assert set(top) <= set(every)
        cut = evaluate_ava(LABELMAP, gt, every, max_detections_per_image=n)
        assert evaluate_ava(LABELMAP, gt, top, max_detections_per_image=0) == cut


def test_from_batch_numbers_items_and_dedupe_keeps_the_first():
    scores = torch.arange(4 * 2, dtype=torch.float32).reshape(4, 2) / 10
    norm = [
        torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.6]]),
        torch.zeros(0, 4),
        torch.tensor([[0.0, 0, 1, 1]]),
    ]
    part = KeyframeDetections.from_batch(["a", "b", "c"], torch.tensor([902, 903, 904]), norm, scores[:3], first_item=5)
    assert part.video_ids.tolist() == ["a", "a", "c"] and part.timestamps.tolist() == [902, 902, 904]
    assert part.items.tolist() == [5, 5, 7] and part.boxes[0].tolist() == [0.1, 0.2, 0.3, 0.4]
    padded = KeyframeDetections.from_batch(["a"], [902], [torch.tensor([[0.1, 0.2, 0.3, 0.4]])], scores[3:], 8)
    both = KeyframeDetections.concat([part, padded], num_classes=2)
    assert len(both) == 4
    kept = dedupe_keyframes(both)
    assert kept.items.tolist() == [5, 5, 7]  # keyframe (a, 902) of item 8 repeats item 5: dropped
    assert kept.scores.tolist() == part.scores.tolist()
    nobody = KeyframeDetections.from_batch(["d", "e"], [905, 906], [torch.zeros(0, 4)] * 2, torch.zeros(0, 2), 9)
    assert len(nobody) == 0 and nobody.scores.shape == (0, 2)
    assert len(KeyframeDetections.concat([part, nobody], num_classes=2)) == 3
    with pytest.raises(ValueError, match="3 box tensors with 3 boxes, 2 score rows"):
        KeyframeDetections.from_batch(["a", "b", "c"], [1, 2, 3], norm, scores[:2])


def test_csv_round_trip_gives_the_same_rows_and_map(tmp_path):
    vids, stamps, boxes, scores, gt = _random_detections(1)
    rows = detection_rows(vids, stamps, boxes, scores, class_ids=LABELMAP)
    path = write_detections_csv(tmp_path / "out" / "detections.csv", rows)
    lines = path.read_text().splitlines()
    assert len(lines) == len(rows) == 18 * 3
    video, stamp, *rest = lines[0].split(",")
    assert (video, stamp) == ("v0", "0902") and len(rest) == 6
    gt_path = tmp_path / "gt.csv"
    gt_path.write_text("".join(f"{v},{t:04d},{x1},{y1},{x2},{y2},{a},7\n" for v, t, x1, y1, x2, y2, a in gt))
    in_memory = evaluate_ava(LABELMAP, gt, rows)
    from_files = evaluate_ava(LABELMAP, gt_path, path)
    assert from_files == in_memory and 0 < in_memory["mAP"] < 1
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left


def test_three_decimals_would_change_the_map_full_precision_does_not(tmp_path):
    """IoU 0.4976 (false positive) becomes exactly 0.5 (true positive) once y2 is rounded to 3 decimals."""
    gt = [("v", 902, 0.1, 0.1, 0.3, 0.3, 1)]
    rows = detection_rows(["v"], [902], np.array([[0.1, 0.1, 0.3, 0.19951]]), np.array([[0.9]]), class_ids=[1])
    exact = evaluate_ava({1: "a"}, gt, write_detections_csv(tmp_path / "d.csv", rows))
    rounded = evaluate_ava({1: "a"}, gt, [(*r[:5], round(r[5], 3), *r[6:]) for r in rows])
    assert exact == evaluate_ava({1: "a"}, gt, rows) and exact["mAP"] == 0.0 and rounded["mAP"] == 1.0


def test_failed_write_keeps_the_old_file(tmp_path):
    path = write_detections_csv(tmp_path / "d.csv", [("v", 902, 0.0, 0.0, 1.0, 1.0, 1, 0.5)])
    old = path.read_text()
    assert old == "v,0902,0.0,0.0,1.0,1.0,1,0.5\n"

    def broken():
        yield ("v", 903, 0.0, 0.0, 1.0, 1.0, 1, 0.5)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        write_detections_csv(path, broken())
    assert path.read_text() == old and [p.name for p in tmp_path.iterdir()] == ["d.csv"]


def _gather_in_rank(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        # rank 0 scores keyframes 902, 903; rank 1 scores 904 and, as the sampler's padding, 902 again
        stamps = [[902, 903], [904, 902]][rank]
        norm = [torch.tensor([[0.1, 0.1, 0.5, 0.5]]), torch.tensor([[0.2, 0.2, 0.6, 0.6], [0.0, 0.0, 1.0, 1.0]])]
        scores = torch.full((3, 2), float(rank))
        part = KeyframeDetections.from_batch(["v", "v"], stamps, norm, scores)
        gathered = dedupe_keyframes(gather_detections(part))
        Path(out_dir, f"{rank}.pkl").write_bytes(pickle.dumps(gathered))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_gather_over_two_ranks_counts_a_padded_keyframe_once(tmp_path):
    args = (str(tmp_path / "init"), str(tmp_path))
    torch.multiprocessing.start_processes(_gather_in_rank, args=args, nprocs=2, join=True, start_method="fork")
    results = [pickle.loads((tmp_path / f"{r}.pkl").read_bytes()) for r in (0, 1)]
    for res in results:
        assert res.timestamps.tolist() == [902, 903, 903, 904]
        assert res.items.tolist() == [0, 1, 1, 2]  # rank 1's items come after rank 0's
        assert res.scores[:, 0].tolist() == [0.0, 0.0, 0.0, 1.0]  # 902 from rank 0, its repeat on rank 1 dropped
    assert gather_detections(results[0]) is results[0]  # one process: a no-op

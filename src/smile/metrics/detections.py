"""AVA detections: per-box score arrays, their rows in the official CSV layout, de-duplication and gathering.

A detector scores every person box for every class; the official ActivityNet evaluator reads one CSV row
per (box, class): ``video_id, timestamp, x1, y1, x2, y2, action_id, score`` with the box normalised to the
original frame. Keeping ``[K, C]`` arrays until the end of an epoch (:class:`KeyframeDetections`) instead
of ``K x C`` Python rows keeps the accumulation compact; :func:`detection_rows` expands them once.

Numbers. Coordinates and scores reach the rows as the shortest decimal of their float32 value
(``float32(0.077)`` becomes ``0.077``, not ``0.07699999958``) and the CSV writes every float with
``repr``, which reads back to the identical double. So the mAP of :func:`~smile.metrics.ava.evaluate_ava`
on the written file equals the in-memory one exactly, and a box copied from the ground truth has IoU 1.
The published tools round to 3 decimals (boxes) and 4 (scores); that rounding can move an IoU across
0.5 or merge score ties, so it is not used here.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

DetectionRow = tuple[str, int, float, float, float, float, int, float]  # the official column order


def shortest_decimal(values: np.ndarray | torch.Tensor) -> np.ndarray:
    """float64 copies of float32 values rounded to their shortest round-trip decimal (``0.077``, not ``0.0769…``)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float32).astype(str).astype(np.float64)


@dataclass
class KeyframeDetections:
    """Per-box detections of one rank (or, after :func:`gather_detections`, of all ranks).

    Attributes:
        video_ids: ``[K]`` str, the keyframe's video of each box.
        timestamps: ``[K]`` int64 keyframe seconds.
        items: ``[K]`` int64 index of the clip (dataset item) each box came from; a keyframe seen twice
            (the padding of a distributed sampler) has two items.
        boxes: ``[K, 4]`` float64 ``x1, y1, x2, y2`` normalised to the original frame.
        scores: ``[K, C]`` float32 per-class scores, column ``c`` = action id ``c + 1``.
    """

    video_ids: np.ndarray
    timestamps: np.ndarray
    items: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamps)

    @classmethod
    def empty(cls, num_classes: int) -> KeyframeDetections:
        """No box, ``num_classes`` score columns."""
        return cls(
            np.zeros(0, dtype=str),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, 4), dtype=np.float64),
            np.zeros((0, num_classes), dtype=np.float32),
        )

    @classmethod
    def from_batch(
        cls,
        video_ids: Sequence[str],
        timestamps: Sequence[int] | torch.Tensor,
        norm_boxes: Sequence[torch.Tensor],
        scores: torch.Tensor,
        first_item: int = 0,
    ) -> KeyframeDetections:
        """One batch's detections (the batch contract: ``B`` clips, ``norm_boxes`` a list of ``[K_i, 4]``).

        Args:
            video_ids: ``B`` video ids.
            timestamps: ``B`` keyframe seconds.
            norm_boxes: ``B`` tensors ``[K_i, 4]`` normalised boxes, as in the files.
            scores: ``[sum K_i, C]`` scores, boxes of clip 0 first.
            first_item: Item number of clip 0 (clips are numbered in the order a rank sees them).
        """
        counts = np.array([len(b) for b in norm_boxes], dtype=np.int64)  # [B]
        if (
            scores.ndim != 2
            or len(video_ids) != len(counts)
            or len(timestamps) != len(counts)
            or int(counts.sum()) != len(scores)
        ):
            raise ValueError(
                f"batch mismatch: {len(video_ids)} video ids, {len(timestamps)} timestamps, {len(counts)} box "
                f"tensors with {int(counts.sum())} boxes, {len(scores)} score rows"
            )
        stamps = timestamps.tolist() if isinstance(timestamps, torch.Tensor) else list(timestamps)
        boxes = torch.cat([b.detach().reshape(-1, 4).float().cpu() for b in norm_boxes]) if len(counts) else None
        return cls(
            np.repeat(np.array([str(v) for v in video_ids], dtype=str), counts),
            np.repeat(np.array(stamps, dtype=np.int64), counts),
            np.repeat(np.arange(first_item, first_item + len(counts), dtype=np.int64), counts),
            shortest_decimal(boxes) if boxes is not None else np.zeros((0, 4)),
            scores.detach().float().cpu().numpy(),  # [K, C]
        )

    @classmethod
    def concat(cls, parts: Sequence[KeyframeDetections], num_classes: int) -> KeyframeDetections:
        """The parts one after the other (item numbers kept); ``num_classes`` sizes an empty result."""
        if not parts:
            return cls.empty(num_classes)
        return cls(
            np.concatenate([p.video_ids.astype(str) for p in parts]),
            np.concatenate([p.timestamps for p in parts]),
            np.concatenate([p.items for p in parts]),
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
        )

    def select(self, keep: np.ndarray) -> KeyframeDetections:
        """The boxes where ``keep`` (bool ``[K]``) is True."""
        return KeyframeDetections(
            self.video_ids[keep], self.timestamps[keep], self.items[keep], self.boxes[keep], self.scores[keep]
        )


def dedupe_keyframes(dets: KeyframeDetections) -> KeyframeDetections:
    """Keep each (video, timestamp) once: the boxes of the first item that showed it.

    ``DistributedSampler`` pads the last round by repeating items, so a keyframe can be scored twice;
    counted twice, its boxes would be duplicate detections (false positives) in the mAP.
    """
    owner: dict[tuple[str, int], int] = {}
    keep = np.zeros(len(dets), dtype=bool)
    for i, (video, stamp, item) in enumerate(
        zip(dets.video_ids.tolist(), dets.timestamps.tolist(), dets.items, strict=True)
    ):
        keep[i] = owner.setdefault((video, stamp), int(item)) == item
    return dets.select(keep)


def gather_detections(dets: KeyframeDetections) -> KeyframeDetections:
    """Every rank's detections on every rank, rank 0 first (a no-op in one process).

    Item numbers are offset per rank so they stay distinct; :func:`dedupe_keyframes` then keeps the
    first rank's copy of a padded keyframe.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return dets
    shards: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, dets)
    offset, parts = 0, []
    for shard in shards:
        parts.append(
            KeyframeDetections(shard.video_ids, shard.timestamps, shard.items + offset, shard.boxes, shard.scores)
        )
        offset += int(shard.items.max()) + 1 if len(shard) else 0
    return KeyframeDetections.concat(parts, dets.scores.shape[1])


def _keyframe_ids(video_ids: Sequence[str] | np.ndarray, timestamps: Sequence[int] | np.ndarray) -> np.ndarray:
    """``[K]`` int64 number of each box's (video, timestamp), in order of first appearance."""
    index: dict[tuple[str, int], int] = {}
    keys = zip(np.asarray(video_ids, dtype=str).tolist(), np.asarray(timestamps, dtype=np.int64).tolist(), strict=True)
    return np.array([index.setdefault(key, len(index)) for key in keys], dtype=np.int64)


def _top_per_keyframe(keys: np.ndarray, action: np.ndarray, boxes: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """Bool mask of the ``n`` best rows of every keyframe, in the evaluator's order.

    :func:`~smile.metrics.ava.evaluate_ava` keeps per image the largest ``(score, action id, y1, x1, y2,
    x2)`` tuples, so pre-filtering with the same order changes no mAP for ``n >= 50``.
    """
    x1, y1, x2, y2 = boxes.T
    order = np.lexsort((-x2, -y2, -x1, -y1, -action, -score, keys))
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])  # first row of each keyframe
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = np.zeros(len(order), dtype=bool)
    keep[order[rank < n]] = True
    return keep


def detection_rows(
    video_ids: Sequence[str] | np.ndarray,
    timestamps: Sequence[int] | np.ndarray,
    norm_boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: Iterable[int] | None = None,
    min_score: float = 0.0,
    max_per_keyframe: int = 0,
) -> list[DetectionRow]:
    """Rows ``(video_id, timestamp, x1, y1, x2, y2, action_id, score)``, box by box, classes ascending.

    Args:
        video_ids: ``[K]`` video id of each box.
        timestamps: ``[K]`` keyframe second of each box.
        norm_boxes: ``[K, 4]`` normalised ``x1, y1, x2, y2`` (float32 values are rounded to their shortest
            decimal, see the module docstring).
        scores: ``[K, C]`` scores, column ``c`` = action id ``c + 1``.
        class_ids: Action ids to write (e.g. the label map's 60); None = all ``C``.
        min_score: Rows with a lower score are left out.
        max_per_keyframe: Keep only the best this many rows of each keyframe (0 = all); the official
            evaluator reads the best 50 of the label map's classes, so 50 or more with ``class_ids`` = the
            label map's leaves its mAP unchanged.

    Returns:
        One row per kept (box, class), floats as Python floats.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or len(norm_boxes) != len(scores) or len(video_ids) != len(scores):
        raise ValueError(
            f"detection_rows needs [K, C] scores with K boxes and ids: got scores {scores.shape}, "
            f"{len(norm_boxes)} boxes, {len(video_ids)} video ids"
        )
    num_boxes, num_classes = scores.shape
    ids = np.arange(1, num_classes + 1) if class_ids is None else np.array(sorted(set(class_ids)), dtype=np.int64)
    if len(ids) and (ids.min() < 1 or ids.max() > num_classes):
        raise ValueError(f"class ids {ids.tolist()} outside the score columns 1..{num_classes}")
    boxes = np.asarray(norm_boxes).reshape(-1, 4)
    boxes = shortest_decimal(boxes) if boxes.dtype == np.float32 else boxes.astype(np.float64)  # [K, 4]
    box_of_row = np.repeat(np.arange(num_boxes), len(ids))  # [R], R = K x len(ids)
    action = np.tile(ids, num_boxes)  # [R]
    score = shortest_decimal(scores[:, ids - 1]).reshape(-1)  # [R]
    keep = score >= min_score
    box_of_row, action, score = box_of_row[keep], action[keep], score[keep]
    if max_per_keyframe > 0 and len(score):
        keyframe = _keyframe_ids(video_ids, timestamps)[box_of_row]  # [R]
        top = _top_per_keyframe(keyframe, action, boxes[box_of_row], score, max_per_keyframe)
        box_of_row, action, score = box_of_row[top], action[top], score[top]
    vids = np.asarray(video_ids, dtype=str)[box_of_row].tolist()
    stamps = np.asarray(timestamps, dtype=np.int64)[box_of_row].tolist()
    x1, y1, x2, y2 = (boxes[box_of_row, j].tolist() for j in range(4))
    return list(zip(vids, stamps, x1, y1, x2, y2, action.tolist(), score.tolist(), strict=True))


def write_detections_csv(path: str | os.PathLike[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write rows in the official AVA layout, atomically (a temporary file in the folder, then ``os.replace``).

    One line per row: ``video_id,timestamp(4 digits),x1,y1,x2,y2,action_id,score`` with every float
    written by ``repr`` (exact round trip; see the module docstring), no header, as the official
    evaluator reads it. Returns the path.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            for video, stamp, x1, y1, x2, y2, action, score in rows:
                coords = ",".join(repr(float(v)) for v in (x1, y1, x2, y2))
                f.write(f"{video},{int(stamp):04d},{coords},{int(action)},{float(score)!r}\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out

"""Frame-mAP for AVA action detection, as the official ActivityNet AVA evaluator computes it.

The official tool (ActivityNet ``Evaluation/get_ava_performance.py``) feeds the Pascal VOC
``ObjectDetectionEvaluator`` of the TensorFlow object detection API; this module reproduces it in numpy:
only label-map classes are read (the 60 of ``ava_action_list_v2.2_for_activitynet_2019.pbtxt``); rows are
grouped per image key (video id, keyframe second) and excluded keys are dropped from ground truth and
detections; per image the :data:`MAX_DETECTIONS_PER_IMAGE` (50, the official ``read_csv(..., 50)``)
best detections over all classes are kept; per image and class, detections in descending score each take
the ground-truth box of highest IoU (``[y1, x1, y2, x2]``, area without ``+1``) and are true positives when
that IoU is ``>= 0.5`` and the box is not yet taken, else false positives (no fall-back to another box;
no ground truth -> false positive); per class, flags over all images are ranked by descending score and
AP is the VOC 2010+ area under the precision-recall curve with precision made monotone from the right
(TF's ``compute_average_precision``). A class with ground truth but no detection has AP 0; one without
ground truth has AP NaN and is left out of the mean.

Ties. The official tool orders tied scores by input order (a heap, then ``np.argsort``), so its AP can
depend on row order. Here every ordering is broken by row content, so any permutation of the rows gives
the same result: the per-image top-50 keeps the larger ``(score, action id, y1, x1, y2, x2)`` tuples;
within an image and class, detections are matched in ``(-score, y1, x1, y2, x2)`` order and an IoU tie
between ground-truth boxes goes to the first in ``(y1, x1, y2, x2)`` order; over images a class's
detections are ranked by ``(-score, video id, timestamp, y1, x1, y2, x2)``.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

MAX_DETECTIONS_PER_IMAGE = 50
IOU_THRESHOLD = 0.5

PathLike = Union[str, "os.PathLike[str]"]
Rows = Iterable[Sequence[Any]]
ImageKey = tuple[str, int]
Box = tuple[float, float, float, float]  # y1, x1, y2, x2 as the TF API stores them

_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|[{}]|[A-Za-z_]\w*\s*:|[A-Za-z_]\w*|-?\d+|.')


def read_labelmap(source: PathLike | Mapping[int, str]) -> dict[int, str]:
    """Read an AVA label map (``item { name: "..." id: N }``, multi-line or on one line).

    Args:
        source: Path of a ``.pbtxt`` file, or a ready ``{id: name}`` mapping.

    Returns:
        ``{class id: class name}`` in file order.

    Raises:
        ValueError: On anything that is not a well-formed item, naming the file and line.
    """
    name = "<labelmap>" if isinstance(source, Mapping) else str(source)
    out: dict[int, str] = {int(k): str(v) for k, v in source.items()} if isinstance(source, Mapping) else {}
    text = "" if isinstance(source, Mapping) else Path(source).read_text(encoding="utf-8")
    item: dict[str, Any] = {}  # the open item; empty between items
    expect: str | None = None  # field whose value comes next
    line = 1
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        where = f"{name}:{line}"
        line += tok.count("\n")
        if tok.isspace() or tok.startswith("#"):
            continue
        if expect is not None:
            if expect == "name" and tok.startswith('"'):
                item["name"] = tok[1:-1].replace('\\"', '"')
            elif expect == "id" and re.fullmatch(r"-?\d+", tok):
                item["id"] = int(tok)
            else:
                raise ValueError(f"{where}: bad value {tok!r} for {expect!r}")
            expect = None
        elif not item:
            if tok != "item":
                raise ValueError(f"{where}: expected 'item {{', got {tok!r}")
            item = {"open": False}
        elif not item["open"]:
            if tok != "{":
                raise ValueError(f"{where}: expected '{{' after 'item', got {tok!r}")
            item["open"] = True
        elif tok == "}":
            if "name" not in item or "id" not in item or item["id"] in out:
                raise ValueError(f"{where}: item without name or id, or with a duplicate id")
            out[item["id"]] = item["name"]
            item = {}
        elif tok.endswith(":") and tok[:-1].strip() in ("name", "id", "label_id", "display_name"):
            expect = {"display_name": "name", "label_id": "id"}.get(tok[:-1].strip(), tok[:-1].strip())
        else:
            raise ValueError(f"{where}: unexpected {tok!r} in item")
    if item or expect is not None:
        raise ValueError(f"{name}:{line}: unterminated item")
    if not out or len(set(out.values())) != len(out):
        raise ValueError(f"{name}: label map has no items or duplicate class names")
    return out


def _rows(source: PathLike | Rows, default: str) -> Iterable[tuple[str, int, Sequence[Any]]]:
    """Yield (source name, line number, row), skipping blank lines."""
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        with open(source, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            for row in reader:
                if any(c.strip() for c in row):
                    yield name, reader.line_num, row
    else:
        for i, item in enumerate(source, start=1):
            yield default, i, item


def _as_int(value: Any) -> int:
    if isinstance(value, (bool, float)):
        raise ValueError
    return int(value.strip()) if isinstance(value, str) else int(value)


def _as_float(value: Any) -> float:
    out = float(value.strip()) if isinstance(value, str) else float(value)
    if isinstance(value, bool) or not math.isfinite(out):
        raise ValueError
    return out


def read_boxes(
    source: PathLike | Rows, *, detections: bool, class_ids: Iterable[int] | None = None
) -> list[tuple[ImageKey, Box, int, float]]:
    """Read AVA CSV rows: ``video_id, timestamp, x1, y1, x2, y2 (normalised), action_id, [person_id | score]``.

    Args:
        source: CSV path or in-memory rows (strings or numbers).
        detections: Whether rows are detections (8 columns, score last) or ground truth (7 or 8).
        class_ids: If given, rows of other action ids are skipped (after validation).

    Returns:
        ``(image key, (y1, x1, y2, x2), action id, score)`` per row (score 1.0 for ground truth).

    Raises:
        ValueError: On a malformed row, naming the file and line.
    """
    keep = None if class_ids is None else set(class_ids)
    kind = "detections" if detections else "groundtruth"
    widths = (8,) if detections else (7, 8)
    out = []
    for name, line, row in _rows(source, f"<{kind}>"):
        if len(row) not in widths:
            raise ValueError(f"{name}:{line}: {kind} rows need {' or '.join(map(str, widths))} columns, got {len(row)}")
        try:
            video = str(row[0]).strip()
            stamp = _as_int(row[1])
            x1, y1, x2, y2 = (_as_float(v) for v in row[2:6])
            action = _as_int(row[6])
            score = _as_float(row[7]) if detections else 1.0
            if not detections and len(row) == 8:
                _as_int(row[7])  # person id
        except (TypeError, ValueError):
            raise ValueError(f"{name}:{line}: malformed {kind} row {list(row)!r}") from None
        if not video or x2 < x1 or y2 < y1:
            raise ValueError(f"{name}:{line}: empty video id or inverted box in {list(row)!r}")
        if keep is None or action in keep:
            out.append(((video, stamp), (y1, x1, y2, x2), action, score))
    return out


def read_exclusions(source: PathLike | Rows | None) -> set[ImageKey]:
    """Read the excluded timestamps (``video_id, timestamp`` per row).

    Args:
        source: CSV path, in-memory rows, or None for no exclusions.

    Returns:
        The excluded ``(video id, timestamp)`` keys.

    Raises:
        ValueError: On a malformed row, naming the file and line.
    """
    out: set[ImageKey] = set()
    if source is None:
        return out
    for name, line, row in _rows(source, "<exclusions>"):
        try:
            if len(row) != 2 or not str(row[0]).strip():
                raise ValueError
            out.add((str(row[0]).strip(), _as_int(row[1])))
        except (TypeError, ValueError):
            raise ValueError(f"{name}:{line}: exclusion rows are 'video_id,timestamp', got {list(row)!r}") from None
    return out


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[N, M]`` IoU of boxes ``[y1, x1, y2, x2]`` as TF's ``np_box_ops.iou`` (no ``+1``; 0 if the union is empty).

    Args:
        a: ``[N, 4]`` boxes.
        b: ``[M, 4]`` boxes.
    """
    ih = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iw = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ih * iw
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(scores_tp: list[tuple[tuple[Any, ...], bool]], num_gt: int) -> float:
    """VOC AP (TF API ``compute_precision_recall`` + ``compute_average_precision``).

    Args:
        scores_tp: ``(sort key, is true positive)`` per detection; ascending key = descending score.
        num_gt: Number of ground-truth boxes of the class.

    Returns:
        AP; NaN when ``num_gt`` is 0, 0.0 when there is no detection.
    """
    if num_gt == 0:
        return float("nan")
    if not scores_tp:
        return 0.0
    cum_tp = np.cumsum([flag for _, flag in sorted(scores_tp, key=lambda t: t[0])], dtype=float)
    precision = np.concatenate([[0.0], cum_tp / np.arange(1, len(cum_tp) + 1), [0.0]])
    recall = np.concatenate([[0.0], cum_tp / num_gt, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


def evaluate_ava(
    labelmap: PathLike | Mapping[int, str],
    groundtruth: PathLike | Rows,
    detections: PathLike | Rows,
    excluded: PathLike | Rows | None = None,
    *,
    max_detections_per_image: int = MAX_DETECTIONS_PER_IMAGE,
    iou_threshold: float = IOU_THRESHOLD,
) -> dict[str, Any]:
    """Frame-mAP at IoU 0.5 as the official ActivityNet AVA evaluator (see the module docstring).

    Args:
        labelmap: Label map path or ``{id: name}``; only its classes are evaluated.
        groundtruth: Ground-truth CSV path or rows.
        detections: Detections CSV path or rows.
        excluded: Excluded-timestamps CSV path or rows, or None.
        max_detections_per_image: Detections kept per image (official: 50; 0 keeps all).
        iou_threshold: Minimum IoU of a true positive (official: 0.5, inclusive).

    Returns:
        ``{"mAP", "per_class": {name: AP}, "num_groundtruth": {name: count}}``; a class without ground
        truth has AP NaN and is left out of ``mAP`` (NaN if no class has any).

    Raises:
        ValueError: On a malformed input, naming the file and line.
    """
    classes = read_labelmap(labelmap)
    skip = read_exclusions(excluded)
    gt: dict[tuple[ImageKey, int], list[Box]] = defaultdict(list)
    for key, box, action, _ in read_boxes(groundtruth, detections=False, class_ids=classes):
        if key not in skip:
            gt[(key, action)].append(box)
    per_image: dict[ImageKey, list[tuple[float, int, Box]]] = defaultdict(list)
    for key, box, action, score in read_boxes(detections, detections=True, class_ids=classes):
        if key not in skip:
            per_image[key].append((score, action, box))
    dets: dict[tuple[ImageKey, int], list[tuple[float, Box]]] = defaultdict(list)
    for key, rows in per_image.items():
        rows.sort(key=lambda r: (r[0], r[1], r[2]), reverse=True)
        if max_detections_per_image > 0:
            rows = rows[:max_detections_per_image]
        for score, action, box in rows:
            dets[(key, action)].append((score, box))
    results: dict[int, list[tuple[tuple[Any, ...], bool]]] = defaultdict(list)
    for (key, action), found in dets.items():
        found.sort(key=lambda d: (-d[0], d[1]))
        gt_boxes = sorted(gt.get((key, action), []))
        flags = [False] * len(found)
        if gt_boxes:
            iou = iou_matrix(np.array([b for _, b in found], dtype=float), np.array(gt_boxes, dtype=float))
            taken = [False] * len(gt_boxes)
            for i, best in enumerate(np.argmax(iou, axis=1)):
                if iou[i, best] >= iou_threshold and not taken[best]:
                    taken[best] = flags[i] = True
        for i, (score, box) in enumerate(found):
            results[action].append(((-score, key[0], key[1], box, i), flags[i]))
    num_gt = Counter(action for (_, action), boxes in gt.items() for _ in boxes)
    per_class = {name: average_precision(results[cid], num_gt[cid]) for cid, name in classes.items()}
    valid = [ap for ap in per_class.values() if not math.isnan(ap)]
    return {
        "mAP": float(np.mean(valid)) if valid else float("nan"),
        "per_class": per_class,
        "num_groundtruth": {name: num_gt[cid] for cid, name in classes.items()},
    }

"""Classification metrics from predictions: multi-view test bookkeeping and exact per-video metrics.

Pure torch / torchmetrics (no Lightning): :class:`MultiViewTest` is what a classifier's test step
feeds (softmax averaged over the views of each video, per-video rows, top-1 / top-5 / class-mean,
confusion matrix); the functions below turn de-duplicated per-video rows into the exact metrics
``eval.py`` writes, whatever padding a distributed sampler added.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix


def accuracy_metrics(num_classes: int, average: Literal["micro", "macro"] = "micro") -> MetricCollection:
    """Top-1 and top-5 accuracy (top-k capped at ``num_classes``).

    ``compute_groups=False``: torchmetrics would otherwise merge acc1 and acc5 into one state when
    the first batch gives them equal counts, and then report acc1's value as acc5.
    """
    return MetricCollection(
        {f"acc{k}": MulticlassAccuracy(num_classes, top_k=min(k, num_classes), average=average) for k in (1, 5)},
        compute_groups=False,
    )


def prediction_rows(probs: torch.Tensor, labels: torch.Tensor, ids: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per video: id, label, top-1 prediction and the top ``min(5, K)`` classes with their probabilities."""
    top_p, top_i = probs.topk(min(5, probs.shape[-1]), dim=-1)  # [B, k]
    label, top_p_l, top_i_l = labels.tolist(), top_p.tolist(), top_i.tolist()
    return [
        {"video_id": vid, "label": label[i], "pred": top_i_l[i][0], "top5": top_i_l[i], "top5_prob": top_p_l[i]}
        for i, vid in enumerate(ids)
    ]


class MultiViewTest(nn.Module):
    """Test-time bookkeeping of a classifier: metrics (synced across ranks) and per-video rows.

    Under DDP each rank holds its own rows (with the sampler's padding duplicates), which the eval
    entry point gathers and merges by ``video_id``.

    Args:
        num_classes: Number of classes ``K``.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.micro = accuracy_metrics(num_classes)
        self.macro = accuracy_metrics(num_classes, average="macro")
        self.confmat = MulticlassConfusionMatrix(num_classes)
        self.rows: list[dict[str, Any]] = []
        self.confusion: torch.Tensor | None = None

    def reset(self) -> None:
        self.rows, self.confusion = [], None
        for metric in (self.micro, self.macro, self.confmat):
            metric.reset()

    def update(self, probs: torch.Tensor, labels: torch.Tensor, ids: Sequence[Any]) -> None:
        """Add a batch of view-averaged probabilities ``[B, K]`` with their labels ``[B]`` and video ids."""
        self.micro.update(probs, labels)
        self.macro.update(probs, labels)
        self.confmat.update(probs.argmax(-1), labels)
        self.rows.extend(prediction_rows(probs, labels, ids))

    def compute(self) -> dict[str, float]:
        """``acc1``, ``acc5``, ``acc1_class_mean``, ``acc5_class_mean``; keeps the confusion matrix."""
        out = {k: float(v) for k, v in self.micro.compute().items()}
        out.update({f"{k}_class_mean": float(v) for k, v in self.macro.compute().items()})
        self.confusion = self.confmat.compute().cpu()
        return out


def view_average_probs(net: nn.Module, video: torch.Tensor) -> torch.Tensor:
    """Mean over views of the per-view softmax: ``[B, V, 3, T, H, W]`` (or ``[B, 3, T, H, W]``) -> ``[B, K]``."""
    if video.ndim == 5:
        video = video.unsqueeze(1)  # [B, 1, 3, T, H, W]
    b, v = video.shape[:2]
    logits = net(video.flatten(0, 1)).float()  # [B*V, K]
    return logits.softmax(-1).view(b, v, -1).mean(1)  # [B, K]


PAD_TOLERANCE = 1e-6  # torchmetrics (float32) vs the exact per-video metrics: beyond this they differ


def merge_predictions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per video: distributed shards repeat padded videos; the first occurrence wins."""
    seen: dict[Any, dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(row["video_id"], row)
    return list(seen.values())


def gather_predictions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rank's per-video rows on every rank (a no-op in one process); duplicates are merged later."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return rows
    shards: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, rows)
    return [row for shard in shards for row in shard]


def _class_mean(hits: torch.Tensor, labels: torch.Tensor, counted: torch.Tensor, num_classes: int) -> float:
    """Mean over the ``counted`` classes of the per-class recall (the fraction of its videos that are hits)."""
    support = torch.bincount(labels, minlength=num_classes).double()  # [K]
    correct = torch.bincount(labels[hits], minlength=num_classes).double()  # [K]
    recall = correct / support.clamp_min(1)
    return float(recall[counted].mean()) if counted.any() else 0.0


def metrics_from_predictions(
    rows: list[dict[str, Any]], num_classes: int, prefix: str = "test"
) -> tuple[dict[str, float], torch.Tensor]:
    """Exact test metrics and confusion matrix from per-video prediction rows (one row per video).

    Each row has ``label``, ``pred`` and ``top5`` (the ``min(5, num_classes)`` best classes, best
    first), as :func:`prediction_rows` writes them. The metrics mirror the
    module's torchmetrics (:func:`accuracy_metrics`) key for key:

    * ``{prefix}/acc1``, ``{prefix}/acc5``: the fraction of videos whose label is the top class /
      among the top ``min(5, num_classes)``.
    * ``{prefix}/acc1_class_mean``, ``{prefix}/acc5_class_mean``: per-class recall averaged over the
      classes that occur, as ``MulticlassAccuracy(average="macro")``, which also counts (with recall 0)
      a top-1 class that is predicted but never occurs (its rule: top-1 skips classes with
      ``tp + fp + fn == 0``, top-k > 1 skips classes with ``tp + fn == 0``).

    Returns ``(metrics, confusion)``: ``confusion`` is a ``[K, K]`` int64 count matrix, rows = true class.
    De-duplicate first (:func:`merge_predictions`): every row counts.
    """
    k5 = min(5, num_classes)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    if not rows:
        keys = ("acc1", "acc5", "acc1_class_mean", "acc5_class_mean")
        return {f"{prefix}/{k}": 0.0 for k in keys}, confusion
    labels = torch.tensor([int(r["label"]) for r in rows], dtype=torch.int64)  # [N]
    preds = torch.tensor([int(r["pred"]) for r in rows], dtype=torch.int64)  # [N]
    bad = [r for r, y in zip(rows, labels.tolist(), strict=True) if not 0 <= y < num_classes]
    if bad:
        raise ValueError(f"{len(bad)} prediction rows have labels outside [0, {num_classes}), e.g. {bad[0]}")
    if any(len(r["top5"]) < k5 for r in rows):
        raise ValueError(f"prediction rows need the top {k5} classes in 'top5'")
    top = torch.tensor([[int(c) for c in r["top5"][:k5]] for r in rows], dtype=torch.int64)  # [N, k5]
    hit1 = preds == labels
    hit5 = (top == labels[:, None]).any(1)
    confusion.index_put_((labels, preds), torch.ones_like(labels), accumulate=True)
    occurs = confusion.sum(1) > 0  # [K]
    predicted = confusion.sum(0) > 0  # [K]
    n = len(rows)
    metrics = {
        f"{prefix}/acc1": hit1.sum().item() / n,
        f"{prefix}/acc5": hit5.sum().item() / n,
        f"{prefix}/acc1_class_mean": _class_mean(hit1, labels, occurs | predicted, num_classes),
        f"{prefix}/acc5_class_mean": _class_mean(hit5, labels, occurs, num_classes),
    }
    return metrics, confusion


def reconcile_metrics(
    logged: dict[str, float], exact: dict[str, float], logged_confusion: torch.Tensor | None, confusion: torch.Tensor
) -> list[str]:
    """Names of the ``exact`` metrics (and ``confusion``) that differ from the torchmetrics ones of ``test_step``."""
    differ = [k for k, v in exact.items() if k in logged and abs(logged[k] - v) > PAD_TOLERANCE]
    if logged_confusion is not None and not torch.equal(logged_confusion.long().cpu(), confusion):
        differ.append("confusion matrix")
    return differ


def class_names_or_default(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """``class_names`` checked against ``num_classes``, or ``class_<i>`` when nothing names the classes.

    Raises:
        ValueError: A name list of another length (names would land on the wrong classes).
    """
    if class_names is None:
        return [f"class_{i}" for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for {num_classes} classes: {list(class_names)[:5]}...")
    return [str(n) for n in class_names]


def named_rows(rows: list[dict[str, Any]], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Prediction rows with ``label_name``, ``pred_name`` and ``top5_names`` next to the indices.

    ``top5_names`` is a JSON list (names may hold spaces and commas, e.g. SSv2's templates); a
    label of -1 (unlabelled test videos) gets an empty name.
    """
    names = list(class_names)

    def name(i: Any) -> str:
        return names[int(i)] if 0 <= int(i) < len(names) else ""

    out = []
    for row in rows:
        new: dict[str, Any] = {}
        for key, value in row.items():
            new[key] = value
            if key in ("label", "pred"):
                new[f"{key}_name"] = name(value)
            elif key == "top5":
                new["top5_names"] = json.dumps([name(c) for c in value])
        out.append(new)
    return out


def confusion_table(confusion: torch.Tensor, class_names: Sequence[str]) -> list[list[Any]]:
    """The ``[K, K]`` matrix as CSV rows: a header of predicted class names, each row led by its true class."""
    header: list[Any] = ["true \\ predicted", *class_names]
    return [header, *([name, *counts] for name, counts in zip(class_names, confusion.tolist(), strict=True))]

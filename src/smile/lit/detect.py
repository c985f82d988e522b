"""LightningModule for AVA spatio-temporal action detection (the encoder plus an RoI head, per-box scores).

Training follows the finetuning recipe of :mod:`smile.lit.classify` (AdamW over layer-wise lr-decay
groups, lr scaled by the global batch / 256, per-step warmup + cosine, the non-finite guard), with the
detection loss of :func:`~smile.models.detection.ava_loss` on the ground-truth person boxes.

Evaluation scores every person box of every keyframe (ground truth or detector proposals, as the data
module gives them) and keeps the scores as per-box arrays on each rank; at the end of the epoch they are
gathered once, each keyframe is kept once (a distributed sampler repeats items to pad the last round),
and the frame-mAP is the official evaluator's (:func:`~smile.metrics.ava.evaluate_ava`) against the
files the data module names in ``eval_files`` (``label_map``, ``groundtruth``, ``excluded``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, get_args

import lightning as L
import torch

from smile.lit.common import NonFiniteGuard, NonFiniteHooks
from smile.lit.optim import OptimizationMixin, OptimizerFactory, WarmupCosine, layer_decay_groups
from smile.metrics.ava import evaluate_ava, read_labelmap
from smile.metrics.detections import (
    DetectionRow,
    KeyframeDetections,
    dedupe_keyframes,
    detection_rows,
    gather_detections,
)
from smile.models.detection import AVADetector, AVALossMode, ava_loss, ava_scores, extend_boxes, jitter_boxes

log = logging.getLogger(__name__)

STAGES = ("val", "test")


def _floats(values: Sequence[float] | None, count: int, key: str) -> tuple[float, ...] | None:
    """A box-augmentation setting: None, or ``count`` non-negative numbers (a Hydra list is fine)."""
    if values is None:
        return None
    out = tuple(float(v) for v in values)
    if len(out) != count or any(v < 0 for v in out):
        raise ValueError(f"model.module.{key}={list(values)}: give {count} non-negative fractions, or null for none")
    return out


class DetectionLitModule(OptimizationMixin, NonFiniteHooks, L.LightningModule):
    """AVA action detection: finetune an :class:`~smile.models.detection.AVADetector`, evaluate frame-mAP.

    Args:
        net: The detector: ``net(video [B, 3, T, H, W], boxes: B x [K_i, 4] pixels) -> [sum K_i, 80]``.
        optimizer: Optimizer factory (``model.optimizer``: a partial AdamW whose ``lr`` is per 256 clips).
        scheduler: The per-step schedule (``model.scheduler``).
        batch_size: Clips per device per step (``data.batch_size``), for the lr rule (one sample per clip).
        layer_decay: Layer-wise lr decay over the encoder; the head trains at the full lr (1.0 = off).
        loss_mode: ``"pose_softmax"`` (softmax over the 14 poses + sigmoid BCE over the rest) or ``"sigmoid"``.
        max_nonfinite_steps: Stop after this many consecutive NaN/Inf losses (each one is skipped).
        nonfinite_check_every: Fused optimizer (CUDA): optimizer steps between host reads of the streak.
        train_box_jitter: ``(x_out, x_in, y_out, y_in)``: each training box's edges move by up to these
            fractions of its size (:func:`~smile.models.detection.jitter_boxes`; the reference's
            ``(0.2, 0.1, 0.1, 0.05)``); None = off.
        test_box_extend: ``(sx, sy)``: evaluation boxes grow by these fractions of their size before
            pooling (:func:`~smile.models.detection.extend_boxes`; the reference's ``(0.1, 0.05)``); None =
            off. The written detections keep the boxes as given.
        loss_times_boxes: Multiply the mean loss by the step's number of boxes (on this device), as
            VideoMAE-Action-Detection does: steps with more persons weigh more. False = the mean.
        score_with_box: Multiply each action score by its box's detector score (``batch["box_scores"]``:
            the proposal's, 1 for ground-truth boxes), as VideoMAE-Action-Detection scores its detections;
            false = the action score alone.
        max_detections_per_image: Keep only the best this many rows of each keyframe in the detections
            (0 = one row per box and evaluated class). The official evaluator reads the best 50 per
            keyframe, so any value >= 50 leaves the mAP unchanged and shrinks the CSV.
    """

    def __init__(
        self,
        net: AVADetector,
        optimizer: OptimizerFactory,
        scheduler: WarmupCosine,
        batch_size: int,
        layer_decay: float = 0.75,
        loss_mode: AVALossMode = "pose_softmax",
        max_nonfinite_steps: int = 10,
        nonfinite_check_every: int = 50,
        train_box_jitter: Sequence[float] | None = None,
        test_box_extend: Sequence[float] | None = None,
        score_with_box: bool = True,
        loss_times_boxes: bool = False,
        max_detections_per_image: int = 0,
    ) -> None:
        super().__init__()
        if loss_mode not in get_args(AVALossMode):
            raise ValueError(f"model.loss_mode={loss_mode!r} is unknown; use one of {get_args(AVALossMode)}")
        if max_detections_per_image < 0:
            raise ValueError(f"max_detections_per_image={max_detections_per_image} must be >= 0 (0 = all)")
        # plain tuples, not Hydra's ListConfig: checkpoints hold only what the safe loader rebuilds
        train_box_jitter = _floats(train_box_jitter, 4, "train_box_jitter")
        test_box_extend = _floats(test_box_extend, 2, "test_box_extend")
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory, self.schedule = optimizer, scheduler
        self.batch_size, self.samples_per_clip = batch_size, 1
        self.layer_decay = layer_decay
        self.loss_mode: AVALossMode = loss_mode
        self.max_detections_per_image = max_detections_per_image
        self.score_with_box = score_with_box
        self.loss_times_boxes = loss_times_boxes
        self.train_box_jitter, self.test_box_extend = train_box_jitter, test_box_extend
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps, nonfinite_check_every)
        self._parts: dict[str, list[KeyframeDetections]] = {s: [] for s in STAGES}  # this rank's batches
        self._items: dict[str, int] = dict.fromkeys(STAGES, 0)  # clips seen this epoch, numbers items
        # last epoch, all ranks, each keyframe once, with the evaluated class ids: compact arrays, rows on demand
        self._final: dict[str, tuple[KeyframeDetections, list[int] | None]] = {}
        self._results: dict[str, dict[str, Any]] = {}
        self._warned_no_eval_files = False

    def on_train_start(self) -> None:
        self._attach_nonfinite()

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor | None:
        boxes = batch["boxes"]
        num_boxes = sum(len(b) for b in boxes)  # shapes only: no host sync
        if self.train_box_jitter is not None:  # one op over every box of the batch, then back per clip
            size = (batch["video"].shape[-2], batch["video"].shape[-1])
            boxes = jitter_boxes(torch.cat(list(boxes)), size, self.train_box_jitter).split([len(b) for b in boxes])
        logits = self.net(batch["video"], boxes).float()  # [K, 80]
        if num_boxes:
            loss = ava_loss(logits, torch.cat(list(batch["labels"])).to(logits.device), self.loss_mode)
            if self.loss_times_boxes:  # the reference's scale: the step's weight grows with its persons
                loss = loss * num_boxes
        else:
            # No person in any clip: a zero through the whole graph (the empty roi_align passes zero
            # gradients to every encoder and head weight), so backward and DDP's all-reduce still run here.
            loss = logits.sum() * 0.0
        self.log("train/loss", loss, prog_bar=True, batch_size=max(num_boxes, 1))
        if (batch_idx + 1) % max(1, self.trainer.log_every_n_steps) == 0:  # a float is a GPU sync: log steps only
            self.log("train/lr", self.peak_group_lr(), batch_size=max(num_boxes, 1))
        return self.guarded_loss(loss)  # None: a non-finite step, skipped

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Layer-decay groups: encoder parameters by depth, the head with the final norm at scale 1.

        ``layer_id`` reads names relative to the ViT (``blocks.3...``), so the encoder and the head are
        grouped separately; the head's names (``fc.*``) fall in the last layer ``L + 1`` (scale 1),
        and groups of the same layer and decay are merged. Biases and norms get no weight decay.
        """
        num_layers = len(self.net.encoder.blocks)
        groups: dict[str, dict] = {}
        for part in (self.net.encoder, self.net.head):
            for group in layer_decay_groups(part, weight_decay, float(self.layer_decay), num_layers):
                if group["name"] in groups:
                    groups[group["name"]]["params"].extend(group["params"])
                else:
                    groups[group["name"]] = group
        for group in groups.values():
            group["lr"] = lr * group["lr_scale"]
        return list(groups.values())

    # -- evaluation -----------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._reset("val")

    def on_test_epoch_start(self) -> None:
        self._reset("test")

    def _reset(self, stage: str) -> None:
        self._parts[stage], self._items[stage] = [], 0

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._score(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._score(batch, "test")

    def _score(self, batch: dict[str, Any], stage: str) -> None:
        """Score every box of the batch and keep the scores on the CPU (per-box arrays)."""
        boxes = batch["boxes"]
        if self.test_box_extend is not None:
            size = (batch["video"].shape[-2], batch["video"].shape[-1])
            boxes = extend_boxes(torch.cat(list(boxes)), size, self.test_box_extend).split([len(b) for b in boxes])
        scores = ava_scores(self.net(batch["video"], boxes).float(), self.loss_mode)  # [K, 80]
        if self.score_with_box:
            scores = scores * torch.cat(list(batch["box_scores"])).to(scores)[:, None]  # [K, 80]
        ids = list(batch["video_id"])
        part = KeyframeDetections.from_batch(ids, batch["timestamp"], batch["norm_boxes"], scores, self._items[stage])
        self._parts[stage].append(part)
        self._items[stage] += len(ids)

    def on_validation_epoch_end(self) -> None:
        self._evaluate("val")

    def on_test_epoch_end(self) -> None:
        self._evaluate("test")

    def _evaluate(self, stage: str) -> None:
        """Gather once, keep each keyframe once, keep the result and (with ``eval_files``) log the frame-mAP."""
        num_classes = self.net.head.fc.out_features
        dets = dedupe_keyframes(gather_detections(KeyframeDetections.concat(self._parts[stage], num_classes)))
        self._parts[stage] = []
        self._results.pop(stage, None)
        files = self._eval_files()
        self._final[stage] = (dets, list(read_labelmap(files.label_map)) if files is not None else None)
        if files is None:
            return
        rows = self._detections(stage)
        if not self.trainer.sanity_checking:  # the official evaluator is pure Python: say what it is doing
            log.info("%s frame-mAP: %d keyframes, %d detection rows", stage, len({r[:2] for r in rows}), len(rows))
        result = evaluate_ava(files.label_map, files.groundtruth, rows, files.excluded)
        self._results[stage] = result
        if math.isnan(result["mAP"]):
            log.warning(
                "%s/frame_map is NaN: no class of the label map has ground truth in %s", stage, files.groundtruth
            )
        # every rank holds the same gathered rows, hence the same value: no reduction
        self.log(f"{stage}/frame_map", result["mAP"], prog_bar=True, sync_dist=False)

    def _eval_files(self) -> Any | None:
        """The data module's ``eval_files`` (label map, ground truth, excluded), or None with one warning."""
        datamodule = getattr(self.trainer, "datamodule", None)
        files = getattr(datamodule, "eval_files", None)
        if files is None and not self._warned_no_eval_files:
            log.warning(
                "the data module has no eval_files (label map, ground truth, excluded timestamps): detections "
                "are kept, the frame-mAP is skipped"
            )
            self._warned_no_eval_files = True
        return files

    def _detections(self, stage: str) -> list[DetectionRow]:
        """Rows of the last ``stage`` epoch: one per box and evaluated class (the label map's; all without
        ``eval_files``), or the best ``max_detections_per_image`` of each keyframe; built on demand."""
        if stage not in self._final:
            return []
        dets, class_ids = self._final[stage]
        return detection_rows(
            dets.video_ids, dets.timestamps, dets.boxes, dets.scores, class_ids, 0.0, self.max_detections_per_image
        )

    @property
    def val_detections(self) -> list[DetectionRow]:
        """Rows of the last validation epoch (all ranks, each keyframe once), in the official CSV order."""
        return self._detections("val")

    @property
    def test_detections(self) -> list[DetectionRow]:
        """Rows of the last test (all ranks, each keyframe once), for :func:`~smile.metrics.write_detections_csv`."""
        return self._detections("test")

    @property
    def eval_results(self) -> dict[str, dict[str, Any]]:
        """The evaluator's result (``mAP``, ``per_class``, ``num_groundtruth``) of the last ``"val"`` / ``"test"``.

        Exact (float64); the logged ``{stage}/frame_map`` is Lightning's float32 copy.
        """
        return self._results

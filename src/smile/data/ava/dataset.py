"""AVA keyframe clips with their person boxes, in the batch contract of the AVA detector.

One item is one keyframe ``(video_id, second)``: the clip of ``num_frames`` frames ``sampling_rate``
apart centred on it (:mod:`smile.data.ava.files`' convention, clamped to the video), the persons'
boxes in clip pixels, their multi-hot labels and their boxes as the files give them (normalised,
unflipped: what ``detections.csv`` reports). Frames come from the published JPEG folders
(``<frames>/<video_id>/<video_id>_<k:06d>.jpg``) or from the 15-minute cut videos
(``frame_source="video"``, file time 0 = AVA second 900).

Geometry (:mod:`smile.data.ava.transforms`, the reference's pipeline and our deviations): training
resizes every frame to short side ``short_side`` (256), crops ``img_size`` (224 x 224 in the
recipe) at a random position and flips half the clips; evaluation stretches every frame to the
fixed ``test_size`` (the recipe's 256 x 448), without crop or flip. Training and evaluation clips
may thus differ in size; the detector takes both. Training clips may also get the reference's HSV
colour jitter (:mod:`smile.data.ava.color`), one shift per clip. Reading the frames is
:mod:`smile.data.ava.frames`' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from smile.data.ava.color import check_color_jitter, draw_hsv_shifts, hsv_jitter
from smile.data.ava.files import DEFAULT_PROPOSAL_SCORE, NUM_CLASSES, read_annotations, read_excluded, read_proposals
from smile.data.ava.frames import AvaFrames, FrameSource
from smile.data.ava.transforms import AvaTestTransform, AvaTrainTransform
from smile.data.datasets.list import EpochAware, check_index
from smile.data.decoding import Backend

__all__ = ["AvaClipDataset", "collate_ava"]

Split = Literal["train", "test"]


class _Keyframe(NamedTuple):
    video_id: str
    second: int
    boxes: np.ndarray  # [K, 4] normalised x1 y1 x2 y2
    labels: np.ndarray  # [K, 80] uint8 multi-hot (a quarter of float32's bytes in every worker)
    scores: np.ndarray  # [K] float32 person-detector scores (1 for ground-truth boxes)


class AvaClipDataset(EpochAware, Dataset):
    """Clips of AVA keyframes with person boxes (train: ground truth; test: proposals).

    * ``split="train"``: one item per annotated keyframe not in ``excluded``; boxes are the ground
      truth (optionally jittered), labels from the CSV; short-side resize, random ``img_size`` crop,
      flip (:class:`~smile.data.ava.transforms.AvaTrainTransform`); boxes left outside the crop are
      dropped with their labels; then, with ``color_jitter``, one HSV shift for the whole clip.
    * ``split="test"``: one item per keyframe of ``proposals`` whose video is in ``annotations``,
      not excluded, with at least one proposal scoring ``>= proposal_score``; boxes are those
      proposals, labels zeros; the full frame stretched to ``test_size``. With ``proposals=None``
      the ground-truth boxes (and labels) of the annotated keyframes are used instead: an "oracle
      boxes" evaluation that measures the classifier alone, for ablations (not comparable to
      published AVA mAP).

    Determinism: item ``i`` in epoch ``e`` draws its box jitter, crop, flip and then colour shifts
    from ``numpy.random.default_rng([seed, i, e])`` (the colour draws last, so turning them on
    changes no other draw); :meth:`set_epoch` reaches persistent workers. Frame counts (JPEG) and
    stream info (videos) are read once per video per process and cached (:class:`~smile.data.ava.frames.AvaFrames`).

    Args:
        frames: Root of the ``<video_id>/`` JPEG folders, or of the videos (``frame_source="video"``).
        annotations: ``ava_{train,val}_v2.2.csv``.
        excluded: ``ava_{train,val}_excluded_timestamps_v2.2.csv`` or None.
        proposals: Person proposals pickle (test only; None at test = oracle boxes).
        split: ``"train"`` or ``"test"``.
        num_frames: Clip frames T.
        sampling_rate: Stride between clip frames (in 30 fps frames).
        img_size: The training crop, a side or ``(H, W)`` (``video.img_size``); the test size by default.
        proposal_score: Keep proposals scoring at least this (0.8: AlphAction / VideoMAE).
        box_jitter: Train only: std of a Gaussian added to each ground-truth box coordinate, as a
            fraction of the box's width (x) or height (y); boxes are then clipped to ``[0, 1]``.
        short_side: Train only: every frame's short side before cropping (aspect kept).
        test_size: Test only: every frame's size, a side or ``(H, W)``; None = ``img_size``.
        frame_source: ``"jpg"`` (frame folders) or ``"video"`` (cut videos).
        video_pattern: Video file name under ``frames`` (``frame_source="video"``); glob characters
            allowed, the match must be unique. The default ``{video_id}.*`` accepts the mixed
            extensions (.mp4, .mkv, .webm) of the published ``trainval`` cuts.
        backend: Video decoder (``auto``, ``decord``, ``pyav``).
        seed: Base seed of every random draw.
        color_jitter: Train only: ``(hue_degrees, saturation, value)`` of the reference's HSV jitter
            (``[20, 0.1, 0.1]``: shifts up to 10 on OpenCV's 0-179 hue and 26 on 0-255 saturation and
            value, :func:`~smile.data.ava.color.draw_hsv_shifts`); None = off. Ignored at test.
    """

    def __init__(
        self,
        frames: str | Path,
        annotations: str | Path,
        excluded: str | Path | None = None,
        proposals: str | Path | None = None,
        split: Split = "train",
        num_frames: int = 16,
        sampling_rate: int = 4,
        img_size: int | Sequence[int] = 224,
        proposal_score: float = DEFAULT_PROPOSAL_SCORE,
        box_jitter: float = 0.0,
        short_side: int = 256,
        test_size: int | Sequence[int] | None = None,
        frame_source: FrameSource = "jpg",
        video_pattern: str = "{video_id}.*",
        backend: Backend = "auto",
        seed: int = 0,
        color_jitter: Sequence[float] | None = None,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"AvaClipDataset split must be 'train' or 'test', got {split!r}")
        if frame_source not in ("jpg", "video"):
            raise ValueError(f"AvaClipDataset frame_source must be 'jpg' or 'video', got {frame_source!r}")
        if int(num_frames) < 1 or int(sampling_rate) < 1 or box_jitter < 0:
            raise ValueError(
                f"AvaClipDataset needs num_frames >= 1, sampling_rate >= 1, box_jitter >= 0; "
                f"got {num_frames}, {sampling_rate}, {box_jitter}"
            )
        if split == "train" and proposals is not None:
            raise ValueError(
                f"AvaClipDataset proposals={proposals} given for split 'train': training uses the ground-truth "
                "boxes; set proposals: null for the train dataset"
            )
        self.frames, self.split, self.frame_source = Path(frames), split, frame_source
        if not self.frames.is_dir():
            raise FileNotFoundError(f"AVA frames root {self.frames} is not a folder (the 'frames' argument)")
        self.annotations = Path(annotations)
        self.excluded = None if excluded is None else Path(excluded)
        self.proposals = None if proposals is None else Path(proposals)
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)
        self.box_jitter, self.backend, self.seed = float(box_jitter), backend, int(seed)
        self.color_jitter = check_color_jitter(color_jitter)
        self.train_transform = AvaTrainTransform(img_size, short_side) if split == "train" else None
        self.test_transform = AvaTestTransform(img_size if test_size is None else test_size)
        self.items = self._keyframes(float(proposal_score))
        self.reader = AvaFrames(
            self.frames, (k.video_id for k in self.items), self.num_frames, self.sampling_rate, frame_source,
            video_pattern, backend,
        )  # fmt: skip
        self.videos = self.reader.videos  # each video's folder or file
        self._init_epoch()

    # --- construction ----------------------------------------------------------------------------

    def _keyframes(self, proposal_score: float) -> list[_Keyframe]:
        annotated = read_annotations(self.annotations)
        skip = read_excluded(self.excluded) if self.excluded is not None else set()
        if self.split == "train" or self.proposals is None:
            items = [
                _Keyframe(*k, a.boxes, a.labels.astype(np.uint8), np.ones(len(a.boxes), np.float32))
                for k, a in annotated.items()
                if k not in skip
            ]
            what = "annotated keyframes"
        else:
            videos = {v for v, _ in annotated}
            props = read_proposals(self.proposals, proposal_score)
            items = [
                _Keyframe(*k, p[:, :4], np.zeros((len(p), NUM_CLASSES), np.uint8), p[:, 4].copy())
                for k, p in sorted(props.items())
                if k[0] in videos and k not in skip and len(p)
            ]
            what = f"proposal keyframes of annotated videos with a score >= {proposal_score}"
        if not items:
            raise ValueError(
                f"AVA {self.split} split has no {what} (not excluded): annotations={self.annotations}, "
                f"excluded={self.excluded}, proposals={self.proposals}; check the paths and the split's files"
            )
        return items

    # --- loading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.items)

    def clip_indices(self, second: int) -> np.ndarray:
        """AVA (30 fps, 0-based) frame indices of the clip of keyframe ``second``, before clamping: ``[T]``."""
        return self.reader.clip_indices(second)

    def load_frames(self, index: int) -> torch.Tensor:
        """uint8 ``[T, 3, H, W]``: the clip of item ``index`` at the source's resolution."""
        k = self.items[index]
        return self.reader.load(k.video_id, k.second)

    def _jitter(self, boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)  # [K, 4] w h w h
        moved = np.clip(boxes + rng.normal(0.0, self.box_jitter, boxes.shape) * wh, 0.0, 1.0)
        return np.concatenate([np.minimum(moved[:, :2], moved[:, 2:]), np.maximum(moved[:, :2], moved[:, 2:])], 1)

    def __getitem__(self, index: int) -> dict[str, Any]:
        index = check_index(index, len(self))
        k = self.items[index]
        frames = self.load_frames(index)  # [T, 3, H, W]
        h, w = frames.shape[-2:]
        rng = np.random.default_rng([self.seed, index, self.epoch])
        boxes = self._jitter(k.boxes, rng) if self.split == "train" and self.box_jitter > 0 else k.boxes
        pixels = torch.from_numpy(boxes * np.array([w, h, w, h], np.float32))  # [K, 4] frame pixels
        labels, norm = torch.from_numpy(k.labels).float(), torch.from_numpy(k.boxes.copy())  # copies: not the dataset's
        scores = torch.from_numpy(k.scores.copy())  # [K]
        if self.train_transform is not None:
            video, clip_boxes, keep = self.train_transform(frames, pixels, rng)
            labels, norm, scores = labels[keep], norm[keep], scores[keep]
            if self.color_jitter is not None:  # drawn after the crop and flip: their draws stay as without it
                video = hsv_jitter(video, *draw_hsv_shifts(rng, *self.color_jitter), dim=0)  # [3, T, H, W]
        else:
            video, clip_boxes = self.test_transform(frames, pixels)
        return {
            "video": video,  # uint8 [3, T, H, W]
            "boxes": clip_boxes.float(),  # [K, 4] clip pixels
            "labels": labels.float(),  # [K, 80]
            "norm_boxes": norm.float(),  # [K, 4] as in the files
            "box_scores": scores.float(),  # [K] the person detector's scores (1 for ground truth)
            "video_id": k.video_id,
            "timestamp": k.second,
        }


def collate_ava(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch AVA items: clips stacked, per-clip box sets as lists (their counts differ).

    Returns:
        ``video`` uint8 ``[B, 3, T, H, W]``; ``boxes``, ``labels``, ``norm_boxes``, ``box_scores``: lists
        of B tensors ``[K_i, 4]`` / ``[K_i, 80]`` / ``[K_i, 4]`` / ``[K_i]``; ``video_id`` list of str;
        ``timestamp`` int64 ``[B]``.
    """
    if not items:
        raise ValueError("collate_ava got an empty batch")
    return {
        "video": torch.stack([it["video"] for it in items]),  # [B, 3, T, H, W]
        "boxes": [it["boxes"] for it in items],
        "labels": [it["labels"] for it in items],
        "norm_boxes": [it["norm_boxes"] for it in items],
        "box_scores": [it["box_scores"] for it in items],
        "video_id": [it["video_id"] for it in items],
        "timestamp": torch.tensor([int(it["timestamp"]) for it in items], dtype=torch.int64),  # [B]
    }

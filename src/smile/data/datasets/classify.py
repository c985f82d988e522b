"""Labelled clips for finetuning and evaluation: K400-style (dense) and SSv2-style (segment) (SPEC §7).

One dataset, three modes:

* ``train``: one random clip (:func:`~smile.data.sampling.dense_indices` or
  :func:`~smile.data.sampling.segment_indices`) augmented by the reference recipe
  (:class:`~smile.data.transforms.FinetuneTrainTransform`). The clip leaves the worker as a
  normalised float tensor, unlike pretraining's uint8 clips: RandAugment needs uint8/PIL frames
  on the CPU and the reference normalises before the crop and erasing, so the float step cannot
  be deferred to the device without changing the numbers.
* ``val``: the fixed centre clip (:func:`~smile.data.sampling.centre_clip_indices`; the
  reference drew a random one, SPEC §10.16), short-side resize and centre crop.
* ``test``: every view of the video (``test_clips`` temporal x ``test_crops`` spatial) from ONE
  decode: the union of the views' frames is decoded and resized once, then cut (the reference
  decoded the whole video once per view, SPEC §10.16).

Videos come from a list file (the reference's ``<path> <label>`` or a ``path,label`` CSV, read by
:func:`~smile.data.datasets.list.read_video_list`), a dataset index
(:func:`~smile.data.indexes.index_dataset`) or records (e.g. :class:`~smile.data.indexes.VideoRecord`).
Broken videos follow :class:`~smile.data.badvideos.BadVideoPolicy`: replaced by the next video,
reported in the item (``bad_videos``), logged once and counted by the data module, fatal past
``max(max_bad_videos, floor(max_bad_fraction * N))``. In ``test`` mode a replaced video shows up
twice under the successor's ``index`` and the broken one is missing from the evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from smile.data.badvideos import ITEM_KEY, BadVideoPolicy, encode_failures
from smile.data.datasets.list import EpochAware, check_index
from smile.data.datasets.records import Record, read_source, video_id_of
from smile.data.decoding import Backend, read_clip
from smile.data.indexes import DatasetIndex
from smile.data.sampling import (
    DEFAULT_TEST_CLIPS,
    SAMPLINGS,
    centre_clip_indices,
    dense_indices,
    is_padded,
    multiview_indices,
    segment_indices,
)
from smile.data.transforms import RAND_AUGMENT, EvalTransform, FinetuneTrainTransform
from smile.video import IMAGENET_MEAN, IMAGENET_STD

Mode = Literal["train", "val", "test"]
MODES = ("train", "val", "test")
__all__ = ["MODES", "Record", "VideoClassificationDataset", "collate_repeated", "video_id_of"]


def collate_repeated(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate items made with ``num_sample > 1`` into a flat batch of ``B * num_sample`` clips.

    ``video [n, 3, T, S, S]``, ``label [n]`` and ``index [n]`` per item become
    ``[B * n, 3, T, S, S]`` and ``[B * n]`` (the n augmentations of an item stay adjacent), as
    the reference's repeated-augmentation collate does. Items with ``num_sample == 1`` pass
    through as the default collate makes them.
    """
    out = default_collate(batch)
    if out["label"].ndim != 2:  # [B]: one sample per item (test items also keep their views)
        return out
    return {k: v.flatten(0, 1) if isinstance(v, torch.Tensor) else v for k, v in out.items()}  # [B * n, ...]


class VideoClassificationDataset(EpochAware, Dataset):
    """Clips with labels for finetuning (``train``), validation (``val``) and multi-view test.

    Args:
        records_or_list_file: A list file, a :class:`~smile.data.indexes.DatasetIndex` (what the
            dataset configs build with :func:`~smile.data.indexes.index_dataset`), or records
            ``(path, label[, video_id])`` / objects with ``path``, ``label`` (and optionally ``video_id``).
        root: Folder for relative paths (list default: the list file's folder; records: as given).
        mode: ``"train"``, ``"val"`` or ``"test"``.
        sampling: ``"dense"`` (K400, UCF101, HMDB51) or ``"segment"`` (SSv2).
        num_frames: Frames per clip (T; the number of segments for ``segment``).
        sampling_rate: Window stride for ``dense`` (unused by ``segment``).
        img_size: Crop side S.
        short_side: Short side after resizing, for ``val`` and ``test``.
        test_clips: Temporal test views; None = 7 (dense) or 2 (segment), as the reference.
        test_crops: Spatial test views (3: left/centre/right or top/centre/bottom).
        flip: Random horizontal flip in training (the reference turns it off for SSv2).
        aa: timm RandAugment string, or None / "" for none.
        reprob: Random-erasing probability per clip (cube, the reference) or per frame
            (``erase_cube=False``); 0 = off.
        erase_cube: The reference's cube erasing: one draw per clip, the same box in every frame.
        num_sample: Augmentations per decoded training video (repeated augmentation; reference
            default 2, both finetuning scripts use 1). Use :func:`collate_repeated` when > 1.
        scale: Area range of the training random resized crop (SMILE 0.25-1).
        mean, std: Normalisation (ImageNet, as the reference).
        normalize_eval: False returns uint8 ``val``/``test`` videos to normalise on the device
            (a K400 test item is 21 views, ~200 MB as float32 at 224 px).
        backend: Decoder (``"auto"``, ``"decord"`` or ``"pyav"``).
        seed: Base seed of every random choice.
        max_bad_fraction, max_bad_videos: Broken-video allowance (see module docstring).
        decode_size: Optional ``(height, width)`` to decode at; spatial transforms then refer to it.
        config_key: Config key to name when the list file is missing.

    Items (``S`` = img_size, ``T`` = num_frames, scalars are int64 tensors):

    * train: ``video`` float ``[3, T, S, S]``, ``label``, ``index``; with ``num_sample = n > 1``
      ``video [n, 3, T, S, S]``, ``label [n]``, ``index [n]`` from one decode.
    * val: ``video`` ``[3, T, S, S]``, ``label``, ``index``, ``video_id`` (str).
    * test: ``video`` ``[V, 3, T, S, S]`` with ``V = clips * crops``, ``label``, ``index``,
      ``video_id`` and ``view_ids [V]``: view ``clip * test_crops + crop``, in that order.
    * all: ``skipped`` (entries passed over), ``bad_videos`` (str: their reasons, see above) and
      ``padded`` (1 when the video was shorter than the clip span and frames were repeated:
      :func:`~smile.data.sampling.is_padded`; with ``num_sample > 1`` counted on the first copy).

    ``class_names`` (and ``classes_file``, where they come from) are the source's class names
    (index, or a list's ``classes.txt`` / ``class_<i>``), None for bare records.

    ``index`` is the video actually returned (a broken video is replaced by its successor), the
    key to aggregate test views by. Determinism: training item ``i`` in epoch ``e`` uses
    ``default_rng([seed, i, e, 0])`` for its frames and ``default_rng([seed, i, e, 1, s])`` for
    augmentation ``s``; :meth:`set_epoch` (shared memory) reaches persistent workers.
    """

    def __init__(
        self,
        records_or_list_file: str | os.PathLike | DatasetIndex | Sequence[Record],
        root: str | os.PathLike | None = None,
        mode: Mode = "train",
        sampling: str = "dense",
        num_frames: int = 16,
        sampling_rate: int = 4,
        img_size: int = 224,
        short_side: int = 224,
        test_clips: int | None = None,
        test_crops: int = 3,
        flip: bool = True,
        aa: str | None = RAND_AUGMENT,
        reprob: float = 0.25,
        erase_cube: bool = True,
        num_sample: int = 1,
        scale: Sequence[float] = (0.25, 1.0),
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        normalize_eval: bool = True,
        backend: Backend = "auto",
        seed: int = 0,
        max_bad_fraction: float = 0.01,
        max_bad_videos: int = 5,
        decode_size: tuple[int, int] | None = None,
        config_key: str = "data.train_list",
    ) -> None:
        self._check_args(mode, sampling, num_frames, sampling_rate, img_size, num_sample, test_crops)
        src = read_source(records_or_list_file, root, config_key)
        self.source, self.paths, self.video_ids = src.name, src.paths, src.video_ids
        self.class_names, self.classes_file = src.class_names, src.classes_file  # None: records without names
        self.labels = np.asarray(src.labels, dtype=np.int64)
        self.mode, self.sampling = mode, sampling
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)
        self.test_clips = DEFAULT_TEST_CLIPS[sampling] if test_clips is None else int(test_clips)
        self.num_sample, self.backend, self.seed, self.decode_size = int(num_sample), backend, int(seed), decode_size
        if mode == "train":
            self.transform: FinetuneTrainTransform | EvalTransform = FinetuneTrainTransform(
                img_size, aa or None, scale, flip=flip, reprob=reprob, erase_cube=erase_cube, mean=mean, std=std
            )
        else:
            crop = "three" if mode == "test" else "centre"
            self.transform = EvalTransform(img_size, short_side, crop, test_crops, mean, std, normalize_eval)
        self.policy = BadVideoPolicy(self.paths, max_bad_fraction, self.source, max_bad_videos)
        self.bad_videos = self.policy.bad_videos
        self._init_epoch()

    @staticmethod
    def _check_args(mode: str, sampling: str, *positive: int) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if any(int(v) < 1 for v in positive):
            names = "num_frames, sampling_rate, img_size, num_sample, test_crops"
            raise ValueError(f"{names} must be >= 1, got {positive}")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_views(self) -> int:
        """Views per test item (``test_clips * test_crops``)."""
        return self.test_clips * self._eval_transform.num_crops if self.mode == "test" else 1

    @property
    def _train_transform(self) -> FinetuneTrainTransform:
        assert isinstance(self.transform, FinetuneTrainTransform), "mode 'train' builds a FinetuneTrainTransform"
        return self.transform

    @property
    def _eval_transform(self) -> EvalTransform:
        assert isinstance(self.transform, EvalTransform), "modes 'val' and 'test' build an EvalTransform"
        return self.transform

    # --- frame numbers (pure functions of the frame count, so a decoder fallback agrees) --------

    def clip_indices(self, index: int, num_frames_video: int) -> np.ndarray:
        """Frames of item ``index``'s training (random) or validation (centre) clip: ``[T]``."""
        if self.mode == "val":
            return centre_clip_indices(num_frames_video, self.sampling, self.num_frames, self.sampling_rate)
        rng = np.random.default_rng([self.seed, index, self.epoch, 0])
        if self.sampling == "segment":
            return segment_indices(num_frames_video, self.num_frames, rng=rng)
        return dense_indices(num_frames_video, self.num_frames, self.sampling_rate, rng=rng)

    def view_indices(self, num_frames_video: int) -> np.ndarray:
        """Frames of every temporal test view: ``[test_clips, T]``."""
        return multiview_indices(num_frames_video, self.sampling, self.num_frames, self.sampling_rate, self.test_clips)

    # --- loading -------------------------------------------------------------------------------

    def _decode(self, index: int, choose: Callable[[int], np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        """One open of the file: uint8 frames ``[N, H, W, 3]`` and their frame numbers ``[N]``."""
        frames, idx = read_clip(self.paths[index], choose, self.backend, self.decode_size)
        return torch.from_numpy(frames), idx

    def load_train(self, index: int) -> tuple[torch.Tensor, bool]:
        """``[3, T, S, S]`` or ``[n, 3, T, S, S]`` augmented clips from one decode, and whether it was padded."""
        frames, idx = self._decode(index, lambda n: self.clip_indices(index, n))  # [T, H, W, 3]
        clips = []
        for s in range(self.num_sample):
            rng = np.random.default_rng([self.seed, index, self.epoch, 1, s])
            clips.append(self._train_transform(frames, rng))  # [3, T, S, S]
        return (clips[0] if self.num_sample == 1 else torch.stack(clips)), is_padded(idx)

    def load_val(self, index: int) -> tuple[torch.Tensor, bool]:
        """``[3, T, S, S]``: the centre clip, short-side resize, centre crop; and whether it was padded."""
        frames, idx = self._decode(index, lambda n: self.clip_indices(index, n))  # [T, H, W, 3]
        return self._eval_transform(frames), is_padded(idx)

    def load_test(self, index: int) -> tuple[torch.Tensor, bool]:
        """``[V, 3, T, S, S]``: all views from one decode of the union of their frames; any view padded."""
        views: list[np.ndarray] = []

        def choose(num_frames_video: int) -> np.ndarray:
            views[:] = [self.view_indices(num_frames_video)]  # [C, T]
            return np.unique(views[0])  # sorted union [U]

        frames, union = self._decode(index, choose)  # [U, H, W, 3]
        transform = self._eval_transform
        resized = transform.resize(frames)  # [U, 3, h, w], once for all views
        positions = np.searchsorted(union, views[0])  # [C, T] rows of `resized`
        clips = [transform.crops(resized[torch.from_numpy(pos)]) for pos in positions]  # C x [n, 3, T, S, S]
        return torch.cat(clips), is_padded(views[0])  # [C * n, 3, T, S, S], clip-major

    def __getitem__(self, index: int) -> dict[str, Any]:
        load = {"train": self.load_train, "val": self.load_val, "test": self.load_test}[self.mode]
        index = check_index(index, len(self))
        j, (video, padded), failures = self.policy.load(index, load)
        label = torch.tensor(self.labels[j], dtype=torch.int64)
        item: dict[str, Any] = {"video": video, "label": label, "index": torch.tensor(j, dtype=torch.int64)}
        item[ITEM_KEY] = encode_failures(failures)  # judged by the data module, once per run
        item["skipped"] = torch.tensor((j - index) % len(self), dtype=torch.int64)  # broken videos passed over
        item["padded"] = torch.tensor(int(padded), dtype=torch.int64)  # short video: frames repeated
        if self.mode == "train" and self.num_sample > 1:
            item["label"] = label.repeat(self.num_sample)  # [n]
            item["index"] = item["index"].repeat(self.num_sample)  # [n]
            for key in ("skipped", "padded"):  # counted once per decoded video
                item[key] = torch.cat([item[key][None], item[key].new_zeros(self.num_sample - 1)])
        if self.mode != "train":
            item["video_id"] = self.video_ids[j]
        if self.mode == "test":
            item["view_ids"] = torch.arange(self.num_views, dtype=torch.int64)  # clip * crops + crop
        return item

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.source}, {len(self)} videos, mode={self.mode!r}, "
            f"sampling={self.sampling!r}, T={self.num_frames}, transform={self.transform})"
        )

"""Videos named in a list file: the reference's pretraining input (SPEC §2.1-2.3).

Two list formats are read:

* the reference's: one ``<path> <label>`` per line, split on a single space, no header;
* CSV with the header line ``path,label``, so that paths may contain spaces (quote them if they
  contain commas).

Relative paths are resolved against ``root`` (default: the list file's folder), and a path whose
last component has no ``.`` gets ``.mp4`` appended, as in the reference.

Broken videos are not hidden (SPEC §10 item 5): each is replaced by the next index and reported
in the item; the data module logs each file once per run, counts distinct files and stops the run
with a report when more than ``max(max_bad_videos, floor(max_bad_fraction * len))`` failed
(:mod:`smile.data.badvideos`). Only decode failures are treated this way; any other exception is
a bug and propagates.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset

from smile.data.badvideos import ITEM_KEY, BadVideoPolicy, TooManyBadVideos, encode_failures
from smile.data.decoding import Backend, read_clip
from smile.data.listfile import read_video_list
from smile.data.sampling import is_padded, pretrain_indices
from smile.data.transforms import MultiScaleCrop

__all__ = ["BadVideoPolicy", "EpochAware", "TooManyBadVideos", "VideoListDataset", "check_index", "read_video_list"]


def check_index(index: int, length: int) -> int:
    """``index`` as a non-negative int in ``[0, length)`` (negative indices count from the end)."""
    index = operator.index(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} videos")
    return index


class EpochAware:
    """The current epoch in shared memory, so ``set_epoch`` from the main process reaches
    persistent DataLoader workers (a plain attribute would stay at its value in each worker)."""

    def _init_epoch(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``__getitem__`` uses (all workers)."""
        self._epoch.fill_(int(epoch))


class VideoListDataset(EpochAware, Dataset):
    """Pretraining clips from the videos of a list file.

    Each item decodes ``num_frames`` frames ``sampling_rate`` apart from a random start
    (:func:`~smile.data.sampling.pretrain_indices`) and applies the TSN multi-scale crop
    (:class:`~smile.data.transforms.MultiScaleCrop`).

    Args:
        list_file: The list (see module docstring for both formats).
        root: Folder for relative paths; default the list file's folder.
        num_frames: Frames per clip (T).
        sampling_rate: Stride between clip frames.
        img_size: Output side (S).
        scales: Multi-scale crop scales.
        backend: ``"auto"``, ``"decord"`` or ``"pyav"`` (see :mod:`smile.data.decoding`).
        seed: Base seed of every random choice.
        max_bad_fraction: Fraction of the videos that may fail to decode before the run stops.
        max_bad_videos: Videos that may fail whatever the list's size; the run stops once more than
            ``max(max_bad_videos, floor(max_bad_fraction * len(self)))`` distinct videos failed,
            counted over all workers by the data module (:mod:`smile.data.badvideos`).
        decode_size: Optional ``(height, width)`` to decode at (cheaper); crops then refer to it.
        config_key: Config key to name when the list file is missing.
        repeats: Repeated sampling (MAE-ST): clips cut from one decoded window, each with its own
            crop. With ``R > 1`` an item holds ``video`` ``[R, 3, T, S, S]`` and ``label``/``index``/
            ``padded``/``skipped`` ``[R]`` (the last two counted on the first copy), flattened by
            :func:`~smile.data.datasets.classify.collate_repeated`; 1 (the reference) = one clip.

    Items are dicts ``video`` (uint8 ``[3, T, S, S]``), ``label``, ``index``, ``skipped`` (int64
    scalars) and ``bad_videos`` (str). ``index`` is the item actually returned, which differs from
    the requested one when a broken video was replaced by its successor; ``skipped`` counts the
    entries passed over and ``bad_videos`` names them with their reasons (JSON, "" when none).

    Determinism: item ``i`` in epoch ``e`` uses ``default_rng([seed, i, e, 0])`` for the start
    frame and ``default_rng([seed, i, e, 1])`` for the crop, so it is identical across worker
    counts, call orders and resumed runs. The epoch lives in shared memory, so
    :meth:`set_epoch` from the main process reaches persistent workers too; call it before the
    epoch's DataLoader iterator is created (the data module's job), or every epoch repeats the
    augmentation of epoch 0.
    """

    def __init__(
        self,
        list_file: str | os.PathLike,
        root: str | os.PathLike | None = None,
        num_frames: int = 16,
        sampling_rate: int = 4,
        img_size: int = 224,
        scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
        backend: Backend = "auto",
        seed: int = 0,
        max_bad_fraction: float = 0.01,
        max_bad_videos: int = 5,
        decode_size: tuple[int, int] | None = None,
        config_key: str = "data.train_list",
        repeats: int = 1,
    ) -> None:
        for name, value in (
            ("num_frames", num_frames),
            ("sampling_rate", sampling_rate),
            ("img_size", img_size),
            ("repeats", repeats),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.list_file = os.fspath(list_file)
        self.paths, labels = read_video_list(list_file, root, config_key)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)
        self.backend, self.seed, self.decode_size = backend, int(seed), decode_size
        self.repeats = int(repeats)
        self.crop = MultiScaleCrop(int(img_size), scales)
        self.policy = BadVideoPolicy(self.paths, max_bad_fraction, self.list_file, max_bad_videos)
        self.max_bad_fraction, self.max_bad = self.policy.max_bad_fraction, self.policy.max_bad
        self.bad_videos = self.policy.bad_videos  # path -> reason, this process only (a cache)
        self._init_epoch()

    def __len__(self) -> int:
        return len(self.paths)

    def clip_indices(self, index: int, num_frames_video: int) -> np.ndarray:
        """Frame numbers item ``index`` uses in the current epoch for a video of that length.

        A pure function of (seed, index, epoch, length), so a decoder fallback that asks twice
        gets the same answer.
        """
        rng = np.random.default_rng([self.seed, index, self.epoch, 0])
        return pretrain_indices(num_frames_video, self.num_frames, self.sampling_rate, rng=rng)

    def load(self, index: int) -> tuple[torch.Tensor, bool]:
        """Decode and crop item ``index``: (uint8 ``[3, T, S, S]`` or ``[R, 3, T, S, S]``, whether frames
        were repeated to fill a too-short video); raises VideoDecodeError.

        The ``R`` crops come one after another from the crop stream of ``R = 1``, so the first clip
        of a repeated item is the clip the item gives without repeats.
        """
        frames, indices = read_clip(
            self.paths[index], lambda n: self.clip_indices(index, n), self.backend, self.decode_size
        )  # [T, H, W, 3]
        rng = np.random.default_rng([self.seed, index, self.epoch, 1])
        clip = torch.from_numpy(frames)
        if self.repeats == 1:
            return self.crop(clip, rng), is_padded(indices)  # [3, T, S, S]
        return torch.stack([self.crop(clip, rng) for _ in range(self.repeats)]), is_padded(indices)  # [R, 3, T, S, S]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        index = check_index(index, len(self))
        j, (video, padded), failures = self.policy.load(index, self.load)
        item: dict[str, torch.Tensor | str] = {
            "video": video,
            "padded": torch.tensor(int(padded), dtype=torch.int64),  # frames repeated: data/padded_clips
            "label": torch.tensor(self.labels[j], dtype=torch.int64),
            "index": torch.tensor(j, dtype=torch.int64),
            "skipped": torch.tensor((j - index) % len(self), dtype=torch.int64),  # broken videos passed over
            ITEM_KEY: encode_failures(failures),  # judged by the data module, once per run
        }
        if self.repeats > 1:
            return repeat_fields(item, self.repeats)
        return item


def repeat_fields(item: dict[str, torch.Tensor | str], repeats: int) -> dict[str, torch.Tensor | str]:
    """Give the per-clip fields of an item with ``repeats`` clips one entry per clip: ``label`` and
    ``index`` repeated, ``padded`` and ``skipped`` counted once (on the first clip) per decoded video."""
    for key in ("label", "index"):
        item[key] = cast(torch.Tensor, item[key]).repeat(repeats)  # [R]
    for key in ("padded", "skipped"):
        value = cast(torch.Tensor, item[key])
        item[key] = torch.cat([value[None], value.new_zeros(repeats - 1)])  # [R]
    return item

"""Videos named in a list file: the reference's pretraining input (SPEC §2.1-2.3).

Two list formats are read:

* the reference's: one ``<path> <label>`` per line, split on a single space, no header;
* CSV with the header line ``path,label``, so that paths may contain spaces (quote them if they
  contain commas).

Relative paths are resolved against ``root`` (default: the list file's folder), and a path whose
last component has no ``.`` gets ``.mp4`` appended, as in the reference.

Broken videos are not hidden (SPEC §10 item 5): each is logged once, counted, and replaced by the
next index; a run stops with a report when more than ``floor(max_bad_fraction * len)`` distinct
videos failed. Only decode failures are treated this way; any other exception is a bug and
propagates.
"""

from __future__ import annotations

import csv
import logging
import math
import operator
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from smile.data.decoding import Backend, VideoDecodeError, read_clip
from smile.data.sampling import pretrain_indices
from smile.data.transforms import MultiScaleCrop

log = logging.getLogger(__name__)

CSV_HEADER = "path,label"
MAX_ATTEMPTS = 10  # decode tries per __getitem__ (the requested index, then its successors)
_T = TypeVar("_T")


def _resolve(path: str, base: str) -> str:
    """Reference rule: no ``.`` in the last component means an ``.mp4`` file."""
    if "." not in os.path.basename(path):
        path += ".mp4"
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _parse_label(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{where}: label {text!r} is not an integer") from None


def _space_rows(lines: list[str], list_file: str) -> list[tuple[str, str, str]]:
    """``<path> <label>`` rows; more than one space means the path has spaces (needs CSV)."""
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split(" ")
        if len(fields) != 2:
            raise ValueError(
                f"{list_file}:{lineno}: expected '<path> <label>' separated by one space, got {line!r}. "
                f"For paths with spaces write a CSV whose first line is '{CSV_HEADER}'."
            )
        rows.append((fields[0], fields[1], f"{list_file}:{lineno}"))
    return rows


def _csv_rows(lines: list[str], list_file: str) -> list[tuple[str, str, str]]:
    rows = []
    for lineno, fields in enumerate(csv.reader(lines[1:]), 2):
        if not fields or not "".join(fields).strip():
            continue
        if len(fields) != 2:
            raise ValueError(f"{list_file}:{lineno}: expected 2 CSV fields (path,label), got {fields!r}")
        rows.append((fields[0], fields[1].strip(), f"{list_file}:{lineno}"))
    return rows


def read_video_list(
    list_file: str | os.PathLike, root: str | os.PathLike | None = None, config_key: str = "data.train_list"
) -> tuple[list[str], list[int]]:
    """Parse a list file into resolved paths and integer labels.

    Args:
        list_file: Space-separated reference list or ``path,label`` CSV (detected by its header).
        root: Folder that relative paths are relative to; default the list file's folder.
        config_key: Config key named in the error when the file is missing.

    Raises:
        FileNotFoundError: The list file does not exist (the message says which key to set).
        ValueError: Malformed line or an empty list.
    """
    list_file = os.fspath(list_file)
    if not os.path.isfile(list_file):
        raise FileNotFoundError(
            f"video list {list_file!r} not found. Set {config_key}=/path/to/train.csv "
            f"(one '<path> <label>' per line, or a CSV with header '{CSV_HEADER}'; see README: Data)."
        )
    with open(list_file, encoding="utf-8-sig", newline="") as f:
        lines = f.read().splitlines()
    is_csv = bool(lines) and lines[0].strip() == CSV_HEADER
    rows = _csv_rows(lines, list_file) if is_csv else _space_rows(lines, list_file)
    if not rows:
        raise ValueError(f"video list {list_file!r} lists no videos")
    base = os.fspath(root) if root is not None else os.path.dirname(os.path.abspath(list_file))
    paths = [_resolve(p, base) for p, _, _ in rows]
    labels = [_parse_label(label, where) for _, label, where in rows]
    return paths, labels


def check_index(index: int, length: int) -> int:
    """``index`` as a non-negative int in ``[0, length)`` (negative indices count from the end)."""
    index = operator.index(index)
    if index < 0:
        index += length
    if not 0 <= index < length:
        raise IndexError(f"index {index} out of range for {length} videos")
    return index


class BadVideoPolicy:
    """The broken-video rule of the module docstring, shared by every dataset of video files.

    Args:
        paths: The dataset's video paths (item ``i`` is ``paths[i]``).
        max_bad_fraction: Stop once more than ``floor(max_bad_fraction * len(paths))`` distinct
            videos failed (counted per process).
        source: What to name in errors (the list file).
    """

    def __init__(self, paths: Sequence[str], max_bad_fraction: float, source: str) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.paths, self.source = paths, source
        self.max_bad_fraction = float(max_bad_fraction)
        self.max_bad = math.floor(self.max_bad_fraction * len(paths) + 1e-9)
        self.bad_videos: dict[str, str] = {}  # path -> reason, this process only

    def load(self, index: int, load: Callable[[int], _T]) -> tuple[int, _T]:
        """``(j, load(j))`` for the first ``j`` from ``index`` on (wrapping) that decodes.

        Only VideoDecodeError counts as a broken video; anything else propagates.
        """
        tried = []
        for attempt in range(min(MAX_ATTEMPTS, len(self.paths))):
            j = (index + attempt) % len(self.paths)
            try:
                return j, load(j)
            except VideoDecodeError as err:
                self.record(self.paths[j], str(err))
                tried.append(self.paths[j])
        raise RuntimeError(
            f"{self.source}: none of {len(tried)} consecutive videos from index {index} "
            f"could be decoded: {tried}. Reasons: {[self.bad_videos[p] for p in tried]}"
        )

    def record(self, path: str, reason: str) -> None:
        """Warn once per path; raise once more distinct videos failed than allowed."""
        if path in self.bad_videos:
            return
        self.bad_videos[path] = reason
        log.warning(
            "skipping unreadable video (%d so far, %d allowed): %s",
            len(self.bad_videos),
            self.max_bad,
            reason,
        )
        if len(self.bad_videos) > self.max_bad:
            raise RuntimeError(self.report())

    def report(self) -> str:
        shown = list(self.bad_videos.values())[:10]
        more = len(self.bad_videos) - len(shown)
        return (
            f"{len(self.bad_videos)} of {len(self.paths)} videos in {self.source} failed to decode, more "
            f"than max_bad_fraction={self.max_bad_fraction} allows ({self.max_bad}). Fix or remove "
            f"them from the list, or raise max_bad_fraction. Failures:\n  "
            + "\n  ".join(shown)
            + (f"\n  ... and {more} more" if more > 0 else "")
        )


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
        max_bad_fraction: Stop once more than ``floor(max_bad_fraction * len(self))`` distinct videos
            failed to decode (0 = fail on the first one). Counted per process, i.e. per DataLoader
            worker, so with several workers the whole run may see a few more before stopping.
        decode_size: Optional ``(height, width)`` to decode at (cheaper); crops then refer to it.
        config_key: Config key to name when the list file is missing.

    Items are dicts ``video`` (uint8 ``[3, T, S, S]``), ``label`` and ``index`` (int64 scalars).
    ``index`` is the item actually returned, which differs from the requested one when a broken
    video was replaced by its successor.

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
        decode_size: tuple[int, int] | None = None,
        config_key: str = "data.train_list",
    ) -> None:
        for name, value in (
            ("num_frames", num_frames),
            ("sampling_rate", sampling_rate),
            ("img_size", img_size),
        ):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.list_file = os.fspath(list_file)
        self.paths, labels = read_video_list(list_file, root, config_key)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.num_frames, self.sampling_rate = int(num_frames), int(sampling_rate)
        self.backend, self.seed, self.decode_size = backend, int(seed), decode_size
        self.crop = MultiScaleCrop(int(img_size), scales)
        self.policy = BadVideoPolicy(self.paths, max_bad_fraction, self.list_file)
        self.max_bad_fraction, self.max_bad = self.policy.max_bad_fraction, self.policy.max_bad
        self.bad_videos = self.policy.bad_videos  # path -> reason, this process only
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

    def load(self, index: int) -> torch.Tensor:
        """Decode and crop item ``index``: uint8 ``[3, T, S, S]``; raises VideoDecodeError."""
        frames, _ = read_clip(
            self.paths[index], lambda n: self.clip_indices(index, n), self.backend, self.decode_size
        )  # [T, H, W, 3]
        rng = np.random.default_rng([self.seed, index, self.epoch, 1])
        return self.crop(torch.from_numpy(frames), rng)  # [3, T, S, S]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        index = check_index(index, len(self))
        j, video = self.policy.load(index, self.load)
        return {
            "video": video,
            "label": torch.tensor(self.labels[j], dtype=torch.int64),
            "index": torch.tensor(j, dtype=torch.int64),
            "skipped": torch.tensor((j - index) % len(self), dtype=torch.int64),  # broken videos passed over
        }

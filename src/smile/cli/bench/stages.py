"""``smile-bench data`` on real videos: ms per clip split into the stages of one DataLoader worker.

Two rows, measured side by side in one run (their batches alternate, so load changes hit both):

* **ours**: the project's path, called piece by piece with the list dataset's own settings: open
  the file with the decoding backend and pick the window (``open+seek``), decode the window
  (``decode``; PyAV's YUV->RGB conversion of the sampled frames is timed apart as ``conversion``,
  decord converts inside its decode), the multi-scale crop + resize of each of the ``repeats``
  clips (``crop/resize``), and the training collate (``collate``).
* **baseline**: the reference loader as SPEC §2 describes it: decord ``VideoReader(num_threads=1)``,
  ``get_batch`` of the 16 indices, each frame to an RGB PIL image, per-frame crop and PIL bilinear
  resize, stack + ``/255`` + normalise (counted as ``conversion``) and the float collate, one clip
  per decode. Same videos, windows and crop boxes as ours.

Each stage is timed with :func:`time.perf_counter` around the call, so the stages sum to the total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

STAGES = ("open+seek", "decode", "conversion", "crop/resize", "collate")


class StageTimer:
    """Seconds per stage, accumulated over many clips."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Add the time spent inside the block to ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` whose calls are counted in ``name`` (and taken out of the enclosing stage by the caller)."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)

        return wrapper


def _ours_item(ds: Any, index: int, timer: StageTimer) -> dict[str, Any]:
    """One item of the list dataset through the project's pieces (see module docstring)."""
    from smile.data.backends import READERS, decord_available
    from smile.data.datasets.list import repeat_fields

    name = "decord" if ds.backend in ("auto", "decord") and decord_available() else "pyav"
    with timer.stage("open+seek"):
        reader = READERS[name](ds.paths[index], ds.decode_size)
        indices = np.asarray(ds.clip_indices(index, reader.num_frames), dtype=np.int64)
    converted = timer.seconds["conversion"]
    if hasattr(reader, "_to_rgb"):  # PyAV converts frame by frame: time it apart from decoding
        reader._to_rgb = timer.timed("conversion", reader._to_rgb)
    with timer.stage("decode"):
        frames = torch.from_numpy(np.ascontiguousarray(reader.get(indices)))  # [T, H, W, 3]
    timer.seconds["decode"] -= timer.seconds["conversion"] - converted  # conversion ran inside decode
    with timer.stage("open+seek"):
        reader.close()
    with timer.stage("crop/resize"):
        rng = np.random.default_rng([ds.seed, index, ds.epoch, 1])
        clips = [ds.crop(frames, rng) for _ in range(ds.repeats)]  # R x [3, T, S, S]
    video = clips[0] if ds.repeats == 1 else torch.stack(clips)
    item: dict[str, Any] = {"video": video, "label": torch.tensor(int(ds.labels[index])), "index": torch.tensor(index)}
    item.update(padded=torch.tensor(0), skipped=torch.tensor(0))
    return repeat_fields(item, ds.repeats) if ds.repeats > 1 else item


def _baseline_item(ds: Any, index: int, timer: StageTimer) -> dict[str, Any]:
    """One clip the reference's way (decord + PIL, float output), same window and crop box as ours."""
    import decord
    from PIL import Image

    from smile.video import IMAGENET_MEAN, IMAGENET_STD

    with timer.stage("open+seek"):
        vr = decord.VideoReader(ds.paths[index], num_threads=1)
        indices = ds.clip_indices(index, len(vr))
    with timer.stage("decode"):
        data = vr.get_batch(list(indices)).asnumpy()  # [T, H, W, 3]
    with timer.stage("conversion"):
        images = [Image.fromarray(data[k]).convert("RGB") for k in range(len(data))]
    with timer.stage("crop/resize"):
        rng = np.random.default_rng([ds.seed, index, ds.epoch, 1])
        x, y, w, h = ds.crop.sample_crop(data.shape[1], data.shape[2], rng)
        size = (ds.crop.out_w, ds.crop.out_h)
        images = [img.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.BILINEAR) for img in images]
    with timer.stage("conversion"):  # Stack + ToTorchFormatTensor + GroupNormalize, in the worker
        clip = torch.from_numpy(np.stack([np.asarray(img) for img in images])).permute(3, 0, 1, 2).float() / 255.0
        mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
        clip = (clip - mean) / std  # float32 [3, T, S, S]
    with timer.stage("open+seek"):
        del vr
    return {"video": clip, "label": torch.tensor(int(ds.labels[index])), "index": torch.tensor(index)}


def _row(name: str, timer: StageTimer, clips: int, target: float) -> dict[str, Any]:
    total = sum(timer.seconds.values())
    row: dict[str, Any] = {"row": name}
    row.update({f"{s} ms": 1e3 * sec / clips for s, sec in timer.seconds.items()})
    row["total ms/clip"] = 1e3 * total / clips
    row["clips/s per worker"] = clips / total
    row["workers for target"] = math.ceil(target / row["clips/s per worker"])
    return row


def bench_stages(
    ds: Any,
    collate: Callable[[list[dict[str, Any]]], Any],
    order: list[int],
    items_per_batch: int,
    batches: int,
    target: float,
    baseline: bool,
) -> list[dict[str, Any]]:
    """Rows ``ours`` (and ``baseline``) per clip for ``batches`` timed batches after one warm-up batch.

    Args:
        ds: A :class:`~smile.data.datasets.list.VideoListDataset` (paths, clip_indices, crop, repeats).
        collate: The training collate (flattens repeated clips).
        order: Dataset indices to use, in order.
        items_per_batch: Videos per batch of ours (``batch_size // repeats``); the baseline takes
            ``batch_size`` videos per batch (one clip each).
        batches: Timed batches.
        target: Training rate to feed (clips/s), for the workers needed.
        baseline: Also measure the reference path.
    """
    from torch.utils.data import default_collate

    ours, ref = StageTimer(), StageTimer()
    clips_ours, clips_ref, batch = 0, 0, items_per_batch * ds.repeats
    for b in range(batches + 1):  # batch 0: warm-up, timed into throw-away timers
        t_ours, t_ref = (ours, ref) if b else (StageTimer(), StageTimer())
        items = [_ours_item(ds, i, t_ours) for i in order[b * items_per_batch : (b + 1) * items_per_batch]]
        with t_ours.stage("collate"):
            out = collate(items)
        clips_ours += out["video"].shape[0] if b else 0
        if baseline:
            picked = [order[(b * batch + k) % len(order)] for k in range(batch)]
            refs = [_baseline_item(ds, i, t_ref) for i in picked]
            with t_ref.stage("collate"):
                default_collate(refs)
            clips_ref += len(refs) if b else 0
    rows = [_row(f"ours ({ds.backend}, R={ds.repeats})", ours, clips_ours, target)]
    if baseline:
        rows.append(_row("baseline (reference: decord + PIL, R=1)", ref, clips_ref, target))
    return rows

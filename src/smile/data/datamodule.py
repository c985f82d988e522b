"""One LightningDataModule for every dataset: loading on CPU workers, augmentation on the device.

Workers return uint8 clips (4x fewer bytes over the host->device link than float32). Everything
batched — normalisation, masking (and, for SMILE, the synthetic object motion) — runs in
``on_after_batch_transfer`` on whatever device holds the batch, as DESIGN §4 describes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence, Sized
from typing import Any, cast

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from smile.data.badvideos import BadVideoMonitor
from smile.data.classes import data_classes
from smile.data.datasets.classify import collate_repeated
from smile.data.mixup import ClipMixup
from smile.data.resume import ResumableSampling
from smile.data.sampler import ResumableSampler
from smile.data.streams import step_streams
from smile.data.subsets import LowShotSubset
from smile.masking import MaskGenerator
from smile.motion import Motion
from smile.video import IMAGENET_MEAN, IMAGENET_STD, normalize


def normalize_video(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``[B, 3, T, H, W]`` uint8 (0..255) or float (0..1) -> float32 normalised (:func:`smile.video.normalize`).

    Kept as the data module's name for it: ``callbacks/probe.py``, ``smile-vis`` and ``smile-bench`` call it.
    """
    return normalize(video, mean, std)  # [B, 3, T, H, W]


class BatchSizeError(ValueError):
    """``data.batch_size`` larger than the training videos per device: no batch would ever train."""


class VideoDataModule(ResumableSampling, L.LightningDataModule):
    """Data for pretraining and classification.

    Args:
        train_dataset: Dataset returning dicts with ``video`` uint8 ``[3, T, H, W]`` and ``label``.
        val_dataset: Optional validation dataset of the same form.
        test_dataset: Optional multi-view test dataset (``video [V, 3, T, H, W]`` per item).
        batch_size: Clips **per device** per step (not the global batch), from ``batch_size // repeats`` videos.
        num_workers: DataLoader worker processes per device.
        pin_memory: Pin host memory for faster, asynchronous host->device copies.
        persistent_workers: Keep workers alive across epochs (only with ``num_workers > 0``).
        masking: A :class:`~smile.masking.MaskGenerator`: ``masking(batch_size, grid, generator=, device=,
            boxes=, patch_size=) -> bool [B, V, N]`` (True = masked), ``V = masking.masks_per_clip``;
            None for classification data.
        motion: The batched on-device object overlay (SMILE), a :class:`~smile.motion.Motion`: per step
            ``motion.sample`` draws the global batch's parameters on the CPU (same on every rank) and
            ``motion.apply`` pastes this rank's objects into its float clips in [0, 1] on the device,
            before normalisation; the parameters' boxes ``[B, K, T, 4]`` feed trajectory-aware
            masking. None = no objects (VideoMAE, SMILE stage 2).
        patch_size: Spatial patch size of the model, to derive the token grid.
        tubelet_size: Temporal patch size of the model.
        mean: Per-channel normalisation mean in [0, 1] (ImageNet by default, as the reference).
        std: Per-channel normalisation std in [0, 1].
        seed: Base seed for shuffling and for the per-step mask generator.
        drop_last: Drop the last incomplete training batch (masked models need equal batches).
        num_classes: Classes of the labels; None = from the training dataset (its index names them).
            A count that contradicts the data is an error naming both (:mod:`smile.data.classes`).
            Exposed with ``class_names`` (``class_<i>`` where nothing names them) for every output.
        collate_fn: Training collate (e.g. ``collate_repeated`` for repeated augmentation).
        eval_batch_size: Batch size of validation / test loaders (default: ``batch_size``).
        source: Where the dataset lives (root, annotations, fold): the ``data.source.*`` keys the
            dataset nodes interpolate. Accepted so that the config node can hold it; not kept.
        train_subset: Low-shot training: ``{per_class | num_videos, seed}`` for
            :class:`~smile.data.subsets.LowShotSubset` (class-balanced, seeded).
        keep_original: With motion, keep the first this many clips as they were before the objects
            were pasted, as ``batch["video_original"]`` (uint8 ``[k, 3, T, H, W]``, a view of the
            transferred batch: no copy). 0 = not kept; the media callback raises it for its pictures.
        mixup: Mixup/CutMix for finetuning (``data.mixup``), applied to training batches on the
            device after normalisation; the batch then carries ``soft_target`` ``[B, K]``.
    """

    def __init__(
        self,
        train_dataset: Dataset,
        val_dataset: Dataset | None = None,
        test_dataset: Dataset | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        masking: MaskGenerator | None = None,
        motion: Motion | None = None,
        mixup: ClipMixup | None = None,
        patch_size: int = 16,
        tubelet_size: int = 2,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        seed: int = 0,
        drop_last: bool = True,
        num_classes: int | None = None,
        collate_fn: Callable | None = None,
        eval_batch_size: int | None = None,
        source: dict[str, Any] | None = None,
        train_subset: dict[str, Any] | None = None,
        keep_original: int = 0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        self.repeats = r = int(getattr(train_dataset, "repeats", 1))  # repeated sampling: clips per decoded window
        if batch_size % r:
            raise ValueError(f"data.batch_size={batch_size} must be a multiple of data.train_dataset.repeats={r}")
        self.bad_videos = BadVideoMonitor(train_dataset, val_dataset, test_dataset)  # judged in this process
        self.num_classes, self.class_names = data_classes(num_classes, train_dataset)
        self.train_dataset = LowShotSubset(train_dataset, **train_subset) if train_subset else train_dataset
        self.val_dataset = val_dataset
        self.test_dataset = test_dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.masking = masking
        self.motion = motion
        self.mixup = mixup
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.mean = tuple(mean)
        self.std = tuple(std)
        self.seed = seed
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.train_items_per_batch = batch_size // self.repeats  # videos per training batch
        self.train_collate = collate_repeated if collate_fn is None and self.repeats > 1 else collate_fn  # flattens
        self.eval_batch_size = eval_batch_size or batch_size
        self.keep_original = int(keep_original)
        self._init_sampling()
        self._eval_batches = 0

    @property
    def num_mask_views(self) -> int:
        """Masks per clip (2 with the reference's "multiple sampling")."""
        return self.masking.masks_per_clip if self.masking is not None else 1

    @property
    def num_sample(self) -> int:
        """Augmented copies per decoded clip in a training batch (repeated augmentation)."""
        return int(getattr(self.train_dataset, "num_sample", 1))

    def _loader(self, dataset: Dataset, sampler: ResumableSampler, drop_last: bool, train: bool = False) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.train_items_per_batch if train else self.eval_batch_size,
            collate_fn=self.train_collate if train else None,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers,
            drop_last=drop_last,
            # Worker seeds come from this generator, not the global RNG, so creating an iterator
            # (e.g. after a resume) does not shift the stream that dropout / drop-path draw from.
            generator=torch.Generator().manual_seed(self.seed + 7919 * self._rank_world()[0]),
        )

    def train_dataloader(self) -> DataLoader:
        sampler = self._train_sampler_for(
            len(cast(Sized, self.train_dataset)), self.drop_last, getattr(self.train_dataset, "set_epoch", None)
        )
        fits = len(sampler) * self.repeats  # clips; full batches only, else Lightning trains on nothing
        if self.drop_last and fits < self.batch_size:
            what = "videos" if self.repeats == 1 else f"clips ({self.repeats} per video)"
            raise BatchSizeError(
                f"data.batch_size={self.batch_size} is more than the {fits} training {what} per device "
                f"({sampler.num_samples} on {self._rank_world()[1]} device(s)): use data.batch_size <= {fits}"
            )
        return self._loader(self.train_dataset, sampler, self.drop_last, train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.val_dataset)

    def test_dataloader(self) -> DataLoader | list:
        return self._eval_loader(self.test_dataset)

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader | list:
        """In-order shards; with several ranks the last shard is padded (evaluation de-duplicates by id)."""
        if dataset is None:
            return []
        return self._loader(dataset, self._eval_sampler_for(len(cast(Sized, dataset))), drop_last=False)

    def state_dict(self) -> dict[str, Any]:
        """Where the training sampler stands, so a resumed run continues the same epoch order; bad videos."""
        return {**self.sampling_state(), **self.bad_videos.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.load_sampling_state(self.bad_videos.load_state_dict(state_dict))  # it takes its entry, returns the rest

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Overlay objects, normalise, mask and (training batches) Mixup/CutMix, on the batch's device.

        uint8 clips (pretraining, synthetic data) are normalised here; float clips come already
        normalised from CPU-side augmentation (finetuning's RandAugment works on images). With
        ``mixup``, training batches leave with mixed clips and ``soft_target`` ``[B, K]``.
        """
        self.bad_videos.observe(batch, self)  # counts and may stop the run (TooManyBadVideos)
        batch = self._overlay_normalise_mask(batch)
        trainer = self.trainer
        if self.mixup is not None and trainer is not None and trainer.training:
            batch["video"], batch["soft_target"] = self.mixup(batch["video"], batch["label"])
        return batch

    def _overlay_normalise_mask(self, batch: dict[str, Any]) -> dict[str, Any]:
        video = batch["video"]  # uint8 [B, 3, T, H, W] (or float, normalised)
        if video.dtype != torch.uint8:
            return batch
        cpu_gen, bg_gen, dev_gen = self._step_generators(video.device)
        rank, world = self._rank_world()
        boxes = None  # the global batch's object boxes, when there are objects
        if self.motion is not None:
            b, _, t, h, w = video.shape
            params = self.motion.sample(b * world, t, (h, w), generator=cpu_gen)  # the global batch, on the CPU
            mine = params.select(slice(rank, None, world)) if world > 1 else params
            clip = self.motion.apply(video.float() / 255.0, mine, generator=bg_gen)  # [B, 3, T, H, W] in [0, 1]
            boxes = params.boxes.to(video.device)  # [B * world, K, T, 4]
            batch["boxes"] = boxes[rank::world]  # this rank's clips
            if self.keep_original > 0:
                batch["video_original"] = video[: self.keep_original]  # uint8 [k, 3, T, H, W], a view
            batch["video"] = normalize_video(clip, self.mean, self.std)
        else:
            batch["video"] = normalize_video(video, self.mean, self.std)
        if self.masking is not None:
            batch["mask"] = self._make_masks(self.masking, video, boxes, dev_gen)  # bool [B, V, N]
        return batch

    def _make_masks(
        self, masking: MaskGenerator, video: torch.Tensor, boxes: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        """Masks for this rank's clips.

        Masks (and, in ``on_after_batch_transfer``, the objects' trajectories and sprites) are drawn
        for the whole global batch from rank-independent streams, and each rank keeps its rows (rank
        r holds global rows r, r + W, ... like the sampler): a run on W devices sees exactly the
        objects and masks of a 1-device run with a W times larger batch. ``boxes`` are the global
        batch's (``[B * W, K, T, 4]``) or None.
        """
        grid, b = self.token_grid(video.shape), video.shape[0]
        rank, world = self._rank_world()
        masks = masking(
            b * world, grid, generator=generator, device=video.device, boxes=boxes, patch_size=self.patch_size
        )
        return masks[rank::world]

    def token_grid(self, video_shape: Sequence[int]) -> tuple[int, int, int]:
        """(t, h, w) token grid of a ``[B, 3, T, H, W]`` clip."""
        _, _, t, h, w = video_shape
        return t // self.tubelet_size, h // self.patch_size, w // self.patch_size

    def _step_generators(self, device: torch.device) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
        """This step's random streams (:func:`~smile.data.streams.step_streams`): training steps count
        batches, evaluation batches get streams of their own."""
        trainer = self.trainer
        rank, world = self._rank_world()
        if trainer is not None and trainer.training:
            step = trainer.fit_loop.epoch_loop.batch_progress.total.ready
        else:  # evaluation: their own stream, never colliding with training steps
            step = (1 << 62) + self._eval_batches
            self._eval_batches += 1
        return step_streams(self.seed, step, rank, world, device)

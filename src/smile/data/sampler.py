"""A shuffling sampler that can resume in the middle of an epoch.

Lightning restores model, optimizer and loop counters from a checkpoint, but a plain sampler
restarts its epoch from the first batch, so a resumed run would see different clips than an
uninterrupted one. This sampler is a pure function of ``(seed, epoch, rank)`` and can skip the
samples the interrupted run already consumed, which makes resumed runs reproduce uninterrupted
ones exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Epoch-seeded (optionally distributed) sampler with a mid-epoch start offset.

    Args:
        num_samples: Length of the dataset.
        shuffle: Draw a new permutation every epoch (seeded by ``seed + epoch``).
        seed: Base seed shared by all ranks, so that ranks partition one permutation.
        rank: This process's rank; it takes indices ``rank, rank + world_size, ...``.
        world_size: Number of processes.
        drop_last: Drop the tail so every rank gets the same number of samples; otherwise pad
            by repeating from the start (as ``DistributedSampler`` does).
        on_epoch: Called with the epoch number by ``set_epoch`` (e.g. ``dataset.set_epoch``, so
            per-epoch augmentation draws change even in persistent workers).
    """

    def __init__(
        self,
        num_samples: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank={rank} must be in [0, world_size={world_size})")
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.on_epoch = on_epoch
        self.epoch = 0
        self.epoch_offset = 0  # data epoch minus the trainer's epoch number (see `resume`)
        self._skip = 0  # samples of `self.epoch` already consumed before a resume

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.world_size
        return math.ceil(self.num_samples / self.world_size)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch; a new epoch forgets any skip."""
        epoch += self.epoch_offset
        if epoch != self.epoch:
            self._skip = 0
        self.epoch = epoch
        if self.on_epoch is not None:
            self.on_epoch(epoch)

    def resume(self, epoch: int, consumed: int, trainer_epoch: int | None = None) -> None:
        """Start the next iteration of ``epoch`` after its first ``consumed`` samples (this rank).

        ``trainer_epoch`` is the epoch number the trainer will resume into. Lightning counts an
        epoch as finished when a run stops early inside it, so the two can differ by one; the
        offset keeps the data order of an uninterrupted run.
        """
        self.epoch_offset = 0 if trainer_epoch is None else epoch - trainer_epoch
        self.epoch = epoch
        if self.on_epoch is not None:
            self.on_epoch(epoch)
        self._skip = max(0, int(consumed))

    def _rank_indices(self) -> list[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=gen).tolist()
        else:
            order = list(range(self.num_samples))
        total = len(self) * self.world_size
        if total > len(order):  # pad so every rank has the same count
            order += order[: total - len(order)]
        return order[:total][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        indices = self._rank_indices()[self._skip :]
        self._skip = 0  # the offset applies to one pass only
        return iter(indices)

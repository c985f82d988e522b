"""Seeded, class-balanced low-shot subsets of a labelled dataset (the same subset for every model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def lowshot_subset(
    labels: Sequence[int] | Tensor, per_class: int | None = None, num_videos: int | None = None, seed: int = 99999
) -> list[int]:
    """Indices of a seeded, class-balanced low-shot subset.

    ``per_class`` clips of every class, or ``num_videos`` spread as ``ceil(num_videos / C)`` per
    class (the SEVERE "10^3" protocol of SIGMA, SPEC §8.8.3: 10 per class on UCF101 = 1,010 clips;
    default seed 99999 as there). Classes with fewer clips contribute all of theirs. The draw
    depends only on the labels and the seed, so every model compared gets the same subset.
    """
    if (per_class is None) == (num_videos is None):
        raise ValueError("give exactly one of per_class or num_videos")
    label_array = np.asarray(labels)
    classes = np.unique(label_array)
    if num_videos is not None:
        if num_videos < 1:
            raise ValueError(f"num_videos={num_videos} must be >= 1")
        per_class = -(-num_videos // len(classes))
    assert per_class is not None  # exactly one of the two was given
    if per_class < 1:
        raise ValueError(f"per_class={per_class} must be >= 1")
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in classes:
        members = np.flatnonzero(label_array == cls)
        chosen += rng.choice(members, size=min(per_class, len(members)), replace=False).tolist()
    return sorted(chosen)


class LowShotSubset(torch.utils.data.Subset):
    """A dataset restricted to :func:`lowshot_subset` of its ``labels``; other attributes pass through."""

    def __init__(self, dataset, per_class: int | None = None, num_videos: int | None = None, seed: int = 99999):
        super().__init__(dataset, lowshot_subset(dataset.labels, per_class, num_videos, seed))
        self.labels = np.asarray(dataset.labels)[self.indices]

    def __getattr__(self, name: str):
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

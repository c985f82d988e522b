"""timm's RandAugment and RandomErasing applied to clips (SPEC §7.1.1, §7.1.5).

timm draws from Python's, NumPy's and torch's global RNGs; every transform here draws one seed
from the item's ``numpy.random.Generator`` and seeds (then restores) those globals around timm's
call, so augmentations are a pure function of (seed, index, epoch).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp

from smile.data.transforms.common import _check_4d, _check_frames

RAND_AUGMENT = "rand-m7-n4-mstd0.5-inc1"
RAND_AUGMENT_FILL = (128, 128, 128)  # the reference never passes img_mean: timm's default grey fill


@contextmanager
def _seeded_global_rngs(seed: int, with_torch: bool = False) -> Iterator[None]:
    """Seed Python's, NumPy's (and torch's CPU) global RNGs, restoring their states afterwards.

    timm's RandAugment and RandomErasing draw from these globals; seeding them from the item's own
    generator makes augmentations a pure function of (seed, index, epoch), and restoring the
    states keeps the rest of the process unaffected. Not thread-safe (DataLoader workers are
    processes).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        if with_torch:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                yield
        else:
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**32))


class ClipRandAugment:
    """timm's RandAugment with the same ops and magnitudes on every frame of a clip (SPEC §7.1.1).

    How frames stay consistent: one seed is drawn per clip, and Python's and NumPy's global RNGs
    (the only randomness timm's RandAugment uses: op choice, apply-or-skip, magnitude noise, sign)
    are reset to it before each frame. timm's draws never depend on pixel values, so every frame
    gets the identical op list with identical arguments, which is what the reference's video
    copy of RandAugment does by drawing once and mapping the ops over the frame list.

    Args:
        config_str: timm RandAugment string; the reference's is ``rand-m7-n4-mstd0.5-inc1``.
        img_size: Training crop side; translations use ``int(0.45 * img_size)`` (the relative
            ``TranslateXRel/YRel`` ops of the increasing set use 45 % of the frame in any case).
        interpolation: Resampling of the geometric ops (reference: bicubic).
        fill: Colour of pixels uncovered by geometric ops.
    """

    def __init__(
        self,
        config_str: str = RAND_AUGMENT,
        img_size: int = 224,
        interpolation: str = "bicubic",
        fill: Sequence[int] = RAND_AUGMENT_FILL,
    ) -> None:
        self.config_str = config_str
        hparams = {
            "translate_const": int(img_size * 0.45),
            "img_mean": tuple(int(v) for v in fill),
            "interpolation": str_to_pil_interp(interpolation),
        }
        self.augment = rand_augment_transform(config_str, hparams)

    def __call__(self, frames: torch.Tensor | np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, H, W, 3]``, one seed drawn from ``rng``."""
        _check_frames(frames)
        arr = frames.numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
        seed = _draw_seed(rng)
        out = np.empty_like(arr)
        for t, frame in enumerate(arr):
            with _seeded_global_rngs(seed):
                out[t] = np.asarray(self.augment(Image.fromarray(frame)))
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config_str!r})"


class ClipRandomErasing:
    """timm's RandomErasing applied independently to every frame (SPEC §7.1.5).

    The frames are handed to timm as a batch ``[T, 3, H, W]``, as the reference does, so each
    frame is erased (or not) with its own probability, box and per-pixel N(0, 1) noise. The
    reference passes ``num_splits=count``, which with ``count > 1`` leaves the first
    ``T // count`` frames untouched; here ``num_splits=0`` (identical for the default count 1).

    Args:
        prob: Probability of erasing each frame.
        mode: ``"pixel"`` (per-pixel noise), ``"rand"`` (per-box colour) or ``"const"`` (zeros).
        count: Largest number of boxes per frame.
    """

    def __init__(self, prob: float = 0.25, mode: str = "pixel", count: int = 1) -> None:
        self.prob, self.mode, self.count = float(prob), mode, int(count)
        self.eraser = RandomErasing(probability=self.prob, mode=mode, max_count=self.count, num_splits=0, device="cpu")

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Float CPU ``[3, T, H, W]`` (normalised) -> the same tensor, erased in place."""
        _check_4d(clip, type(self).__name__)
        with _seeded_global_rngs(_draw_seed(rng), with_torch=True):
            self.eraser(clip.permute(1, 0, 2, 3))  # [T, 3, H, W] view: frames as a batch
        return clip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prob={self.prob}, mode={self.mode!r}, count={self.count})"

"""Finetuning pipelines (SPEC §7.1-7.2): the training transform and the evaluation transform.

:class:`FinetuneTrainTransform` (RandAugment, normalise, random resized crop, flip, random
erasing; float output, see below for why) and :class:`EvalTransform` (short-side resize, centre
or three crops). Every random transform takes the item's ``numpy.random.Generator``, so
augmentations are a pure function of (seed, index, epoch) even where timm draws from the global
RNGs.

The training clip leaves the worker as a normalised float tensor, unlike pretraining's uint8
path: RandAugment needs PIL/uint8 frames on the CPU, the reference then normalises *before*
the random resized crop (bilinear on floats) and random erasing fills with N(0, 1) noise that
only means something in normalised units. Moving the crop and erasing to the device would
change the numbers (rounding to uint8 between steps), so the whole recipe stays in the worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from smile.data.transforms.augment import RAND_AUGMENT, ClipRandAugment, ClipRandomErasing
from smile.data.transforms.common import _check_frames, normalize_clip
from smile.data.transforms.crops import RandomHorizontalFlipClip, RandomResizedCropClip, ShortSideResize, ThreeCrops
from smile.video import IMAGENET_MEAN, IMAGENET_STD


class FinetuneTrainTransform:
    """The reference's training augmentation of one clip, in SPEC §7.1's order (``flip=False`` for SSv2).

    RandAugment (PIL, same ops on every frame) -> ToTensor + normalise -> random resized crop ->
    horizontal flip -> random erasing (``erase_cube=True``: one draw per clip, the same box in every
    frame, as the reference; ``False``: timm's erasing of each frame on its own). Steps that are
    off (``aa=None``, ``flip=False``, ``reprob=0``) are skipped without consuming randomness.

    Call with uint8 ``[T, H, W, 3]`` and a generator; returns float32 ``[3, T, S, S]``.
    """

    def __init__(
        self,
        img_size: int = 224,
        aa: str | None = RAND_AUGMENT,
        scale: Sequence[float] = (0.25, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        flip: bool = True,
        reprob: float = 0.25,
        remode: str = "pixel",
        recount: int = 1,
        erase_cube: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bicubic",
    ) -> None:
        self.rand_augment = ClipRandAugment(aa, img_size, interpolation) if aa else None
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop = RandomResizedCropClip(img_size, scale, ratio)
        self.flip = RandomHorizontalFlipClip(0.5) if flip else None
        self.erase = ClipRandomErasing(reprob, remode, recount, erase_cube) if reprob > 0 else None

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` -> float32 normalised ``[3, T, S, S]``."""
        _check_frames(frames)
        if self.rand_augment is not None:
            frames = self.rand_augment(frames, rng)  # uint8 [T, H, W, 3]
        # Normalising is elementwise, so normalising only the crop box gives the same numbers as
        # normalising the frame and then cropping (the reference's order), at a fraction of the cost.
        top, left, h, w = self.crop.sample_crop(frames.shape[1], frames.shape[2], rng)
        clip = normalize_clip(frames[:, top : top + h, left : left + w], self.mean, self.std)  # [3, T, h, w]
        clip = self.crop.resize(clip)  # [3, T, S, S]
        if self.flip is not None:
            clip = self.flip(clip, rng)
        if self.erase is not None:
            clip = self.erase(clip.contiguous(), rng)
        return clip.contiguous()

    def __repr__(self) -> str:
        steps = [self.rand_augment, "normalize", self.crop, self.flip, self.erase]
        return f"{type(self).__name__}({', '.join(str(s) for s in steps if s is not None)})"


class EvalTransform:
    """Validation / test spatial pipeline: short-side resize, centre or three crops, normalise.

    The resize runs on uint8 frames (as the reference, which resizes before ToTensor), and can be
    run once on every frame a video needs (:meth:`resize`) before cutting many views
    (:meth:`crops`).

    Args:
        img_size: Crop side S.
        short_side: Short side after resizing (must be >= S).
        crop: ``"centre"`` (validation) or ``"three"`` (test).
        num_crops: Crops for ``"three"``.
        mean, std: Normalisation; ``normalize=False`` returns uint8 crops instead (normalise on the
            device: a K400 test video is 21 views, ~200 MB as float32 at 224 px).
    """

    def __init__(
        self,
        img_size: int = 224,
        short_side: int = 224,
        crop: str = "centre",
        num_crops: int = 3,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        normalize: bool = True,
    ) -> None:
        if crop not in ("centre", "center", "three"):
            raise ValueError(f"crop must be 'centre' or 'three', got {crop!r}")
        if short_side < img_size:
            raise ValueError(f"short_side ({short_side}) must be >= img_size ({img_size})")
        self.resizer = ShortSideResize(short_side)
        self.cropper = ThreeCrops(img_size, num_crops) if crop == "three" else ThreeCrops(img_size, 1)
        self.single = crop != "three"
        self.mean, self.std, self.normalize = tuple(mean), tuple(std), normalize

    @property
    def num_crops(self) -> int:
        return self.cropper.num_crops

    def resize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` -> uint8 ``[T, 3, h, w]`` (channels-last memory, no copy of layout)."""
        _check_frames(frames)
        return self.resizer(frames.permute(0, 3, 1, 2))

    def crops(self, resized: torch.Tensor) -> torch.Tensor:
        """``[T, 3, h, w]`` -> ``[n, 3, T, S, S]`` (float normalised, or uint8)."""
        views = self.cropper(resized)  # [n, T, 3, S, S]
        if not self.normalize:
            return views.permute(0, 2, 1, 3, 4).contiguous()
        return torch.stack([normalize_clip(v.permute(0, 2, 3, 1), self.mean, self.std) for v in views])

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, H, W, 3]`` -> ``[3, T, S, S]`` (centre) or ``[n, 3, T, S, S]`` (three)."""
        out = self.crops(self.resize(frames))
        return out[0] if self.single else out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.resizer}, {self.cropper}, normalize={self.normalize})"

"""Spatial clip augmentations (one crop shared by all frames of a clip).

Pretraining (:class:`MultiScaleCrop`): workers keep clips in uint8 end to end (DESIGN §4), so
that path never builds float copies on the CPU: PyTorch resizes uint8 ``channels_last`` tensors
directly.

Finetuning (SPEC §7.1-7.2): :class:`FinetuneTrainTransform` (RandAugment, normalise, random
resized crop, flip, random erasing; float output, see :mod:`~smile.data.transforms.finetune` for
why) and :class:`EvalTransform` (short-side resize, centre or three crops). Every random transform
takes the item's ``numpy.random.Generator``, so augmentations are a pure function of (seed, index,
epoch) even where timm draws from the global RNGs.

Modules:

- ``common``: :func:`resize_clip`, :func:`normalize_clip` and shape checks shared by the others.
- ``pretrain``: :class:`MultiScaleCrop` and its fixed grid (``FIXED_OFFSETS``).
- ``augment``: timm's RandAugment and RandomErasing per clip, seeded from the item's generator.
- ``crops``: random resized crop, flip, short-side resize, centre and three crops.
- ``finetune``: the composed training and evaluation transforms.
"""

from smile.data.transforms.augment import RAND_AUGMENT, RAND_AUGMENT_FILL, ClipRandAugment, ClipRandomErasing
from smile.data.transforms.common import normalize_clip, resize_clip
from smile.data.transforms.crops import (
    CenterCropClip,
    RandomHorizontalFlipClip,
    RandomResizedCropClip,
    ShortSideResize,
    ThreeCrops,
)
from smile.data.transforms.finetune import EvalTransform, FinetuneTrainTransform
from smile.data.transforms.pretrain import FIXED_OFFSETS, SNAP_PX, MultiScaleCrop

__all__ = [
    "FIXED_OFFSETS",
    "RAND_AUGMENT",
    "RAND_AUGMENT_FILL",
    "SNAP_PX",
    "CenterCropClip",
    "ClipRandAugment",
    "ClipRandomErasing",
    "EvalTransform",
    "FinetuneTrainTransform",
    "MultiScaleCrop",
    "RandomHorizontalFlipClip",
    "RandomResizedCropClip",
    "ShortSideResize",
    "ThreeCrops",
    "normalize_clip",
    "resize_clip",
]

"""Spatial clip augmentations (one crop shared by all frames of a clip).

Pretraining (:class:`MultiScaleCrop`): workers keep clips in uint8 end to end (DESIGN §4), so
that path never builds float copies on the CPU: PyTorch resizes uint8 ``channels_last`` tensors
directly.

Finetuning (SPEC §7.1-7.2): :func:`finetune_train_transform` (RandAugment, normalise, random
resized crop, flip, random erasing; float output, see the section comment for why) and
:func:`eval_transform` (short-side resize, centre or three crops). Every random transform takes
the item's ``numpy.random.Generator``, so augmentations are a pure function of (seed, index,
epoch) even where timm draws from the global RNGs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp

from smile.teachers.targets import IMAGENET_MEAN, IMAGENET_STD

# The 13 fixed crop positions of the multi-scale crop, as multiples of the grid step
# (dx, dy) = ((W - cw) // 4, (H - ch) // 4); the first five are used when more_fix_crop=False.
FIXED_OFFSETS: tuple[tuple[int, int], ...] = (
    (0, 0),  # upper-left corner
    (4, 0),  # upper-right corner
    (0, 4),  # lower-left corner
    (4, 4),  # lower-right corner
    (2, 2),  # centre
    (0, 2),  # centre-left edge
    (4, 2),  # centre-right edge
    (2, 4),  # lower-centre edge
    (2, 0),  # upper-centre edge
    (1, 1),  # upper-left quarter point
    (3, 1),  # upper-right quarter point
    (1, 3),  # lower-left quarter point
    (3, 3),  # lower-right quarter point
)
SNAP_PX = 3  # candidate sides closer than this to the output side become the output side


def resize_clip(clip: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of uint8 frames ``[T, 3, h, w]`` -> ``[T, 3, *size]``, ignoring aspect ratio.

    With ``antialias=True`` this matches PIL's ``Image.resize(..., BILINEAR)`` (what the reference
    uses) to within one grey level: PIL widens the bilinear kernel when shrinking, and so does
    PyTorch's antialiased mode. Plain bilinear (``antialias=False``) samples only 2x2 pixels and
    differs from PIL by up to ~25 levels on textured downscales; both are identical when upscaling.
    On CPU the uint8 ``channels_last`` kernel runs without a float copy; elsewhere the resize runs
    in float32 and rounds back.
    """
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    if clip.device.type == "cpu":
        clip = clip.contiguous(memory_format=torch.channels_last)
        return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    out = F.interpolate(clip.float(), size=size, mode="bilinear", align_corners=False, antialias=antialias)
    return out.round_().clamp_(0, 255).to(torch.uint8)


class MultiScaleCrop:
    """The TSN multi-scale crop used for SMILE/VideoMAE pretraining (SPEC §2.3).

    A crop whose sides are picked from ``scales`` of the frame's short side (sides may differ by at
    most ``max_distort`` scale steps, so the aspect ratio varies) is placed at one of 13 fixed grid
    positions and resized to ``size``. The fixed grid (rather than a uniform offset) is what the
    reference does; corners and edges are therefore over-represented relative to a uniform crop.

    Args:
        size: Output side, or ``(height, width)``.
        scales: Fractions of ``min(H, W)`` that give the candidate crop sides (``int`` truncation).
        max_distort: Largest allowed ``|i - j|`` between the scale indices of height and width.
        fix_crop: Use the fixed grid positions; otherwise a uniform random offset.
        more_fix_crop: Use all 13 grid positions rather than the first 5 (corners and centre).
        antialias: PIL-like resize (see :func:`resize_clip`).

    Randomness: ``sample_crop`` makes one ``rng.integers`` draw for the (width, height) pair, then
    one for the position (two for a uniform offset when ``fix_crop=False``).
    """

    def __init__(
        self,
        size: int | Sequence[int] = 224,
        scales: Sequence[float] = (1, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        fix_crop: bool = True,
        more_fix_crop: bool = True,
        antialias: bool = True,
    ) -> None:
        self.out_h, self.out_w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if not scales or any(not 0 < s <= 1 for s in scales):
            raise ValueError(f"scales must be non-empty fractions in (0, 1], got {tuple(scales)}")
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = int(max_distort)
        self.fix_crop, self.more_fix_crop, self.antialias = fix_crop, more_fix_crop, antialias

    def scale_pairs(self, height: int, width: int) -> list[tuple[int, int]]:
        """Candidate ``(crop_w, crop_h)`` pairs for a frame; 10 for 4 scales and max_distort=1.

        Sides are ``int(min(H, W) * s)``; a side closer than 3 px to the output side snaps to it
        (so 256-px video at scale 0.875 crops exactly 224 and is not resized). A snapped side is
        capped at the frame side; the reference would instead pad such a crop with black.
        """
        sides = [int(min(height, width) * s) for s in self.scales]
        crop_h = [min(self._snap(c, self.out_h), height) for c in sides]
        crop_w = [min(self._snap(c, self.out_w), width) for c in sides]
        n = len(sides)
        return [(crop_w[j], crop_h[i]) for i in range(n) for j in range(n) if abs(i - j) <= self.max_distort]

    @staticmethod
    def _snap(side: int, target: int) -> int:
        return target if abs(side - target) < SNAP_PX else side

    def offsets(self, height: int, width: int, crop_w: int, crop_h: int) -> list[tuple[int, int]]:
        """The fixed ``(x, y)`` positions for one crop size (5 or 13, see ``FIXED_OFFSETS``)."""
        step_x, step_y = (width - crop_w) // 4, (height - crop_h) // 4
        grid = FIXED_OFFSETS if self.more_fix_crop else FIXED_OFFSETS[:5]
        return [(i * step_x, j * step_y) for i, j in grid]

    def sample_crop(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Draw one crop ``(x, y, crop_w, crop_h)`` for a ``height x width`` frame."""
        pairs = self.scale_pairs(height, width)
        crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
        if self.fix_crop:
            offsets = self.offsets(height, width, crop_w, crop_h)
            x, y = offsets[int(rng.integers(len(offsets)))]
        else:
            x = int(rng.integers(0, width - crop_w, endpoint=True))
            y = int(rng.integers(0, height - crop_h, endpoint=True))
        return x, y, crop_w, crop_h

    def __call__(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Crop every frame at the same place and resize.

        Args:
            frames: uint8 ``[T, H, W, 3]`` (the layout decoders return).
            rng: Source of the crop.

        Returns:
            uint8 ``[3, T, out_h, out_w]`` (the layout models consume).
        """
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames [T, H, W, 3], got {tuple(frames.shape)}")
        x, y, crop_w, crop_h = self.sample_crop(frames.shape[1], frames.shape[2], rng)
        crop = frames[:, y : y + crop_h, x : x + crop_w].permute(0, 3, 1, 2)  # [T, 3, ch, cw]
        out = resize_clip(crop, (self.out_h, self.out_w), self.antialias)  # [T, 3, oh, ow]
        return out.permute(1, 0, 2, 3).contiguous()  # [3, T, oh, ow]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(size=({self.out_h}, {self.out_w}), scales={self.scales}, "
            f"max_distort={self.max_distort}, fix_crop={self.fix_crop}, "
            f"more_fix_crop={self.more_fix_crop}, antialias={self.antialias})"
        )


# --- Finetuning (SPEC §7.1) -------------------------------------------------------------------
# The training clip leaves the worker as a normalised float tensor, unlike pretraining's uint8
# path: RandAugment needs PIL/uint8 frames on the CPU, the reference then normalises *before*
# the random resized crop (bilinear on floats) and random erasing fills with N(0, 1) noise that
# only means something in normalised units. Moving the crop and erasing to the device would
# change the numbers (rounding to uint8 between steps), so the whole recipe stays in the worker.

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


def _resize(clip: torch.Tensor, size: tuple[int, int], antialias: bool) -> torch.Tensor:
    """Bilinear resize of the last two dims of a 4-D clip; uint8 stays uint8 (see resize_clip)."""
    if clip.dtype == torch.uint8:
        return resize_clip(clip, size, antialias)
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    return F.interpolate(clip, size=size, mode="bilinear", align_corners=False, antialias=antialias)


def _check_4d(clip: torch.Tensor, what: str) -> None:
    if clip.ndim != 4:
        raise ValueError(f"{what} expects a 4-D clip [A, B, H, W], got {tuple(clip.shape)}")


def _check_frames(frames: torch.Tensor | np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {tuple(frames.shape)}")


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


def normalize_clip(
    clip: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> float32 ``[3, T, H, W]``: ``(x / 255 - mean) / std``."""
    _check_frames(clip)
    shape = (3, 1, 1, 1)
    m = torch.tensor(mean, dtype=torch.float32, device=clip.device).view(shape)
    s = torch.tensor(std, dtype=torch.float32, device=clip.device).view(shape)
    out = torch.empty((3, *clip.shape[:3]), dtype=torch.float32, device=clip.device)
    out.copy_(clip.permute(3, 0, 1, 2))  # one strided pass; ~7x faster than permuting a float result
    return out.div_(255.0).sub_(m).div_(s)  # [3, T, H, W]


class RandomResizedCropClip:
    """Random resized crop, one crop for all frames (SPEC §7.1.3; torchvision's sampling rule).

    Up to 10 tries draw an area fraction ``U(scale)`` and a log-uniform aspect ratio in ``ratio``;
    the first crop that fits is placed uniformly. Otherwise the whole frame, cut to the nearest
    allowed ratio and centred. The crop is resized bilinearly without antialiasing, as the
    reference's ``F.interpolate`` on the normalised float clip.

    Args:
        size: Output side S.
        scale: Range of the crop's area as a fraction of the frame (SMILE: 0.25-1; VideoMAE 0.08-1).
        ratio: Range of width / height (reference: 0.75-1.3333).
        antialias: Antialiased resize (PIL-like) instead of the reference's plain bilinear.

    Randomness: ``rng.uniform`` twice per try, then two ``rng.integers`` for the position.
    """

    def __init__(
        self,
        size: int = 224,
        scale: Sequence[float] = (0.25, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        antialias: bool = False,
    ) -> None:
        if not 0 < scale[0] <= scale[1] or not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"scale and ratio must be increasing positive ranges, got {scale}, {ratio}")
        self.size, self.antialias = int(size), antialias
        self.scale, self.ratio = (float(scale[0]), float(scale[1])), (float(ratio[0]), float(ratio[1]))

    def sample_crop(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """Draw ``(top, left, crop_h, crop_w)`` for a ``height x width`` frame."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h, endpoint=True))
                left = int(rng.integers(0, width - w, endpoint=True))
                return top, left, h, w
        return self._fallback(height, width)

    def _fallback(self, height: int, width: int) -> tuple[int, int, int, int]:
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            w, h = int(round(height * self.ratio[1])), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def resize(self, crop: torch.Tensor) -> torch.Tensor:
        """Resize an already cut ``[A, B, h, w]`` crop to ``[A, B, S, S]``."""
        _check_4d(crop, type(self).__name__)
        return _resize(crop, (self.size, self.size), self.antialias)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """``[A, B, H, W]`` (e.g. float ``[3, T, H, W]``) -> ``[A, B, S, S]``, same dtype."""
        _check_4d(clip, type(self).__name__)
        top, left, h, w = self.sample_crop(clip.shape[-2], clip.shape[-1], rng)
        return self.resize(clip[..., top : top + h, left : left + w])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlipClip:
    """Mirror every frame (last dim) with probability ``p``; one ``rng.uniform`` draw per clip."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = float(p)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """``[..., H, W]`` -> same shape; the draw is made even when ``p`` is 0 or 1."""
        return clip.flip(-1) if rng.uniform() < self.p else clip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class ShortSideResize:
    """Resize so the short side is ``size``, keeping the aspect ratio (reference's ``Resize(int)``).

    The long side is ``int(size * long / short)`` (truncated). A clip whose short side already
    equals ``size`` is returned as is. The reference resizes with cv2 ``INTER_LINEAR``, i.e.
    plain bilinear without antialiasing, hence ``antialias=False`` by default.
    """

    def __init__(self, size: int = 224, antialias: bool = False) -> None:
        self.size, self.antialias = int(size), antialias

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """``(new_h, new_w)`` for a ``height x width`` frame."""
        if width < height:
            return int(self.size * height / width), self.size
        return self.size, int(self.size * width / height)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """``[A, B, H, W]`` -> ``[A, B, h, w]`` with ``min(h, w) = size``; uint8 stays uint8."""
        _check_4d(clip, type(self).__name__)
        return _resize(clip, self.output_size(clip.shape[-2], clip.shape[-1]), self.antialias)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


def _centre_offset(length: int, size: int) -> int:
    """The reference's ``int(round((length - size) / 2))`` (Python's round: halves to even)."""
    return int(round((length - size) / 2.0))


def _check_fits(height: int, width: int, size: int) -> None:
    if size > height or size > width:
        raise ValueError(f"crop {size}x{size} larger than the {height}x{width} frame")


class CenterCropClip:
    """The centred ``size x size`` crop of every frame (reference ``CenterCrop``)."""

    def __init__(self, size: int = 224) -> None:
        self.size = int(size)

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """``[..., H, W]`` -> ``[..., S, S]`` (a view)."""
        height, width = clip.shape[-2:]
        _check_fits(height, width, self.size)
        top, left = _centre_offset(height, self.size), _centre_offset(width, self.size)
        return clip[..., top : top + self.size, left : left + self.size]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class ThreeCrops:
    """The reference's test crops: ``num_crops`` squares spread along the longer side.

    Landscape frames (``W > H``) give left, centre, right; portrait and square frames
    (``H >= W``) top, centre, bottom. Crop ``k`` starts at ``int(k * (long - S) / (num_crops -
    1))`` on the long axis; on the short axis the crop is centred (the reference crops the whole
    short side, which is the same when the short side equals S). One crop is the centre crop.
    """

    def __init__(self, size: int = 224, num_crops: int = 3) -> None:
        if num_crops < 1:
            raise ValueError(f"num_crops must be >= 1, got {num_crops}")
        self.size, self.num_crops = int(size), int(num_crops)

    def offsets(self, height: int, width: int) -> list[tuple[int, int]]:
        """``(top, left)`` of every crop, in view order."""
        _check_fits(height, width, self.size)
        along_h = height >= width
        long, short = (height, width) if along_h else (width, height)
        if self.num_crops == 1:
            starts = [_centre_offset(long, self.size)]
        else:
            step = (long - self.size) / (self.num_crops - 1)
            starts = [int(k * step) for k in range(self.num_crops)]
        across = _centre_offset(short, self.size)
        return [(s, across) if along_h else (across, s) for s in starts]

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        """``[..., H, W]`` -> ``[num_crops, ..., S, S]``."""
        s = self.size
        boxes = self.offsets(clip.shape[-2], clip.shape[-1])
        return torch.stack([clip[..., y : y + s, x : x + s] for y, x in boxes])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, num_crops={self.num_crops})"


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


class FinetuneTrainTransform:
    """The reference's training augmentation of one clip, in SPEC §7.1's order.

    RandAugment (PIL, same ops on every frame) -> ToTensor + normalise -> random resized crop ->
    horizontal flip -> random erasing per frame. Steps that are off (``aa=None``, ``flip=False``,
    ``reprob=0``) are skipped without consuming randomness.

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
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bicubic",
    ) -> None:
        self.rand_augment = ClipRandAugment(aa, img_size, interpolation) if aa else None
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop = RandomResizedCropClip(img_size, scale, ratio)
        self.flip = RandomHorizontalFlipClip(0.5) if flip else None
        self.erase = ClipRandomErasing(reprob, remode, recount) if reprob > 0 else None

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


def finetune_train_transform(
    img_size: int = 224,
    aa: str | None = RAND_AUGMENT,
    scale: Sequence[float] = (0.25, 1.0),
    flip: bool = True,
    reprob: float = 0.25,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> FinetuneTrainTransform:
    """The SPEC §7.1 training transform (``flip=False`` for SSv2, SPEC §7.2)."""
    return FinetuneTrainTransform(img_size, aa, scale, flip=flip, reprob=reprob, mean=mean, std=std)


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


def eval_transform(
    img_size: int = 224,
    short_side: int = 224,
    crop: str = "centre",
    num_crops: int = 3,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    normalize: bool = True,
) -> EvalTransform:
    """Validation (``crop="centre"``) or test (``crop="three"``) transform (SPEC §7.1-7.2)."""
    return EvalTransform(img_size, short_side, crop, num_crops, mean, std, normalize)

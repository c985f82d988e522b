"""Geometric clip transforms, one crop / flip shared by all frames of a clip (SPEC §7.1-7.2).

Training: random resized crop and horizontal flip. Evaluation: short-side resize, then the
centre crop (validation) or the reference's three crops along the long side (test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from smile.data.transforms.common import _check_4d, _resize


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

"""Pretraining crop (SPEC §2.3): the TSN multi-scale crop at fixed grid positions.

Workers keep clips in uint8 end to end (DESIGN §4), so this path never builds float copies on the
CPU: PyTorch resizes uint8 ``channels_last`` tensors directly (:func:`resize_clip`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from smile.data.transforms.common import resize_clip

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
